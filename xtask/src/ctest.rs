//! The C API's tasks: `header` (regenerate include/stopwire.h), `install --prefix DIR`,
//! `c-test` (the header checks, the C and C++ suites plain, under ASan/UBSan and valgrind, the
//! small-capacity build, and the installed package used from pkg-config and CMake), and
//! `c-bench` (C-side timings of the hot paths).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{cmd, ensure_debian, have, output, root, run, Counts, Result};

/// The cbindgen release that generated the committed header.
const CBINDGEN_VERSION: &str = "0.29.4";

/// C warnings every C and C++ file of the suite must be clean of.
const WARN: [&str; 4] = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// Libraries the Rust staticlib needs on Linux (as `rustc --print native-static-libs` reports).
const NATIVE_LIBS: [&str; 3] = ["-lpthread", "-ldl", "-lm"];

/// The SONAME ffi/build.rs gives the shared library on ELF targets.
const SONAME: &str = "libstopwire.so.0";

/// Capacity of the small build that proves the build setting (and fills quickly).
const SMALL_CAPACITY: &str = "16";

/// Where cargo puts its builds (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Scratch space of these tasks.
fn work_dir() -> Result<PathBuf> {
    let d = target_dir().join("ffi-c");
    fs::create_dir_all(&d).map_err(|e| format!("create {}: {e}", d.display()))?;
    Ok(d)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Installs cbindgen 0.29.4 unless that exact version is on the PATH.
fn ensure_cbindgen() -> Result {
    let current = output(cmd("cbindgen", &["--version"])).unwrap_or_default();
    if current.trim() == format!("cbindgen {CBINDGEN_VERSION}") {
        return Ok(());
    }
    run(cmd(
        "cargo",
        &[
            "install",
            "cbindgen",
            "--locked",
            "--version",
            CBINDGEN_VERSION,
        ],
    ))
    .map(|_| ())
}

/// Runs cbindgen for the FFI crate into `out`.
fn generate_header(out: &Path) -> Result {
    ensure_cbindgen()?;
    run(cmd(
        "cbindgen",
        &[
            "--quiet",
            "--config",
            "ffi/cbindgen.toml",
            "--crate",
            "stopwire-ffi",
            "--output",
            &path_str(out),
            "ffi",
        ],
    ))
    .map(|_| ())
}

/// `cargo xtask header`: regenerates include/stopwire.h.
pub(crate) fn header() -> Result {
    generate_header(&root().join("include/stopwire.h"))?;
    println!("wrote include/stopwire.h");
    Ok(())
}

/// Builds libstopwire (release) into `target` with `capacity` (None: the default).
fn build_library(target: &Path, capacity: Option<&str>) -> Result<PathBuf> {
    let mut c = cmd("cargo", &["build", "-p", "stopwire-ffi", "--release"]);
    c.env("CARGO_TARGET_DIR", target);
    match capacity {
        Some(n) => c.env("STOPWIRE_CAPACITY", n),
        None => c.env_remove("STOPWIRE_CAPACITY"),
    };
    run(c)?;
    Ok(target.join("release"))
}

/// `cargo xtask install --prefix DIR`: the headers, both libraries (the shared one as
/// `libstopwire.so.<version>` with the links `libstopwire.so.0`, its SONAME, and
/// `libstopwire.so`), stopwire.pc and the CMake package (`find_package(stopwire)` gives
/// `stopwire::stopwire` and `stopwire::shared`).
pub(crate) fn install(args: &[String]) -> Result {
    let prefix = match args {
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask install --prefix DIR".into()),
    };
    let prefix = if prefix.is_absolute() {
        prefix
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(prefix)
    };
    let lib_dir = build_library(&target_dir(), None)?;
    install_into(&prefix, &lib_dir)
}

fn copy(from: &Path, to: &Path) -> Result {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// Makes `link` a symbolic link to `target` (a name in the same directory), replacing whatever
/// an earlier install left there.
fn symlink(target: &str, link: &Path) -> Result {
    if fs::symlink_metadata(link).is_ok() {
        fs::remove_file(link).map_err(|e| format!("remove {}: {e}", link.display()))?;
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| format!("link {} to {target}: {e}", link.display()))
}

fn write(to: &Path, text: &str) -> Result {
    fs::write(to, text).map_err(|e| format!("write {}: {e}", to.display()))
}

/// The version of the FFI crate, from ffi/Cargo.toml.
fn crate_version() -> Result<String> {
    let toml = fs::read_to_string(root().join("ffi/Cargo.toml")).map_err(|e| e.to_string())?;
    toml.lines()
        .find_map(|l| {
            let v = l.strip_prefix("version")?.trim().strip_prefix('=')?.trim();
            Some(v.trim_matches('"').to_string())
        })
        .ok_or_else(|| "no version in ffi/Cargo.toml".to_string())
}

fn install_into(prefix: &Path, lib_dir: &Path) -> Result {
    let include = prefix.join("include");
    let lib = prefix.join("lib");
    let pkgconfig = lib.join("pkgconfig");
    let cmake = lib.join("cmake/stopwire");
    for d in [&include, &lib, &pkgconfig, &cmake] {
        fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    copy(
        &root().join("include/stopwire.h"),
        &include.join("stopwire.h"),
    )?;
    copy(
        &root().join("include/stopwire.hpp"),
        &include.join("stopwire.hpp"),
    )?;
    copy(&lib_dir.join("libstopwire.a"), &lib.join("libstopwire.a"))?;
    let version = crate_version()?;
    // The shared library under its full version, the SONAME link the loader looks for, and the
    // development link `-lstopwire` finds (as a distribution lays them out).
    let real = format!("libstopwire.so.{version}");
    copy(&lib_dir.join("libstopwire.so"), &lib.join(&real))?;
    symlink(&real, &lib.join(SONAME))?;
    symlink(SONAME, &lib.join("libstopwire.so"))?;
    let fill = |template: &str| -> Result<String> {
        let text = fs::read_to_string(root().join("ffi/pkg").join(template))
            .map_err(|e| format!("read ffi/pkg/{template}: {e}"))?;
        Ok(text
            .replace("@PREFIX@", &path_str(prefix))
            .replace("@VERSION@", &version)
            .replace("@SONAME@", SONAME)
            .replace("@NATIVE_LIBS@", &NATIVE_LIBS.join(" ")))
    };
    write(&pkgconfig.join("stopwire.pc"), &fill("stopwire.pc.in")?)?;
    write(
        &cmake.join("stopwire-config.cmake"),
        &fill("stopwire-config.cmake.in")?,
    )?;
    write(
        &cmake.join("stopwire-config-version.cmake"),
        &fill("stopwire-config-version.cmake.in")?,
    )?;
    println!("installed stopwire {version} into {}", prefix.display());
    Ok(())
}

/// A C or C++ compiler invocation from the workspace root.
fn compiler(program: &str, std: &str, extra: &[&str]) -> Command {
    let mut c = cmd(program, &[&format!("-std={std}")]);
    c.args(WARN).args(extra);
    c
}

/// A function that expands every creation-site macro of the header (`SW_SITE` and the plain names
/// that call the `_at` forms), so that the header checks compile them under `-Wpedantic`.
const USES_EVERY_MACRO: &str = r#"int sw_header_compiles(void);
int sw_header_compiles(void) {
    sw_ctx c = {0};
    const sw_site *site = SW_SITE;
    int bad = site == 0 && sw_with_cancel_at(sw_background(), site, &c) != SW_OK;
    bad |= sw_with_cancel(sw_background(), &c) != SW_OK;
    bad |= sw_with_deadline(sw_background(), 1, &c) != SW_OK;
    bad |= sw_with_timeout(sw_background(), 1, &c) != SW_OK;
    bad |= sw_with_deadline_cause(sw_background(), 1, 2, &c) != SW_OK;
    bad |= sw_with_timeout_cause(sw_background(), 1, 2, &c) != SW_OK;
    bad |= sw_with_value(sw_background(), 1, 2, &c) != SW_OK;
    bad |= sw_without_cancel(sw_background(), &c) != SW_OK;
    bad |= sw_after_func(c, 0, 0, &c) != SW_OK;
    return bad ? (int)SW_ERR_INTERNAL : (int)SW_OK;
}
"#;

/// Every check of the header on its own, and of its version macros.
fn check_header(work: &Path) -> Result {
    let fresh = work.join("stopwire.fresh.h");
    generate_header(&fresh)?;
    let committed = fs::read_to_string(root().join("include/stopwire.h"))
        .map_err(|e| format!("read include/stopwire.h: {e}"))?;
    let generated = fs::read_to_string(&fresh).map_err(|e| e.to_string())?;
    if committed != generated {
        return Err(format!(
            "include/stopwire.h differs from a fresh cbindgen run ({}): run `cargo xtask header`",
            fresh.display()
        ));
    }
    println!("include/stopwire.h equals a fresh cbindgen {CBINDGEN_VERSION} run");

    let version = crate_version()?;
    let parts: Vec<&str> = version.split(['.', '-']).take(3).collect();
    for (name, want) in ["MAJOR", "MINOR", "PATCH"].iter().zip(&parts) {
        let line = format!("#define SW_VERSION_{name} {want}");
        if !committed.lines().any(|l| l.trim() == line) {
            return Err(format!(
                "include/stopwire.h lacks `{line}` (Cargo.toml: {version})"
            ));
        }
    }
    println!("version macros equal ffi/Cargo.toml ({version})");

    let c_file = work.join("header_alone.c");
    write(
        &c_file,
        &format!("#include \"stopwire.h\"\n{USES_EVERY_MACRO}"),
    )?;
    let cpp_file = work.join("header_alone.cpp");
    write(
        &cpp_file,
        &format!("#include \"stopwire.h\"\n#include \"stopwire.hpp\"\n{USES_EVERY_MACRO}"),
    )?;
    let obj = path_str(&work.join("header_alone.o"));
    let (c, cpp) = (path_str(&c_file), path_str(&cpp_file));
    for std in ["c99", "c11"] {
        run(compiler("gcc", std, &["-Iinclude", "-c", &c, "-o", &obj]))?;
        // Without the creation-site macros (STOPWIRE_SITES=0): the plain functions.
        run(compiler(
            "gcc",
            std,
            &["-DSTOPWIRE_SITES=0", "-Iinclude", "-c", &c, "-o", &obj],
        ))?;
    }
    for std in ["c++17", "c++20"] {
        run(compiler("g++", std, &["-Iinclude", "-c", &cpp, "-o", &obj]))?;
    }
    // Freestanding, the site macros are off unless asked for (STOPWIRE_SITES=1).
    for (std, sites) in [("c99", "0"), ("c11", "0"), ("c99", "1"), ("c11", "1")] {
        let define = format!("-DSTOPWIRE_SITES={sites}");
        let mut args = vec![
            "-ffreestanding",
            "-mcpu=cortex-m3",
            "-mthumb",
            "-Iinclude",
            "-c",
            &c,
            "-o",
            &obj,
        ];
        if sites == "1" {
            args.push(&define);
        }
        run(compiler("arm-none-eabi-gcc", std, &args))?;
    }
    println!("the header compiles alone as C99, C11, C++17 and freestanding arm-none-eabi");
    Ok(())
}

/// The suites, built against the static library in `lib_dir`.
struct Suites {
    c: PathBuf,
    c_asan: PathBuf,
    hpp: PathBuf,
    hpp_asan: PathBuf,
    stop_token: PathBuf,
    stop_token_asan: PathBuf,
}

const C_SOURCES: [&str; 7] = [
    "ffi/tests/c/harness.c",
    "ffi/tests/c/rules.c",
    "ffi/tests/c/bad_input.c",
    "ffi/tests/c/threads.c",
    "ffi/tests/c/dump.c",
    "ffi/tests/c/wait.c",
    "ffi/tests/c/main.c",
];

const SANITIZE: [&str; 2] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"];

fn build_suites(work: &Path, lib_dir: &Path, tag: &str) -> Result<Suites> {
    let lib = path_str(&lib_dir.join("libstopwire.a"));
    let common = ["-Iinclude", "-Iffi/tests/c", "-g", "-O1", "-pthread"];
    let exe = |name: &str| work.join(format!("{name}{tag}"));
    let c_build = |out: &Path, sanitize: bool| -> Result {
        let mut c = compiler("gcc", "c11", &common);
        if sanitize {
            c.args(SANITIZE);
        }
        c.args(C_SOURCES)
            .arg(&lib)
            .args(NATIVE_LIBS)
            .arg("-o")
            .arg(out);
        run(c).map(|_| ())
    };
    // The C++ tests share the C harness, compiled as C.
    let harness_plain = work.join(format!("harness{tag}.o"));
    let harness_asan = work.join(format!("harness_asan{tag}.o"));
    for (out, sanitize) in [(&harness_plain, false), (&harness_asan, true)] {
        let mut c = compiler("gcc", "c11", &common);
        if sanitize {
            c.args(SANITIZE);
        }
        c.args(["-c", "ffi/tests/c/harness.c", "-o"]).arg(out);
        run(c)?;
    }
    let cpp_build = |std: &str, source: &str, out: &Path, sanitize: bool| -> Result {
        let mut c = compiler("g++", std, &common);
        if sanitize {
            c.args(SANITIZE);
        }
        let harness = if sanitize {
            &harness_asan
        } else {
            &harness_plain
        };
        c.arg(source)
            .arg(harness)
            .arg(&lib)
            .args(NATIVE_LIBS)
            .arg("-o")
            .arg(out);
        run(c).map(|_| ())
    };
    let s = Suites {
        c: exe("c_suite"),
        c_asan: exe("c_suite_asan"),
        hpp: exe("hpp_test"),
        hpp_asan: exe("hpp_test_asan"),
        stop_token: exe("stop_token_test"),
        stop_token_asan: exe("stop_token_test_asan"),
    };
    c_build(&s.c, false)?;
    c_build(&s.c_asan, true)?;
    cpp_build("c++17", "ffi/tests/c/hpp_test.cpp", &s.hpp, false)?;
    cpp_build("c++17", "ffi/tests/c/hpp_test.cpp", &s.hpp_asan, true)?;
    cpp_build(
        "c++20",
        "ffi/tests/c/stop_token_test.cpp",
        &s.stop_token,
        false,
    )?;
    cpp_build(
        "c++20",
        "ffi/tests/c/stop_token_test.cpp",
        &s.stop_token_asan,
        true,
    )?;
    Ok(s)
}

/// Runs a test program plain, or under the sanitizers' strict settings, or under valgrind.
fn run_test(exe: &Path, how: &str) -> Result<Counts> {
    let mut c = match how {
        "valgrind" => {
            let mut c = cmd(
                "valgrind",
                &[
                    "--quiet",
                    "--error-exitcode=99",
                    "--leak-check=full",
                    "--errors-for-leak-kinds=definite",
                ],
            );
            c.arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    c.current_dir(root())
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    run(c)
}

/// Installs into a temporary prefix, checks the shared library's SONAME and links, and builds the
/// README's C example against it: with `pkg-config --cflags --libs` (C and C++), with CMake's
/// `stopwire::stopwire` and with `stopwire::shared`; the dynamically linked programs must name
/// `libstopwire.so.0` in their `NEEDED` entries.
fn check_install(work: &Path, lib_dir: &Path) -> Result<Counts> {
    let prefix = work.join("prefix");
    let _ = fs::remove_dir_all(&prefix);
    install_into(&prefix, lib_dir)?;
    let mut counts = Counts::default();
    check_shared_layout(&prefix.join("lib"))?;
    counts.passed += 1;

    // pkg-config (the shared library, as `-lstopwire` finds it): the C and the C++ example.
    let pc_path = path_str(&prefix.join("lib/pkgconfig"));
    let mut pc = cmd("pkg-config", &["--cflags", "--libs", "stopwire"]);
    pc.env("PKG_CONFIG_PATH", &pc_path);
    let pc_flags = output(pc)?;
    for (compiler_name, std, source) in [
        ("gcc", "c11", "ffi/examples/worker.c"),
        ("g++", "c++17", "ffi/examples/worker.cpp"),
    ] {
        let exe = work.join(format!("worker_pkgconfig_{compiler_name}"));
        let mut cc = compiler(compiler_name, std, &["-pthread"]);
        cc.arg(source).arg("-o").arg(&exe);
        cc.args(pc_flags.split_whitespace());
        run(cc)?;
        expect_dynamic(&exe, "NEEDED", SONAME)?;
        let mut app = Command::new(&exe);
        app.env("LD_LIBRARY_PATH", prefix.join("lib"));
        let out = output(app)?;
        check_worker_output(&out, &format!("pkg-config ({source})"))?;
        counts.passed += 1;
    }

    // CMake: find_package(stopwire) and the stopwire::stopwire target.
    let project = work.join("cmake-project");
    let build = work.join("cmake-build");
    let _ = fs::remove_dir_all(&project);
    let _ = fs::remove_dir_all(&build);
    fs::create_dir_all(&project).map_err(|e| e.to_string())?;
    copy(
        &root().join("ffi/examples/worker.c"),
        &project.join("worker.c"),
    )?;
    copy(
        &root().join("ffi/examples/CMakeLists.txt"),
        &project.join("CMakeLists.txt"),
    )?;
    run(cmd(
        "cmake",
        &[
            "-S",
            &path_str(&project),
            "-B",
            &path_str(&build),
            &format!("-DCMAKE_PREFIX_PATH={}", path_str(&prefix)),
        ],
    ))?;
    run(cmd("cmake", &["--build", &path_str(&build)]))?;
    let out = output(Command::new(build.join("worker")))?;
    check_worker_output(&out, "CMake")?;
    counts.passed += 1;

    // CMake with the shared target: the program records the SONAME and runs from the build tree
    // without LD_LIBRARY_PATH (CMake's build RPATH points at the prefix).
    let shared_build = work.join("cmake-shared-build");
    let _ = fs::remove_dir_all(&shared_build);
    run(cmd(
        "cmake",
        &[
            "-S",
            "ffi/tests/c/install",
            "-B",
            &path_str(&shared_build),
            &format!("-DCMAKE_PREFIX_PATH={}", path_str(&prefix)),
            &format!(
                "-DWORKER_SOURCE={}",
                path_str(&root().join("ffi/examples/worker.c"))
            ),
        ],
    ))?;
    run(cmd("cmake", &["--build", &path_str(&shared_build)]))?;
    let exe = shared_build.join("worker_shared");
    expect_dynamic(&exe, "NEEDED", SONAME)?;
    let out = output(Command::new(&exe))?;
    check_worker_output(&out, "CMake (stopwire::shared)")?;
    counts.passed += 1;
    println!(
        "install: {SONAME} with its links; the examples build and run with pkg-config and CMake"
    );
    Ok(counts)
}

/// The `readelf -d` entries of `file` with the tag `tag` (SONAME, NEEDED) must include `name`.
fn expect_dynamic(file: &Path, tag: &str, name: &str) -> Result {
    let dynamic = output(cmd("readelf", &["-d", &path_str(file)]))?;
    let want = format!("[{name}]");
    let found: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains(&format!("({tag})")))
        .collect();
    if found.iter().any(|l| l.contains(&want)) {
        println!("{}: {tag} {want}", file.display());
        Ok(())
    } else {
        Err(format!(
            "{}: no {tag} entry {want}, found {found:?}",
            file.display()
        ))
    }
}

/// The installed shared library: the file carries the SONAME, and the two links lead to it.
fn check_shared_layout(lib: &Path) -> Result {
    let version = crate_version()?;
    let real = format!("libstopwire.so.{version}");
    expect_dynamic(&lib.join(&real), "SONAME", SONAME)?;
    for (link, to) in [(SONAME, real.as_str()), ("libstopwire.so", SONAME)] {
        let found = fs::read_link(lib.join(link)).map_err(|e| format!("read link {link}: {e}"))?;
        if found != Path::new(to) {
            return Err(format!(
                "lib/{link} points to {}, expected {to}",
                found.display()
            ));
        }
    }
    Ok(())
}

fn check_worker_output(out: &str, how: &str) -> Result {
    if out.contains("worker stopped: context canceled") {
        Ok(())
    } else {
        Err(format!(
            "the example built with {how} printed something else:\n{out}"
        ))
    }
}

/// `cargo xtask c-test`: everything about the C and C++ API.
pub(crate) fn c_test() -> Result<Counts> {
    ensure_debian(&[
        "gcc",
        "g++",
        "valgrind",
        "pkg-config",
        "cmake",
        "gcc-arm-none-eabi",
        "binutils",
    ])?;
    for tool in [
        "gcc",
        "g++",
        "valgrind",
        "pkg-config",
        "cmake",
        "arm-none-eabi-gcc",
        "readelf",
    ] {
        if !have(tool) {
            return Err(format!("`{tool}` is missing after installation"));
        }
    }
    let work = work_dir()?;
    check_header(&work)?;
    let mut counts = Counts::default();
    counts.passed += 1; // the header checks above

    // The crate without std, as firmware links it (the rlib; docs/embedded.md), lint-clean.
    crate::util::ensure_targets(&["thumbv7m-none-eabi"])?;
    run(cmd(
        "cargo",
        &[
            "clippy",
            "-p",
            "stopwire-ffi",
            "--no-default-features",
            "--release",
            "--target",
            "thumbv7m-none-eabi",
            "--",
            "-D",
            "warnings",
        ],
    ))?;

    let lib_dir = build_library(&target_dir(), None)?;
    let suites = build_suites(&work, &lib_dir, "")?;
    for exe in [&suites.c, &suites.hpp, &suites.stop_token] {
        counts.add(run_test(exe, "plain")?);
    }
    for exe in [&suites.c_asan, &suites.hpp_asan, &suites.stop_token_asan] {
        counts.add(run_test(exe, "sanitizers")?);
    }
    for exe in [&suites.c, &suites.hpp, &suites.stop_token] {
        counts.add(run_test(exe, "valgrind")?);
    }

    // The build setting: a 16-slot library reports 16 and fills (A3, A6).
    let small_dir = build_library(&target_dir().join("ffi-capacity-16"), Some(SMALL_CAPACITY))?;
    let small = work.join("c_suite_small");
    let mut c = compiler(
        "gcc",
        "c11",
        &["-Iinclude", "-Iffi/tests/c", "-g", "-O1", "-pthread"],
    );
    c.args(C_SOURCES)
        .arg(small_dir.join("libstopwire.a"))
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&small);
    run(c)?;
    let mut small_run = Command::new(&small);
    small_run
        .current_dir(root())
        .env("SW_EXPECT_CAPACITY", SMALL_CAPACITY)
        // The tests that fit in 16 slots: the full arena, capacity, and bad input.
        .env(
            "SW_TEST_ONLY",
            "a3_,a6_,a2_null,a2_stop,a2_released,a2_forged,r3_,f6_,f4_stop",
        );
    counts.add(run(small_run)?);

    counts.add(check_install(&work, &lib_dir)?);
    if counts.failed > 0 {
        return Err(format!("{} C/C++ tests failed", counts.failed));
    }
    Ok(counts)
}

/// `cargo xtask c-bench`: times `sw_is_done`, `sw_err` and create+release from C (-O2, the
/// release library). Prints numbers; asserts nothing about them.
pub(crate) fn c_bench() -> Result {
    let work = work_dir()?;
    let lib_dir = build_library(&target_dir(), None)?;
    let exe = work.join("c_bench");
    let mut c = compiler("gcc", "c11", &["-O2", "-Iinclude", "ffi/tests/c/bench.c"]);
    c.arg(lib_dir.join("libstopwire.a"))
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    run(c)?;
    run(Command::new(&exe)).map(|_| ())
}
