//! `cargo xtask package`: what a release needs besides passing tests. The rustdoc of the
//! workspace builds without warnings (and the C library's Rust docs on their own, since both
//! libraries are named `stopwire`); the docs.rs build of `stopwire` (nightly, `--cfg docsrs`, the
//! features of `[package.metadata.docs.rs]`) builds too; and `cargo package` packs and verifies
//! both crates, shipping nothing from `target/` and no large file. It runs no tests and counts
//! none.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{cmd, output, root, run, Result};

/// The packages `cargo package` checks: the engine and the C library.
const PACKAGES: [(&str, &str); 2] = [("stopwire", "."), ("stopwire-ffi", "ffi")];

/// The largest file a package may ship (the largest today, README.md, has 31 701 bytes).
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Where cargo puts its builds (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// The `features` list of `[package.metadata.docs.rs]` in the root Cargo.toml.
fn docs_rs_features() -> Result<Vec<String>> {
    let toml = fs::read_to_string(root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    let mut in_section = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[package.metadata.docs.rs]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(list) = line
            .strip_prefix("features")
            .and_then(|l| l.trim().strip_prefix('='))
        {
            let list = list.trim().trim_start_matches('[').trim_end_matches(']');
            return Ok(list
                .split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .filter(|f| !f.is_empty())
                .collect());
        }
    }
    Err("Cargo.toml: no `features = [...]` line in [package.metadata.docs.rs]".into())
}

/// The rustdoc of the workspace, the C library's on its own, and the docs.rs build.
fn docs() -> Result {
    let mut workspace = cmd("cargo", &["doc", "--workspace", "--no-deps"]);
    workspace.env("RUSTDOCFLAGS", "-D warnings");
    run(workspace)?;

    // `doc = false` keeps the C library out of the workspace's docs (same output directory as
    // the engine's); document it into a directory of its own so its doc comments stay checked.
    let ffi_dir = target_dir().join("doc-ffi");
    let mut ffi = cmd(
        "cargo",
        &[
            "rustdoc",
            "-p",
            "stopwire-ffi",
            "--lib",
            "--target-dir",
            &ffi_dir.to_string_lossy(),
            "--",
            "-D",
            "warnings",
        ],
    );
    ffi.env_remove("RUSTDOCFLAGS");
    run(ffi)?;

    let features = docs_rs_features()?.join(",");
    let docsrs_dir = target_dir().join("docsrs");
    let mut docsrs = cmd(
        "cargo",
        &[
            "+nightly",
            "doc",
            "-p",
            "stopwire",
            "--no-deps",
            "--no-default-features",
            "--features",
            &features,
            "--target-dir",
            &docsrs_dir.to_string_lossy(),
        ],
    );
    docsrs.env("RUSTDOCFLAGS", "--cfg docsrs -D warnings");
    run(docsrs)?;
    check_badges(&docsrs_dir.join("doc/stopwire"))?;
    println!("docs: workspace, stopwire-ffi and the docs.rs build (features {features}) build without warnings");
    Ok(())
}

/// Items behind a feature carry their feature badge in the docs.rs build (the crate root's
/// `doc_cfg`): spot-checked on the one public type each optional feature adds.
fn check_badges(doc: &Path) -> Result {
    for (page, feature) in [
        ("struct.EmbassyClock.html", "embassy"),
        ("struct.Done.html", "async"),
        ("struct.Group.html", "std"),
        ("struct.Live.html", "diagnostics"),
    ] {
        let html = fs::read_to_string(doc.join(page))
            .map_err(|e| format!("docs.rs build: no {page} ({e})"))?;
        let badge = format!("<code>{feature}</code>");
        let has = html
            .split("class=\"stab portability\"")
            .skip(1)
            .any(|after| after.split("</div>").next().unwrap_or("").contains(&badge));
        if !has {
            return Err(format!(
                "docs.rs build: {page} has no `{feature}` feature badge"
            ));
        }
    }
    Ok(())
}

/// `cargo package` of both crates (packed, then built from the packed sources), after a look at
/// what each would ship.
fn packages() -> Result {
    for (name, dir) in PACKAGES {
        let listed = output(cmd(
            "cargo",
            &["package", "-p", name, "--list", "--allow-dirty"],
        ))?;
        let base = root().join(dir);
        let mut files = 0;
        for file in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if file.starts_with("target/") || file.contains("/target/") {
                return Err(format!("{name} would ship {file}"));
            }
            files += 1;
            // Files cargo writes into the package (Cargo.toml.orig, .cargo_vcs_info.json, a
            // generated Cargo.lock) may not exist under that name in the tree.
            if let Ok(meta) = fs::metadata(base.join(file)) {
                if meta.len() > MAX_FILE_BYTES {
                    return Err(format!(
                        "{name} would ship {file} ({} bytes, limit {MAX_FILE_BYTES})",
                        meta.len()
                    ));
                }
            }
        }
        println!("{name}: {files} files, none from target/, none over {MAX_FILE_BYTES} bytes");
    }
    // Both at once: cargo verifies stopwire-ffi against the packed stopwire (its versioned path
    // dependency), not against crates.io. `--allow-dirty`: the check is about the manifests and
    // the files, not whether the work tree is committed.
    forget_packed_sources()?;
    // Its own target directory, emptied first: cargo takes a registry package's build, once
    // made, as good for that version forever, so a build of stale sources (above) would
    // otherwise outlive them.
    let verify = target_dir().join("package-verify");
    if verify.exists() {
        fs::remove_dir_all(&verify).map_err(|e| format!("removing {}: {e}", verify.display()))?;
    }
    let verify = verify.to_string_lossy().into_owned();
    let mut args = vec!["package", "--allow-dirty", "--target-dir", &verify];
    for (name, _) in PACKAGES {
        args.extend(["-p", name]);
    }
    run(cmd("cargo", &args))?;
    Ok(())
}

/// Removes what earlier runs of `cargo package` unpacked of these packages.
///
/// Cargo verifies stopwire-ffi against the packed stopwire through a temporary local registry
/// (`<target>/package/tmp-registry`), and unpacks it into `$CARGO_HOME/registry/src/-<hash>/`,
/// where the hash comes from that registry's path. A version is assumed never to change, so a
/// later run from the same path reuses the sources unpacked then: the verification then builds
/// the C library against an old engine (a clone of main at the same path failed that way). The
/// directories of local registries start with `-`; only this project's packages are removed.
fn forget_packed_sources() -> Result {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(h) => PathBuf::from(h),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cargo"),
            None => return Ok(()),
        },
    };
    let Ok(registries) = fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue; // crates.io and other real registries: never touched
        }
        let Ok(unpacked) = fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in unpacked.flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            let ours = PACKAGES.iter().any(|(package, _)| {
                name.strip_prefix(package)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            });
            if ours {
                fs::remove_dir_all(dir.path())
                    .map_err(|e| format!("removing {}: {e}", dir.path().display()))?;
                println!(
                    "removed {} (sources of an earlier cargo package)",
                    dir.path().display()
                );
            }
        }
    }
    Ok(())
}

/// `cargo xtask package`.
pub(crate) fn check() -> Result {
    docs()?;
    packages()
}
