/* C-side timings of the hot paths through the C API: `cargo xtask c-bench`. Prints the best of
 * several runs in ns per operation; no thresholds (timings are for reading, not for passing). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "stopwire.h"

#define ITERS 2000000L
#define RUNS 7

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef long (*workload)(sw_ctx ctx, long iters);

static long is_done_loop(sw_ctx ctx, long iters) {
    long done = 0;
    for (long i = 0; i < iters; i++) {
        done += sw_is_done(ctx);
    }
    return done;
}

static long err_loop(sw_ctx ctx, long iters) {
    long done = 0;
    for (long i = 0; i < iters; i++) {
        done += sw_err(ctx) != SW_OK;
    }
    return done;
}

static long create_release_loop(sw_ctx parent, long iters) {
    long failed = 0;
    for (long i = 0; i < iters; i++) {
        sw_ctx c;
        if (sw_with_cancel(parent, &c) != SW_OK || sw_release(c) != SW_OK) {
            failed++;
        }
    }
    return failed;
}

static long create_cancel_release_loop(sw_ctx parent, long iters) {
    long failed = 0;
    for (long i = 0; i < iters; i++) {
        sw_ctx c;
        if (sw_with_cancel(parent, &c) != SW_OK || sw_cancel(c) != SW_OK ||
            sw_release(c) != SW_OK) {
            failed++;
        }
    }
    return failed;
}

static void measure(const char *name, workload w, sw_ctx ctx, long iters, long expect) {
    double best = 1e30;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        long got = w(ctx, iters);
        double dt = (now_ns() - t0) / (double)iters;
        if (got != expect) {
            printf("%-40s wrong result %ld\n", name, got);
            return;
        }
        if (dt < best) {
            best = dt;
        }
    }
    printf("%-40s %8.2f ns/op\n", name, best);
}

int main(void) {
    sw_ctx plain, deep, timed, parent;
    if (sw_with_cancel(sw_background(), &plain) != SW_OK ||
        sw_with_timeout(sw_background(), UINT64_MAX / 2, &timed) != SW_OK ||
        sw_with_cancel(sw_background(), &parent) != SW_OK) {
        return 1;
    }
    deep = plain;
    sw_ctx chain[10];
    for (int i = 0; i < 10; i++) {
        if (sw_with_cancel(deep, &chain[i]) != SW_OK) {
            return 1;
        }
        deep = chain[i];
    }
    printf("stopwire %s, C API, best of %d runs\n", sw_version(), RUNS);
    measure("sw_is_done (no deadline, depth 1)", is_done_loop, plain, ITERS, 0);
    measure("sw_is_done (no deadline, depth 11)", is_done_loop, deep, ITERS, 0);
    measure("sw_err (no deadline)", err_loop, plain, ITERS, 0);
    measure("sw_is_done (deadline: reads the clock)", is_done_loop, timed, ITERS / 4, 0);
    measure("sw_with_cancel + sw_release", create_release_loop, parent, ITERS / 4, 0);
    measure("sw_with_cancel + sw_cancel + sw_release", create_cancel_release_loop, parent,
            ITERS / 4, 0);
    for (int i = 9; i >= 0; i--) {
        sw_release(chain[i]);
    }
    sw_release(plain);
    sw_release(timed);
    sw_release(parent);
    return 0;
}
