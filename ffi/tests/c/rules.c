/* Every rule group of docs/spec.md (R, C, D, V, K, W, F, A, T), through the C API. Test names start
 * with the rule id they prove. The thread rules (C10, C11, T1) are in threads.c, bad input (A2,
 * A3, R3) in bad_input.c. */
#include "harness.h"

#define FOREVER UINT64_MAX
#define P 101u
#define CH 102u
#define SLOW 103u
#define EARLY 104u

static int same(sw_ctx a, sw_ctx b) { return a.raw == b.raw; }

static uint32_t cause_of(sw_ctx c, sw_status *st) {
    uint32_t cause = 0xDEADu;
    *st = sw_cause(c, &cause);
    return cause;
}

/* Err and cause of `c`: expect_cause < 0 means "no cause yet" (SW_ERR_NOT_FOUND). */
static void expect_state(sw_ctx c, sw_status err, long expect_cause, int line) {
    sw_status st;
    uint32_t cause = cause_of(c, &st);
    if (sw_err(c) != err) {
        sw_test_failures++;
        fprintf(stderr, "    line %d: err %s, expected %s\n", line, sw_status_str(sw_err(c)),
                sw_status_str(err));
    }
    if (sw_is_done(c) != (err != SW_OK)) {
        sw_test_failures++;
        fprintf(stderr, "    line %d: is_done disagrees with err\n", line);
    }
    if (expect_cause < 0) {
        if (st != SW_ERR_NOT_FOUND) {
            sw_test_failures++;
            fprintf(stderr, "    line %d: cause %s (%u), expected none\n", line, sw_status_str(st),
                    cause);
        }
    } else if (st != SW_OK || cause != (uint32_t)expect_cause) {
        sw_test_failures++;
        fprintf(stderr, "    line %d: cause %s %u, expected %ld\n", line, sw_status_str(st), cause,
                expect_cause);
    }
}
#define EXPECT(c, err, cause) expect_state((c), (err), (cause), __LINE__)

struct counter {
    int runs;
    sw_ctx seen_done; /* a context the callback checks is done when it runs */
    int saw_done;
};

static void count_cb(void *p) {
    struct counter *c = p;
    c->runs++;
    if (c->seen_done.raw != 0) {
        c->saw_done = sw_is_done(c->seen_done);
    }
}

/* ---------------- R: roots ---------------- */

static void r1_roots_are_never_done_and_have_nothing(void) {
    sw_ctx roots[2] = {sw_background(), sw_todo()};
    for (int i = 0; i < 2; i++) {
        uint64_t d = 7;
        uintptr_t v = 7;
        EXPECT(roots[i], SW_OK, -1);
        CHECK_EQ(sw_deadline(roots[i], &d), SW_ERR_NOT_FOUND);
        CHECK_EQ(sw_value(roots[i], 1, &v), SW_ERR_NOT_FOUND);
        CHECK_EQ(d, 7);
        CHECK_EQ(v, 7);
        CHECK(roots[i].raw != 0);
    }
    CHECK(!same(roots[0], roots[1]));
    CHECK_EQ(sw_test_in_use(), 0); /* roots cost no slot */
}

static void r2_roots_cannot_be_canceled_or_released(void) {
    sw_ctx roots[2] = {sw_background(), sw_todo()};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(sw_cancel(roots[i]), SW_ERR_INVALID_ARG);
        CHECK_EQ(sw_cancel_cause(roots[i], 5), SW_ERR_INVALID_ARG);
        CHECK_EQ(sw_release(roots[i]), SW_ERR_INVALID_ARG);
        EXPECT(roots[i], SW_OK, -1);
    }
}

static void r3_zero_handle_is_never_valid(void) {
    sw_ctx zero = {0}, out = {0};
    uint32_t cause;
    CHECK(sw_is_done(zero));
    CHECK_EQ(sw_err(zero), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_cancel(zero), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_release(zero), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_cause(zero, &cause), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_with_cancel(zero, &out), SW_ERR_STALE_HANDLE);
    CHECK_EQ(out.raw, 0);
    CHECK(!sw_stop(zero));
}

/* ---------------- C: cancellation ---------------- */

static void c1_child_is_not_done(void) {
    sw_ctx a;
    MUST(sw_with_cancel(sw_background(), &a));
    EXPECT(a, SW_OK, -1);
    CHECK(a.raw != 0);
    MUST(sw_release(a));
}

static void c2_cancel_reaches_the_whole_subtree_before_returning(void) {
    sw_ctx root, nodes[20];
    MUST(sw_with_cancel(sw_background(), &root));
    nodes[0] = root;
    for (int i = 1; i < 20; i++) {
        MUST(sw_with_cancel(nodes[(i - 1) / 2], &nodes[i])); /* a binary tree */
    }
    MUST(sw_cancel(root));
    for (int i = 0; i < 20; i++) {
        EXPECT(nodes[i], SW_CANCELED, 0);
    }
    for (int i = 19; i >= 0; i--) {
        MUST(sw_release(nodes[i]));
    }
}

static void c3_cancel_is_idempotent(void) {
    sw_ctx a;
    MUST(sw_with_cancel(sw_background(), &a));
    CHECK_EQ(sw_cancel_cause(a, 9), SW_OK);
    CHECK_EQ(sw_cancel(a), SW_OK);
    CHECK_EQ(sw_cancel_cause(a, 10), SW_OK);
    EXPECT(a, SW_CANCELED, 9);
    MUST(sw_release(a));
}

static void c4_err_never_changes_once_set(void) {
    sw_ctx a;
    sw_test_clock_install(100);
    MUST(sw_with_deadline(sw_background(), 200, &a));
    EXPECT(a, SW_OK, -1);
    MUST(sw_cancel(a));
    sw_test_clock_set(300); /* the deadline passes after the cancel */
    CHECK_EQ(sw_expire(300), 0);
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

static void c5_cancel_goes_through_value_deadline_and_callback_layers(void) {
    sw_ctx top, val, dl, leaf, stop;
    struct counter n = {0};
    MUST(sw_with_cancel(sw_background(), &top));
    MUST(sw_with_value(top, 1, 2, &val));
    MUST(sw_with_timeout(val, FOREVER, &dl));
    MUST(sw_with_cancel(dl, &leaf));
    n.seen_done = leaf;
    MUST(sw_after_func(dl, count_cb, &n, &stop));
    MUST(sw_cancel(top));
    EXPECT(val, SW_CANCELED, 0);
    EXPECT(dl, SW_CANCELED, 0);
    EXPECT(leaf, SW_CANCELED, 0);
    CHECK_EQ(n.runs, 1);
    CHECK(n.saw_done);
    MUST(sw_release(leaf));
    MUST(sw_release(dl));
    MUST(sw_release(val));
    MUST(sw_release(top));
}

static void c6_descendants_get_the_ancestors_err_and_cause(void) {
    sw_ctx a, b, c;
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_with_cancel(a, &b));
    MUST(sw_with_value(b, 3, 4, &c));
    MUST(sw_cancel_cause(a, 77));
    EXPECT(b, SW_CANCELED, 77);
    EXPECT(c, SW_CANCELED, 77);
    MUST(sw_release(c));
    MUST(sw_release(b));
    MUST(sw_release(a));
}

static void c7_child_of_done_parent_is_born_done(void) {
    sw_ctx a, b, c;
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_cancel_cause(a, 55));
    MUST(sw_with_cancel(a, &b));
    MUST(sw_with_timeout(a, FOREVER, &c));
    EXPECT(b, SW_CANCELED, 55);
    EXPECT(c, SW_CANCELED, 55);
    MUST(sw_release(c));
    MUST(sw_release(b));
    MUST(sw_release(a));
}

static void c8_canceling_a_child_spares_parent_and_siblings(void) {
    sw_ctx p, x, y;
    MUST(sw_with_cancel(sw_background(), &p));
    MUST(sw_with_cancel(p, &x));
    MUST(sw_with_cancel(p, &y));
    MUST(sw_cancel(x));
    EXPECT(x, SW_CANCELED, 0);
    EXPECT(p, SW_OK, -1);
    EXPECT(y, SW_OK, -1);
    MUST(sw_release(x));
    MUST(sw_release(y));
    MUST(sw_release(p));
}

static void c9_released_children_cost_the_parent_nothing(void) {
    sw_ctx p, kids[50];
    unsigned base = sw_test_in_use();
    MUST(sw_with_cancel(sw_background(), &p));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++) {
            MUST(sw_with_cancel(p, &kids[i]));
        }
        CHECK_EQ(sw_test_in_use(), base + 51);
        for (int i = 0; i < 50; i++) {
            if (i % 2) {
                MUST(sw_cancel(kids[i]));
            }
            MUST(sw_release(kids[i]));
        }
        CHECK_EQ(sw_test_in_use(), base + 1);
    }
    EXPECT(p, SW_OK, -1);
    MUST(sw_release(p));
}

/* ---------------- D: deadlines ---------------- */

static void d1_deadline_is_absolute_and_timeout_is_now_plus_ticks(void) {
    sw_ctx a, b, c;
    uint64_t d = 0;
    sw_test_clock_install(1000);
    CHECK_EQ(sw_now(), 1000);
    MUST(sw_with_deadline(sw_background(), 5000, &a));
    MUST(sw_with_timeout(sw_background(), 250, &b));
    MUST(sw_with_timeout(sw_background(), FOREVER, &c));
    MUST(sw_deadline(a, &d));
    CHECK_EQ(d, 5000);
    MUST(sw_deadline(b, &d));
    CHECK_EQ(d, 1250);
    MUST(sw_deadline(c, &d));
    CHECK_EQ(d, UINT64_MAX); /* saturating */
    MUST(sw_release(a));
    MUST(sw_release(b));
    MUST(sw_release(c));
    sw_test_clock_uninstall();
}

static void d2_effective_deadline_is_the_earliest(void) {
    sw_ctx p, later, sooner, plain;
    uint64_t d = 0;
    sw_test_clock_install(0);
    MUST(sw_with_deadline(sw_background(), 100, &p));
    MUST(sw_with_deadline(p, 500, &later));
    MUST(sw_with_deadline(p, 50, &sooner));
    MUST(sw_with_cancel(p, &plain));
    MUST(sw_deadline(later, &d));
    CHECK_EQ(d, 100);
    MUST(sw_deadline(sooner, &d));
    CHECK_EQ(d, 50);
    MUST(sw_deadline(plain, &d));
    CHECK_EQ(d, 100);
    MUST(sw_release(plain));
    MUST(sw_release(sooner));
    MUST(sw_release(later));
    MUST(sw_release(p));
    sw_test_clock_uninstall();
}

static void d3_past_deadline_is_done_at_creation(void) {
    sw_ctx a, b;
    sw_test_clock_install(500);
    MUST(sw_with_deadline(sw_background(), 500, &a));
    MUST(sw_with_timeout(sw_background(), 0, &b));
    EXPECT(a, SW_DEADLINE_EXCEEDED, 0);
    EXPECT(b, SW_DEADLINE_EXCEEDED, 0);
    MUST(sw_release(a));
    MUST(sw_release(b));
    sw_test_clock_uninstall();
}

static void d4_reaching_the_deadline_makes_the_subtree_done(void) {
    sw_ctx a, kid, val;
    sw_test_clock_install(0);
    MUST(sw_with_deadline(sw_background(), 10, &a));
    MUST(sw_with_cancel(a, &kid));
    MUST(sw_with_value(kid, 1, 1, &val));
    sw_test_clock_set(9);
    EXPECT(a, SW_OK, -1);
    EXPECT(val, SW_OK, -1);
    sw_test_clock_set(10); /* a check sees it without any driver (D5) */
    EXPECT(a, SW_DEADLINE_EXCEEDED, 0);
    EXPECT(kid, SW_DEADLINE_EXCEEDED, 0);
    EXPECT(val, SW_DEADLINE_EXCEEDED, 0);
    MUST(sw_release(val));
    MUST(sw_release(kid));
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

static void d5_the_driver_runs_callbacks_at_the_deadline(void) {
    sw_ctx a, stop;
    struct counter n = {0};
    sw_test_clock_install(0);
    MUST(sw_with_deadline(sw_background(), 10, &a));
    MUST(sw_after_func(a, count_cb, &n, &stop));
    CHECK_EQ(sw_expire(9), 0);
    CHECK_EQ(n.runs, 0);
    sw_test_clock_set(10);
    CHECK_EQ(n.runs, 0); /* a check sees the expiry, but only the driver runs callbacks */
    CHECK_EQ(sw_expire(10), 1);
    CHECK_EQ(n.runs, 1);
    CHECK(!sw_stop(stop));
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

static void d6_deadline_is_none_for_roots_and_detached(void) {
    sw_ctx a, det;
    uint64_t d = 42;
    MUST(sw_with_timeout(sw_background(), 1000000, &a));
    MUST(sw_without_cancel(a, &det));
    CHECK_EQ(sw_deadline(sw_background(), &d), SW_ERR_NOT_FOUND);
    CHECK_EQ(sw_deadline(det, &d), SW_ERR_NOT_FOUND);
    CHECK_EQ(d, 42);
    MUST(sw_release(det));
    MUST(sw_release(a));
}

static void d7_cancel_before_deadline_gives_canceled(void) {
    sw_ctx a;
    sw_test_clock_install(0);
    MUST(sw_with_deadline_cause(sw_background(), 10, SLOW, &a));
    MUST(sw_cancel(a));
    sw_test_clock_set(20);
    CHECK_EQ(sw_expire(20), 0);
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

static void d8_deadline_under_detached_is_not_clamped(void) {
    sw_ctx a, det, b;
    uint64_t d = 0;
    sw_test_clock_install(0);
    MUST(sw_with_deadline(sw_background(), 10, &a));
    MUST(sw_without_cancel(a, &det));
    MUST(sw_with_deadline(det, 1000, &b));
    MUST(sw_deadline(b, &d));
    CHECK_EQ(d, 1000);
    sw_test_clock_set(10);
    EXPECT(a, SW_DEADLINE_EXCEEDED, 0);
    EXPECT(b, SW_OK, -1);
    MUST(sw_release(b));
    MUST(sw_release(det));
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

/* ---------------- V: values ---------------- */

static void v1_key_zero_is_rejected(void) {
    sw_ctx out = {123};
    uintptr_t v = 9;
    CHECK_EQ(sw_with_value(sw_background(), 0, 1, &out), SW_ERR_INVALID_ARG);
    CHECK_EQ(out.raw, 123);
    CHECK_EQ(sw_value(sw_background(), 0, &v), SW_ERR_INVALID_ARG);
    CHECK_EQ(v, 9);
}

static void v2_nearest_layer_wins(void) {
    sw_ctx a, b, c;
    uintptr_t v = 0;
    MUST(sw_with_value(sw_background(), 1, 10, &a));
    MUST(sw_with_value(a, 2, 20, &b));
    MUST(sw_with_value(b, 1, 11, &c));
    MUST(sw_value(c, 1, &v));
    CHECK_EQ(v, 11);
    MUST(sw_value(c, 2, &v));
    CHECK_EQ(v, 20);
    MUST(sw_value(b, 1, &v));
    CHECK_EQ(v, 10);
    v = 5;
    CHECK_EQ(sw_value(c, 3, &v), SW_ERR_NOT_FOUND);
    CHECK_EQ(v, 5);
    MUST(sw_release(c));
    MUST(sw_release(b));
    MUST(sw_release(a));
}

static void v3_values_survive_cancel_and_released_ancestors(void) {
    sw_ctx a, b;
    uintptr_t v = 0;
    unsigned base = sw_test_in_use();
    MUST(sw_with_value(sw_background(), 7, 70, &a));
    MUST(sw_with_cancel(a, &b));
    MUST(sw_release(a)); /* the layer stays for b (A5) */
    CHECK_EQ(sw_value(a, 7, &v), SW_ERR_STALE_HANDLE);
    MUST(sw_value(b, 7, &v));
    CHECK_EQ(v, 70);
    CHECK_EQ(sw_test_in_use(), base + 2);
    MUST(sw_release(b));
    CHECK_EQ(sw_test_in_use(), base);
}

static void v4_value_layer_adds_no_cancellation(void) {
    sw_ctx p, val;
    uint64_t d1 = 0, d2 = 1;
    MUST(sw_with_timeout(sw_background(), FOREVER / 2, &p));
    MUST(sw_with_value(p, 1, 1, &val));
    MUST(sw_deadline(p, &d1));
    MUST(sw_deadline(val, &d2));
    CHECK_EQ(d1, d2);
    MUST(sw_cancel_cause(p, 31));
    EXPECT(val, SW_CANCELED, 31);
    MUST(sw_release(val));
    MUST(sw_release(p));
}

static void v5_lookup_ignores_unrelated_nodes(void) {
    /* Cost cannot be timed here; what V5 implies functionally: many unrelated nodes, including
     * other layers with the same key, never change what a lookup finds. */
    sw_ctx mine, others[100];
    uintptr_t v = 0;
    MUST(sw_with_value(sw_background(), 5, 500, &mine));
    for (int i = 0; i < 100; i++) {
        MUST(sw_with_value(sw_background(), 5, (uintptr_t)i, &others[i]));
    }
    MUST(sw_value(mine, 5, &v));
    CHECK_EQ(v, 500);
    for (int i = 0; i < 100; i++) {
        MUST(sw_release(others[i]));
    }
    MUST(sw_release(mine));
}

/* ---------------- K: cause ---------------- */

static void k1_k2_k3_cause_is_recorded_once(void) {
    sw_ctx a, b;
    uint32_t c = 9;
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_with_cancel(sw_background(), &b));
    CHECK_EQ(sw_cause(a, &c), SW_ERR_NOT_FOUND); /* absent before done (K6) */
    CHECK_EQ(c, 9);
    CHECK_EQ(sw_cancel_cause(a, 0), SW_ERR_INVALID_ARG);
    EXPECT(a, SW_OK, -1);
    MUST(sw_cancel_cause(a, 1234));
    MUST(sw_cancel_cause(a, 999));
    EXPECT(a, SW_CANCELED, 1234);
    MUST(sw_cancel(b));
    EXPECT(b, SW_CANCELED, 0);
    MUST(sw_release(a));
    MUST(sw_release(b));
}

static void k5_deadline_cause_only_when_the_deadline_fires(void) {
    sw_ctx a, b;
    sw_test_clock_install(0);
    MUST(sw_with_timeout_cause(sw_background(), 10, SLOW, &a));
    MUST(sw_with_timeout_cause(sw_background(), 10, SLOW, &b));
    MUST(sw_cancel(b));
    CHECK_EQ(sw_expire(10), 1);
    EXPECT(a, SW_DEADLINE_EXCEEDED, SLOW);
    EXPECT(b, SW_CANCELED, 0);
    MUST(sw_release(a));
    MUST(sw_release(b));
    sw_test_clock_uninstall();
}

static void k5_parents_earlier_deadline_carries_the_parents_cause(void) {
    sw_ctx p, c;
    sw_test_clock_install(0);
    MUST(sw_with_deadline_cause(sw_background(), 10, EARLY, &p));
    MUST(sw_with_deadline_cause(p, 50, SLOW, &c));
    sw_test_clock_set(10);
    EXPECT(c, SW_DEADLINE_EXCEEDED, EARLY); /* seen by a check before the driver ran */
    CHECK_EQ(sw_expire(10), 1);
    EXPECT(c, SW_DEADLINE_EXCEEDED, EARLY);
    MUST(sw_release(c));
    MUST(sw_release(p));
    sw_test_clock_uninstall();
}

/* K7: the 20 rows of the table in docs/spec.md, in order. */
static void k7_cause_table(void) {
    sw_ctx a, b, p;
    sw_test_clock_install(1000);
    /* 1, 2 */
    EXPECT(sw_background(), SW_OK, -1);
    EXPECT(sw_todo(), SW_OK, -1);
    /* 3 */
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    /* 4 */
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_cancel_cause(a, P));
    EXPECT(a, SW_CANCELED, P);
    MUST(sw_release(a));
    /* 5 */
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    /* 6 .. 11: parent p, child a */
    struct {
        int child_first;
        uint32_t parent_cause, child_cause, want;
    } rows[6] = {{0, P, CH, P}, {1, P, CH, CH}, {0, P, 0, P},
                 {1, P, 0, 0},  {0, 0, CH, 0}, {1, 0, CH, CH}};
    for (int r = 0; r < 6; r++) {
        MUST(sw_with_cancel(sw_background(), &p));
        MUST(sw_with_cancel(p, &a));
        for (int step = 0; step < 2; step++) {
            int child_now = (step == 0) == (rows[r].child_first != 0);
            sw_ctx who = child_now ? a : p;
            uint32_t cause = child_now ? rows[r].child_cause : rows[r].parent_cause;
            MUST(cause ? sw_cancel_cause(who, cause) : sw_cancel(who));
        }
        EXPECT(a, SW_CANCELED, rows[r].want);
        MUST(sw_release(a));
        MUST(sw_release(p));
    }
    /* 12 */
    MUST(sw_with_timeout(sw_background(), 0, &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_DEADLINE_EXCEEDED, 0);
    MUST(sw_release(a));
    /* 13 */
    MUST(sw_with_timeout(sw_background(), FOREVER, &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    /* 14 */
    MUST(sw_with_timeout_cause(sw_background(), 0, SLOW, &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_DEADLINE_EXCEEDED, SLOW);
    MUST(sw_release(a));
    /* 15 */
    MUST(sw_with_timeout_cause(sw_background(), FOREVER, SLOW, &a));
    MUST(sw_cancel(a));
    EXPECT(a, SW_CANCELED, 0);
    MUST(sw_release(a));
    /* 16 */
    MUST(sw_with_cancel(sw_background(), &p));
    MUST(sw_with_timeout_cause(p, 0, SLOW, &a));
    MUST(sw_cancel_cause(p, EARLY));
    EXPECT(a, SW_DEADLINE_EXCEEDED, SLOW);
    MUST(sw_release(a));
    MUST(sw_release(p));
    /* 17 */
    MUST(sw_with_cancel(sw_background(), &p));
    MUST(sw_with_timeout_cause(p, FOREVER, SLOW, &a));
    MUST(sw_cancel_cause(p, EARLY));
    EXPECT(a, SW_CANCELED, EARLY);
    MUST(sw_release(a));
    MUST(sw_release(p));
    /* 18 */
    MUST(sw_without_cancel(sw_background(), &a));
    EXPECT(a, SW_OK, -1);
    MUST(sw_release(a));
    /* 19 */
    MUST(sw_with_cancel(sw_background(), &p));
    MUST(sw_without_cancel(p, &a));
    MUST(sw_cancel_cause(p, EARLY));
    EXPECT(a, SW_OK, -1);
    MUST(sw_release(a));
    MUST(sw_release(p));
    /* 20 */
    MUST(sw_with_timeout_cause(sw_background(), 0, SLOW, &b));
    MUST(sw_without_cancel(b, &a));
    EXPECT(a, SW_OK, -1);
    MUST(sw_release(a));
    MUST(sw_release(b));
    sw_test_clock_uninstall();
}

/* ---------------- W: detached ---------------- */

static void w1_detached_keeps_values_and_is_never_done(void) {
    sw_ctx p, det, stop;
    uintptr_t v = 0;
    uint64_t d;
    struct counter n = {0};
    MUST(sw_with_value(sw_background(), 4, 40, &p));
    MUST(sw_without_cancel(p, &det));
    MUST(sw_after_func(det, count_cb, &n, &stop));
    MUST(sw_value(det, 4, &v));
    CHECK_EQ(v, 40);
    CHECK_EQ(sw_cancel(det), SW_ERR_INVALID_ARG);
    MUST(sw_release(p));
    EXPECT(det, SW_OK, -1);
    CHECK_EQ(sw_deadline(det, &d), SW_ERR_NOT_FOUND);
    MUST(sw_value(det, 4, &v)); /* the released parent's layer stays (V3) */
    CHECK_EQ(v, 40);
    CHECK_EQ(n.runs, 0);
    CHECK(sw_stop(stop)); /* F7 */
    MUST(sw_release(det));
    CHECK_EQ(n.runs, 0);
}

static void w2_descendants_of_detached_are_not_canceled_from_above(void) {
    sw_ctx p, det, kid;
    MUST(sw_with_cancel(sw_background(), &p));
    MUST(sw_without_cancel(p, &det));
    MUST(sw_with_cancel(det, &kid));
    MUST(sw_cancel(p));
    EXPECT(kid, SW_OK, -1);
    MUST(sw_cancel(kid));
    EXPECT(kid, SW_CANCELED, 0);
    MUST(sw_release(kid));
    MUST(sw_release(det));
    MUST(sw_release(p));
}

/* ---------------- F: callbacks ---------------- */

static void f1_callback_runs_once_after_done(void) {
    sw_ctx a, stop;
    struct counter n = {0};
    MUST(sw_with_cancel(sw_background(), &a));
    n.seen_done = a;
    MUST(sw_after_func(a, count_cb, &n, &stop));
    CHECK(stop.raw != 0);
    CHECK_EQ(n.runs, 0);
    MUST(sw_cancel(a));
    CHECK_EQ(n.runs, 1);
    CHECK(n.saw_done);
    MUST(sw_cancel(a));
    MUST(sw_release(a));
    CHECK_EQ(n.runs, 1);
}

static void f2_callback_on_done_context_runs_before_return(void) {
    sw_ctx a, stop = {77};
    struct counter n = {0};
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_cancel(a));
    MUST(sw_after_func(a, count_cb, &n, &stop));
    CHECK_EQ(n.runs, 1);
    CHECK_EQ(stop.raw, 0); /* the zero stop handle */
    CHECK(!sw_stop(stop));
    MUST(sw_release(a));
}

struct reenter {
    sw_ctx other;   /* canceled from the callback */
    sw_ctx parent;  /* a child is created and released under it */
    sw_status created, released, canceled;
};

static void reenter_cb(void *p) {
    struct reenter *r = p;
    sw_ctx kid;
    r->canceled = sw_cancel(r->other);
    r->created = sw_with_cancel(r->parent, &kid);
    r->released = r->created == SW_OK ? sw_release(kid) : r->created;
}

static void f3_callback_may_call_the_library(void) {
    sw_ctx a, other, stop;
    struct reenter r = {0};
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_with_cancel(sw_background(), &other));
    r.other = other;
    r.parent = sw_background();
    MUST(sw_after_func(a, reenter_cb, &r, &stop));
    MUST(sw_cancel(a));
    CHECK_EQ(r.canceled, SW_OK);
    CHECK_EQ(r.created, SW_OK);
    CHECK_EQ(r.released, SW_OK);
    EXPECT(other, SW_CANCELED, 0);
    MUST(sw_release(other));
    MUST(sw_release(a));
}

static void f4_stop_prevents_the_callback_exactly_once(void) {
    sw_ctx a, stop;
    struct counter n = {0};
    unsigned base = sw_test_in_use();
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_after_func(a, count_cb, &n, &stop));
    CHECK(sw_stop(stop));
    CHECK(!sw_stop(stop));
    MUST(sw_cancel(a));
    CHECK_EQ(n.runs, 0);
    MUST(sw_release(a));
    /* stop after the callback ran: false */
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_after_func(a, count_cb, &n, &stop));
    MUST(sw_cancel(a));
    CHECK_EQ(n.runs, 1);
    CHECK(!sw_stop(stop));
    MUST(sw_release(a));
    /* releasing a stop handle stops it (docs/c-api.md) */
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_after_func(a, count_cb, &n, &stop));
    MUST(sw_release(stop));
    CHECK(!sw_stop(stop));
    MUST(sw_release(a));
    CHECK_EQ(n.runs, 1);
    CHECK_EQ(sw_test_in_use(), base);
}

static void f5_callbacks_are_independent(void) {
    sw_ctx a, stops[5];
    struct counter n[5] = {{0}};
    MUST(sw_with_cancel(sw_background(), &a));
    for (int i = 0; i < 5; i++) {
        MUST(sw_after_func(a, count_cb, &n[i], &stops[i]));
    }
    CHECK(sw_stop(stops[2]));
    MUST(sw_cancel(a));
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(n[i].runs, i == 2 ? 0 : 1);
    }
    MUST(sw_release(a));
}

static void f6_registration_holds_one_slot(void) {
    sw_ctx a, stop;
    struct counter n = {0};
    MUST(sw_with_cancel(sw_background(), &a));
    unsigned base = sw_test_in_use();
    MUST(sw_after_func(a, count_cb, &n, &stop));
    CHECK_EQ(sw_test_in_use(), base + 1);
    MUST(sw_cancel(a));
    CHECK_EQ(sw_test_in_use(), base);
    MUST(sw_release(a));
}

static void f7_never_done_context_never_runs_the_callback(void) {
    sw_ctx stop;
    struct counter n = {0};
    MUST(sw_after_func(sw_background(), count_cb, &n, &stop));
    CHECK(sw_stop(stop));
    CHECK_EQ(n.runs, 0);
}

static void f_null_callback_is_rejected(void) {
    sw_ctx a, stop = {5};
    struct counter n = {0};
    MUST(sw_with_cancel(sw_background(), &a));
    CHECK_EQ(sw_after_func(a, NULL, &n, &stop), SW_ERR_NULL_ARG);
    CHECK_EQ(sw_after_func(a, count_cb, &n, NULL), SW_ERR_NULL_ARG);
    CHECK_EQ(stop.raw, 5);
    MUST(sw_release(a));
    CHECK_EQ(n.runs, 0);
}

/* ---------------- A: arena and handles ---------------- */

static void a2_stale_handle_never_touches_the_slots_new_owner(void) {
    sw_ctx old, fresh;
    uint32_t c;
    MUST(sw_with_cancel(sw_background(), &old));
    MUST(sw_release(old));
    MUST(sw_with_cancel(sw_background(), &fresh)); /* most likely the same slot */
    CHECK(!same(old, fresh));
    CHECK(sw_is_done(old));
    CHECK_EQ(sw_err(old), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_cancel(old), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_cause(old, &c), SW_ERR_STALE_HANDLE);
    CHECK_EQ(sw_release(old), SW_ERR_STALE_HANDLE);
    EXPECT(fresh, SW_OK, -1);
    MUST(sw_release(fresh));
}

static void a4_release_cancels_and_makes_the_handle_stale(void) {
    sw_ctx a, kid;
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_with_cancel(a, &kid));
    MUST(sw_release(a));
    CHECK_EQ(sw_err(a), SW_ERR_STALE_HANDLE);
    EXPECT(kid, SW_CANCELED, 0);
    MUST(sw_release(kid));
}

static void a5_slots_return_when_the_whole_subtree_is_released(void) {
    sw_ctx chain[10];
    unsigned base = sw_test_in_use();
    MUST(sw_with_value(sw_background(), 1, 1, &chain[0]));
    for (int i = 1; i < 10; i++) {
        MUST(sw_with_value(chain[i - 1], (uintptr_t)i + 1, (uintptr_t)i, &chain[i]));
    }
    for (int i = 0; i < 9; i++) {
        MUST(sw_release(chain[i])); /* ancestors first: kept for the leaf */
    }
    CHECK_EQ(sw_test_in_use(), base + 10);
    uintptr_t v = 0;
    MUST(sw_value(chain[9], 1, &v));
    CHECK_EQ(v, 1);
    MUST(sw_release(chain[9]));
    CHECK_EQ(sw_test_in_use(), base);
}

static void a6_stats_report_capacity_use_and_high_water(void) {
    sw_stats s0, s1;
    sw_ctx a, b;
    MUST(sw_stats_get(&s0));
    CHECK(s0.capacity >= 2);
    CHECK(s0.high_water >= s0.in_use);
    MUST(sw_with_cancel(sw_background(), &a));
    MUST(sw_with_cancel(a, &b));
    MUST(sw_stats_get(&s1));
    CHECK_EQ(s1.capacity, s0.capacity);
    CHECK_EQ(s1.in_use, s0.in_use + 2);
    CHECK(s1.high_water >= s1.in_use);
    CHECK_EQ(s1.full_count, s0.full_count);
    MUST(sw_release(a));
    MUST(sw_release(b));
    MUST(sw_stats_get(&s1));
    CHECK_EQ(s1.in_use, s0.in_use);
}

/* ---------------- T: time ---------------- */

static void t2_check_is_correct_at_any_depth(void) {
    sw_ctx chain[64];
    MUST(sw_with_cancel(sw_background(), &chain[0]));
    for (int i = 1; i < 64; i++) {
        MUST(sw_with_cancel(chain[i - 1], &chain[i]));
    }
    CHECK(!sw_is_done(chain[63]));
    MUST(sw_cancel(chain[0]));
    CHECK(sw_is_done(chain[63]));
    for (int i = 63; i >= 0; i--) {
        MUST(sw_release(chain[i]));
    }
}

static void t4_set_clock_null_restores_the_default(void) {
    sw_test_clock_install(5);
    CHECK_EQ(sw_now(), 5);
    sw_test_clock_set(6);
    CHECK_EQ(sw_now(), 6);
    sw_test_clock_uninstall();
    uint64_t a = sw_now(), b = sw_now();
    CHECK(b >= a); /* the host default: monotonic */
}

static void t5_expire_counts_each_deadline_owner_once(void) {
    sw_ctx a, b, c, under, canceled;
    sw_test_clock_install(0);
    MUST(sw_with_deadline(sw_background(), 10, &a));
    MUST(sw_with_deadline(a, 20, &under)); /* own deadline, but a's fires first */
    MUST(sw_with_deadline(sw_background(), 15, &b));
    MUST(sw_with_deadline(sw_background(), 30, &c));
    MUST(sw_with_deadline(sw_background(), 12, &canceled));
    MUST(sw_cancel(canceled));
    CHECK_EQ(sw_expire(16), 2); /* a and b; `under` is done with a, `canceled` before */
    CHECK_EQ(sw_expire(16), 0);
    EXPECT(under, SW_DEADLINE_EXCEEDED, 0);
    EXPECT(c, SW_OK, -1);
    CHECK_EQ(sw_expire(100), 1);
    sw_ctx all[5] = {a, b, c, under, canceled};
    for (int i = 0; i < 5; i++) {
        MUST(sw_release(all[i]));
    }
    sw_test_clock_uninstall();
}

static void version_macros_match_the_library(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SW_VERSION_MAJOR, SW_VERSION_MINOR, SW_VERSION_PATCH);
    CHECK(strcmp(sw_version(), want) == 0);
    CHECK(strcmp(sw_status_str(SW_OK), "ok") == 0);
    CHECK(strcmp(sw_status_str(12345), "unknown") == 0);
}

const struct sw_test rule_tests[] = {
    {"r1_roots_are_never_done_and_have_nothing", r1_roots_are_never_done_and_have_nothing},
    {"r2_roots_cannot_be_canceled_or_released", r2_roots_cannot_be_canceled_or_released},
    {"r3_zero_handle_is_never_valid", r3_zero_handle_is_never_valid},
    {"c1_child_is_not_done", c1_child_is_not_done},
    {"c2_cancel_reaches_the_whole_subtree_before_returning",
     c2_cancel_reaches_the_whole_subtree_before_returning},
    {"c3_cancel_is_idempotent", c3_cancel_is_idempotent},
    {"c4_err_never_changes_once_set", c4_err_never_changes_once_set},
    {"c5_cancel_goes_through_value_deadline_and_callback_layers",
     c5_cancel_goes_through_value_deadline_and_callback_layers},
    {"c6_descendants_get_the_ancestors_err_and_cause",
     c6_descendants_get_the_ancestors_err_and_cause},
    {"c7_child_of_done_parent_is_born_done", c7_child_of_done_parent_is_born_done},
    {"c8_canceling_a_child_spares_parent_and_siblings",
     c8_canceling_a_child_spares_parent_and_siblings},
    {"c9_released_children_cost_the_parent_nothing", c9_released_children_cost_the_parent_nothing},
    {"d1_deadline_is_absolute_and_timeout_is_now_plus_ticks",
     d1_deadline_is_absolute_and_timeout_is_now_plus_ticks},
    {"d2_effective_deadline_is_the_earliest", d2_effective_deadline_is_the_earliest},
    {"d3_past_deadline_is_done_at_creation", d3_past_deadline_is_done_at_creation},
    {"d4_reaching_the_deadline_makes_the_subtree_done",
     d4_reaching_the_deadline_makes_the_subtree_done},
    {"d5_the_driver_runs_callbacks_at_the_deadline", d5_the_driver_runs_callbacks_at_the_deadline},
    {"d6_deadline_is_none_for_roots_and_detached", d6_deadline_is_none_for_roots_and_detached},
    {"d7_cancel_before_deadline_gives_canceled", d7_cancel_before_deadline_gives_canceled},
    {"d8_deadline_under_detached_is_not_clamped", d8_deadline_under_detached_is_not_clamped},
    {"v1_key_zero_is_rejected", v1_key_zero_is_rejected},
    {"v2_nearest_layer_wins", v2_nearest_layer_wins},
    {"v3_values_survive_cancel_and_released_ancestors",
     v3_values_survive_cancel_and_released_ancestors},
    {"v4_value_layer_adds_no_cancellation", v4_value_layer_adds_no_cancellation},
    {"v5_lookup_ignores_unrelated_nodes", v5_lookup_ignores_unrelated_nodes},
    {"k1_k2_k3_cause_is_recorded_once", k1_k2_k3_cause_is_recorded_once},
    {"k5_deadline_cause_only_when_the_deadline_fires",
     k5_deadline_cause_only_when_the_deadline_fires},
    {"k5_parents_earlier_deadline_carries_the_parents_cause",
     k5_parents_earlier_deadline_carries_the_parents_cause},
    {"k7_cause_table", k7_cause_table},
    {"w1_detached_keeps_values_and_is_never_done", w1_detached_keeps_values_and_is_never_done},
    {"w2_descendants_of_detached_are_not_canceled_from_above",
     w2_descendants_of_detached_are_not_canceled_from_above},
    {"f1_callback_runs_once_after_done", f1_callback_runs_once_after_done},
    {"f2_callback_on_done_context_runs_before_return",
     f2_callback_on_done_context_runs_before_return},
    {"f3_callback_may_call_the_library", f3_callback_may_call_the_library},
    {"f4_stop_prevents_the_callback_exactly_once", f4_stop_prevents_the_callback_exactly_once},
    {"f5_callbacks_are_independent", f5_callbacks_are_independent},
    {"f6_registration_holds_one_slot", f6_registration_holds_one_slot},
    {"f7_never_done_context_never_runs_the_callback",
     f7_never_done_context_never_runs_the_callback},
    {"f_null_callback_is_rejected", f_null_callback_is_rejected},
    {"a2_stale_handle_never_touches_the_slots_new_owner",
     a2_stale_handle_never_touches_the_slots_new_owner},
    {"a4_release_cancels_and_makes_the_handle_stale",
     a4_release_cancels_and_makes_the_handle_stale},
    {"a5_slots_return_when_the_whole_subtree_is_released",
     a5_slots_return_when_the_whole_subtree_is_released},
    {"a6_stats_report_capacity_use_and_high_water", a6_stats_report_capacity_use_and_high_water},
    {"t2_check_is_correct_at_any_depth", t2_check_is_correct_at_any_depth},
    {"t4_set_clock_null_restores_the_default", t4_set_clock_null_restores_the_default},
    {"t5_expire_counts_each_deadline_owner_once", t5_expire_counts_each_deadline_owner_once},
    {"version_macros_match_the_library", version_macros_match_the_library},
    {0, 0},
};
