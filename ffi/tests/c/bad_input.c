/* Bad input (docs/c-api.md): NULL out-pointers, the zero handle, released handles, random forged
 * 64-bit handles, a full arena. Never a crash, never a change to a live context the handle does
 * not name, out-parameters written only on SW_OK. */
#include "harness.h"

#define MARK 0x5A5A5A5A5A5A5A5Aull

static void noop_cb(void *p) { (*(int *)p)++; }

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {
    /* xorshift64*: deterministic, so a failure can be replayed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A small live tree whose state the attacks must not change. */
struct witness {
    sw_ctx top, val, dl, stop;
    int runs;
};

static void witness_make(struct witness *w) {
    w->runs = 0;
    if (sw_with_cancel(sw_background(), &w->top) != SW_OK ||
        sw_with_value(w->top, 11, 1100, &w->val) != SW_OK ||
        sw_with_timeout(w->val, UINT64_MAX, &w->dl) != SW_OK ||
        sw_after_func(w->dl, noop_cb, &w->runs, &w->stop) != SW_OK) {
        sw_test_failures++;
        fprintf(stderr, "    witness could not be built\n");
    }
}

static void witness_check(struct witness *w, int line) {
    uintptr_t v = 0;
    uint64_t d = 0;
    int ok = sw_err(w->top) == SW_OK && sw_err(w->val) == SW_OK && sw_err(w->dl) == SW_OK &&
             sw_value(w->dl, 11, &v) == SW_OK && v == 1100 &&
             sw_deadline(w->dl, &d) == SW_OK && d == UINT64_MAX && w->runs == 0;
    if (!ok) {
        sw_test_failures++;
        fprintf(stderr, "    line %d: a live context was changed by a bad handle\n", line);
    }
}

static void witness_drop(struct witness *w) {
    CHECK(sw_stop(w->stop));
    CHECK_EQ(sw_release(w->dl), SW_OK);
    CHECK_EQ(sw_release(w->val), SW_OK);
    CHECK_EQ(sw_release(w->top), SW_OK);
    CHECK_EQ(w->runs, 0);
}

/* Every function with handle `h`; a handle that names nothing must be refused by each, and
 * out-parameters must keep their marks. */
static void attack(sw_ctx h, int line) {
    sw_ctx out = {MARK};
    uint32_t cause = 0x5A5A5A5Au;
    uint64_t d = MARK;
    uintptr_t v = (uintptr_t)MARK;
    int runs = 0;
    int bad = 0;
    bad |= sw_err(h) != SW_ERR_STALE_HANDLE;
    bad |= !sw_is_done(h);
    bad |= sw_cause(h, &cause) != SW_ERR_STALE_HANDLE;
    bad |= sw_deadline(h, &d) != SW_ERR_STALE_HANDLE;
    bad |= sw_value(h, 11, &v) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_cancel(h, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_deadline(h, 5, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_timeout(h, 5, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_deadline_cause(h, 5, 3, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_timeout_cause(h, 5, 3, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_with_value(h, 1, 2, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_without_cancel(h, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_after_func(h, noop_cb, &runs, &out) != SW_ERR_STALE_HANDLE;
    bad |= sw_cancel(h) != SW_ERR_STALE_HANDLE;
    bad |= sw_cancel_cause(h, 9) != SW_ERR_STALE_HANDLE;
    bad |= sw_release(h) != SW_ERR_STALE_HANDLE;
    bad |= sw_stop(h);
    bad |= out.raw != MARK || cause != 0x5A5A5A5Au || d != MARK || v != (uintptr_t)MARK;
    bad |= runs != 0;
    if (bad) {
        sw_test_failures++;
        fprintf(stderr, "    line %d: handle 0x%016llx was not refused everywhere\n", line,
                (unsigned long long)h.raw);
    }
}

static void a2_null_out_pointers_are_refused_and_change_nothing(void) {
    sw_ctx a;
    int runs = 0;
    unsigned base = sw_test_in_use();
    MUST(sw_with_cancel(sw_background(), &a));
    sw_ctx parents[2] = {sw_background(), a};
    for (int i = 0; i < 2; i++) {
        sw_ctx p = parents[i];
        CHECK_EQ(sw_with_cancel(p, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_with_deadline(p, 1, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_with_timeout(p, 1, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_with_deadline_cause(p, 1, 2, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_with_timeout_cause(p, 1, 2, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_with_value(p, 1, 2, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_without_cancel(p, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_cause(p, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_deadline(p, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_value(p, 1, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_after_func(p, noop_cb, &runs, NULL), SW_ERR_NULL_ARG);
        CHECK_EQ(sw_after_func(p, NULL, &runs, &a), SW_ERR_NULL_ARG);
    }
    CHECK_EQ(sw_stats_get(NULL), SW_ERR_NULL_ARG);
    CHECK_EQ(sw_test_in_use(), base + 1); /* nothing was created behind a NULL */
    MUST(sw_cancel(a));
    CHECK_EQ(runs, 0);
    /* NULL out-pointer on a done context: the callback must not run either */
    CHECK_EQ(sw_after_func(a, noop_cb, &runs, NULL), SW_ERR_NULL_ARG);
    CHECK_EQ(runs, 0);
    MUST(sw_release(a));
}

static void r3_zero_handle_is_refused_by_every_function(void) {
    struct witness w;
    sw_ctx zero = {0};
    witness_make(&w);
    attack(zero, __LINE__);
    witness_check(&w, __LINE__);
    witness_drop(&w);
}

static void a2_released_handles_are_refused_by_every_function(void) {
    struct witness w;
    sw_ctx gone[4];
    MUST(sw_with_cancel(sw_background(), &gone[0]));
    MUST(sw_with_value(gone[0], 3, 3, &gone[1]));
    MUST(sw_with_timeout(sw_background(), 100000000, &gone[2]));
    MUST(sw_without_cancel(sw_background(), &gone[3]));
    for (int i = 3; i >= 0; i--) {
        MUST(sw_release(gone[i]));
    }
    witness_make(&w); /* reuses the released slots */
    for (int i = 0; i < 4; i++) {
        attack(gone[i], __LINE__);
    }
    witness_check(&w, __LINE__);
    witness_drop(&w);
}

static void a2_stop_handles_are_not_contexts(void) {
    sw_ctx a, stop, out = {MARK};
    int runs = 0;
    uint32_t cause;
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_after_func(a, noop_cb, &runs, &stop));
    CHECK_EQ(sw_with_cancel(stop, &out), SW_ERR_INVALID_ARG);
    CHECK_EQ(sw_cancel(stop), SW_ERR_INVALID_ARG);
    CHECK_EQ(sw_err(stop), SW_ERR_INVALID_ARG);
    CHECK_EQ(sw_cause(stop, &cause), SW_ERR_INVALID_ARG);
    CHECK_EQ(out.raw, MARK);
    CHECK_EQ(sw_err(a), SW_OK);
    CHECK(sw_stop(stop));
    MUST(sw_release(a));
    CHECK_EQ(runs, 0);
}

static void a2_forged_handles_never_change_a_live_context(void) {
    struct witness w;
    sw_ctx live[4];
    witness_make(&w);
    live[0] = w.top, live[1] = w.val, live[2] = w.dl, live[3] = w.stop;
    unsigned base = sw_test_in_use();
    for (int i = 0; i < 20000; i++) {
        uint64_t r = next_random();
        sw_ctx forged;
        switch (i % 4) {
        case 0: /* anything */
            forged.raw = r;
            break;
        case 1: /* an index in range, a random generation */
            forged.raw = (r & 0xFFFFFFFF00000000ull) | (1 + (r % 2048));
            break;
        case 2: /* a live slot with another generation */
            forged.raw = live[r % 4].raw ^ ((r | 1) << 32);
            break;
        default: /* a live generation with another index, and the reserved root range */
            forged.raw = (live[r % 4].raw & 0xFFFFFFFF00000000ull) |
                         ((r & 1) ? 0xFFFFFFFFull : (r >> 40));
            break;
        }
        int is_live = forged.raw == sw_background().raw || forged.raw == sw_todo().raw;
        for (int k = 0; k < 4; k++) {
            is_live |= forged.raw == live[k].raw;
        }
        if (is_live) {
            continue;
        }
        attack(forged, __LINE__);
        if (sw_test_failures > 5) {
            break;
        }
    }
    CHECK_EQ(sw_test_in_use(), base);
    witness_check(&w, __LINE__);
    witness_drop(&w);
}

static void a3_full_arena_refuses_and_changes_nothing(void) {
    struct witness w;
    sw_stats s0, s1;
    witness_make(&w);
    MUST(sw_stats_get(&s0));
    unsigned room = s0.capacity - s0.in_use;
    sw_ctx *held = malloc(sizeof(sw_ctx) * (room + 1));
    if (!held) {
        sw_test_failures++;
        return;
    }
    unsigned n = 0;
    for (;;) {
        sw_ctx out = {MARK};
        sw_status s = sw_with_cancel(n % 2 ? held[n - 1] : w.top, &out);
        if (s == SW_ERR_ARENA_FULL) {
            CHECK_EQ(out.raw, MARK);
            break;
        }
        CHECK_EQ(s, SW_OK);
        if (s != SW_OK || n > room) {
            break;
        }
        held[n++] = out;
    }
    CHECK_EQ(n, room);
    /* every kind of creation is refused, nothing is written, nothing changes */
    sw_ctx out = {MARK};
    int runs = 0;
    CHECK_EQ(sw_with_value(w.val, 1, 1, &out), SW_ERR_ARENA_FULL);
    CHECK_EQ(sw_with_deadline(w.top, 1, &out), SW_ERR_ARENA_FULL);
    CHECK_EQ(sw_with_timeout_cause(sw_background(), 1, 2, &out), SW_ERR_ARENA_FULL);
    CHECK_EQ(sw_without_cancel(w.top, &out), SW_ERR_ARENA_FULL);
    CHECK_EQ(sw_after_func(w.top, noop_cb, &runs, &out), SW_ERR_ARENA_FULL);
    CHECK_EQ(out.raw, MARK);
    CHECK_EQ(runs, 0);
    MUST(sw_stats_get(&s1));
    CHECK_EQ(s1.in_use, s0.capacity);
    CHECK_EQ(s1.high_water, s0.capacity);
    CHECK_EQ(s1.full_count, s0.full_count + 6);
    witness_check(&w, __LINE__);
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ(sw_err(held[i]), SW_OK);
    }
    /* the next creation after any release succeeds */
    if (n > 0) {
        MUST(sw_release(held[n - 1]));
        MUST(sw_with_cancel(sw_background(), &held[n - 1]));
    }
    for (unsigned i = n; i-- > 0;) {
        MUST(sw_release(held[i]));
    }
    free(held);
    MUST(sw_stats_get(&s1));
    CHECK_EQ(s1.in_use, s0.in_use);
    witness_check(&w, __LINE__);
    witness_drop(&w);
}

static void a6_capacity_is_the_build_setting(void) {
    sw_stats s;
    const char *want = getenv("SW_EXPECT_CAPACITY");
    MUST(sw_stats_get(&s));
    CHECK_EQ(s.capacity, want ? strtoul(want, NULL, 10) : 1024ul);
}

const struct sw_test bad_input_tests[] = {
    {"a2_null_out_pointers_are_refused_and_change_nothing",
     a2_null_out_pointers_are_refused_and_change_nothing},
    {"r3_zero_handle_is_refused_by_every_function", r3_zero_handle_is_refused_by_every_function},
    {"a2_released_handles_are_refused_by_every_function",
     a2_released_handles_are_refused_by_every_function},
    {"a2_stop_handles_are_not_contexts", a2_stop_handles_are_not_contexts},
    {"a2_forged_handles_never_change_a_live_context",
     a2_forged_handles_never_change_a_live_context},
    {"a3_full_arena_refuses_and_changes_nothing", a3_full_arena_refuses_and_changes_nothing},
    {"a6_capacity_is_the_build_setting", a6_capacity_is_the_build_setting},
    {0, 0},
};
