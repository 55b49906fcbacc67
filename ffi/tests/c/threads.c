/* Threads through the C API (SPEC C3, C10, C11, F3, F4, K6, T1): cancel while children are
 * created, many checkers against one canceler, concurrent cancels of a whole tree, callbacks that
 * call back into the library, stop racing cancel. No timing is measured: every test checks an
 * outcome that must hold in every interleaving. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"

#define THREADS 4

static pthread_barrier_t start;

static int spawn(pthread_t *t, int n, void *(*fn)(void *), void *args, size_t arg_size) {
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0) {
            return -1;
        }
    }
    return 0;
}

static void join(pthread_t *t, int n) {
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
}

/* ---- C10: children created while the parent is canceled ---- */

#define KIDS 60

struct creator {
    sw_ctx parent;
    sw_ctx kids[KIDS];
    int made;
    int errors;
};

static void *create_children(void *p) {
    struct creator *c = p;
    pthread_barrier_wait(&start);
    for (int i = 0; i < KIDS; i++) {
        sw_status s = sw_with_cancel(c->parent, &c->kids[c->made]);
        if (s == SW_OK) {
            c->made++;
        } else {
            c->errors++;
        }
    }
    return NULL;
}

static void c10_cancel_while_children_are_created_loses_nothing(void) {
    for (int round = 0; round < 20; round++) {
        sw_ctx parent;
        struct creator cr[THREADS];
        pthread_t t[THREADS];
        MUST(sw_with_cancel(sw_background(), &parent));
        memset(cr, 0, sizeof cr);
        for (int i = 0; i < THREADS; i++) {
            cr[i].parent = parent;
        }
        pthread_barrier_init(&start, NULL, THREADS + 1);
        if (spawn(t, THREADS, create_children, cr, sizeof cr[0]) != 0) {
            sw_test_failures++;
            return;
        }
        pthread_barrier_wait(&start);
        for (int spin = 0; spin < round * 50; spin++) {
            (void)sw_is_done(parent); /* vary where the cancel lands */
        }
        CHECK_EQ(sw_cancel_cause(parent, 10 + (uint32_t)round), SW_OK);
        join(t, THREADS);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < THREADS; i++) {
            CHECK_EQ(cr[i].errors, 0);
            for (int k = 0; k < cr[i].made; k++) {
                uint32_t cause = 0;
                CHECK_EQ(sw_err(cr[i].kids[k]), SW_CANCELED);
                CHECK_EQ(sw_cause(cr[i].kids[k], &cause), SW_OK);
                CHECK_EQ(cause, 10 + (uint32_t)round);
                CHECK_EQ(sw_release(cr[i].kids[k]), SW_OK);
            }
        }
        MUST(sw_release(parent));
    }
}

/* ---- K6 / C4: many checkers, one canceler ---- */

struct checker {
    sw_ctx ctx;
    int bad;
};

static void *check_until_done(void *p) {
    struct checker *c = p;
    pthread_barrier_wait(&start);
    while (!sw_is_done(c->ctx)) {
        sw_status e = sw_err(c->ctx);
        uint32_t cause = 7;
        sw_status s = sw_cause(c->ctx, &cause);
        /* not done yet: no cause; done meanwhile: exactly the cause, never torn */
        if (e == SW_OK && s != SW_ERR_NOT_FOUND && !(s == SW_OK && cause == 0xC0FFEEu)) {
            c->bad++;
        }
    }
    for (int i = 0; i < 100; i++) { /* once done, always done, with the same Err and cause */
        uint32_t cause = 0;
        if (sw_err(c->ctx) != SW_CANCELED || sw_cause(c->ctx, &cause) != SW_OK ||
            cause != 0xC0FFEEu || !sw_is_done(c->ctx)) {
            c->bad++;
        }
    }
    return NULL;
}

static void k6_many_checkers_see_one_cancel_consistently(void) {
    for (int round = 0; round < 10; round++) {
        sw_ctx parent, leaf;
        struct checker ch[THREADS];
        pthread_t t[THREADS];
        MUST(sw_with_cancel(sw_background(), &parent));
        MUST(sw_with_value(parent, 1, 1, &leaf));
        for (int i = 0; i < THREADS; i++) {
            ch[i].ctx = i % 2 ? leaf : parent;
            ch[i].bad = 0;
        }
        pthread_barrier_init(&start, NULL, THREADS + 1);
        if (spawn(t, THREADS, check_until_done, ch, sizeof ch[0]) != 0) {
            sw_test_failures++;
            return;
        }
        pthread_barrier_wait(&start);
        CHECK_EQ(sw_cancel_cause(parent, 0xC0FFEEu), SW_OK);
        join(t, THREADS);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < THREADS; i++) {
            CHECK_EQ(ch[i].bad, 0);
        }
        MUST(sw_release(leaf));
        MUST(sw_release(parent));
    }
}

/* ---- C3, C11: every node of a 100-node tree canceled at once from several threads ---- */

#define NODES 100

static sw_ctx tree_nodes[NODES];
static atomic_int first_cancels;

struct tree_canceler {
    int seed;
};

static void *cancel_all_in_random_order(void *p) {
    struct tree_canceler *c = p;
    int order[NODES];
    unsigned x = (unsigned)c->seed * 2654435761u + 1;
    for (int i = 0; i < NODES; i++) {
        order[i] = i;
    }
    for (int i = NODES - 1; i > 0; i--) {
        x = x * 1103515245u + 12345u;
        int j = (int)((x >> 8) % (unsigned)(i + 1));
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    pthread_barrier_wait(&start);
    for (int i = 0; i < NODES; i++) {
        if (sw_cancel(tree_nodes[order[i]]) != SW_OK) {
            atomic_fetch_add(&first_cancels, 1000000); /* a refusal is a failure */
        }
    }
    return NULL;
}

static void c11_whole_tree_canceled_from_many_threads_without_deadlock(void) {
    for (int round = 0; round < 10; round++) {
        struct tree_canceler tc[THREADS];
        pthread_t t[THREADS];
        MUST(sw_with_cancel(sw_background(), &tree_nodes[0]));
        for (int i = 1; i < NODES; i++) {
            MUST(sw_with_cancel(tree_nodes[(i - 1) / 3], &tree_nodes[i]));
        }
        atomic_store(&first_cancels, 0);
        for (int i = 0; i < THREADS; i++) {
            tc[i].seed = round * THREADS + i;
        }
        pthread_barrier_init(&start, NULL, THREADS);
        if (spawn(t, THREADS, cancel_all_in_random_order, tc, sizeof tc[0]) != 0) {
            sw_test_failures++;
            return;
        }
        join(t, THREADS);
        pthread_barrier_destroy(&start);
        CHECK_EQ(atomic_load(&first_cancels), 0);
        for (int i = 0; i < NODES; i++) {
            CHECK_EQ(sw_err(tree_nodes[i]), SW_CANCELED);
        }
        for (int i = NODES - 1; i >= 0; i--) {
            CHECK_EQ(sw_release(tree_nodes[i]), SW_OK);
        }
    }
}

/* ---- F3: callbacks that call back into the library, from several threads ---- */

#define PAIRS 32

struct pair {
    sw_ctx ctx;      /* canceled by some thread */
    sw_ctx victim;   /* canceled by ctx's callback */
    sw_ctx stop;
    atomic_int runs;
    atomic_int bad;
};

static struct pair pairs[PAIRS];

static void reenter(void *p) {
    struct pair *pr = p;
    sw_ctx kid;
    atomic_fetch_add(&pr->runs, 1);
    if (!sw_is_done(pr->ctx)) {
        atomic_fetch_add(&pr->bad, 1);
    }
    if (sw_cancel(pr->victim) != SW_OK) {
        atomic_fetch_add(&pr->bad, 1);
    }
    /* create and release a child under a live context, and under the done one */
    if (sw_with_value(sw_background(), 9, 9, &kid) != SW_OK || sw_release(kid) != SW_OK) {
        atomic_fetch_add(&pr->bad, 1);
    }
    if (sw_with_cancel(pr->ctx, &kid) != SW_OK || sw_err(kid) != SW_CANCELED ||
        sw_release(kid) != SW_OK) {
        atomic_fetch_add(&pr->bad, 1);
    }
}

static void *cancel_pairs(void *p) {
    int first = *(int *)p;
    pthread_barrier_wait(&start);
    for (int k = 0; k < PAIRS; k++) {
        /* every thread cancels every pair, starting at a different one */
        (void)sw_cancel(pairs[(first + k) % PAIRS].ctx);
    }
    return NULL;
}

static void f3_callbacks_calling_the_library_from_many_threads(void) {
    for (int round = 0; round < 10; round++) {
        int firsts[THREADS];
        pthread_t t[THREADS];
        for (int i = 0; i < PAIRS; i++) {
            MUST(sw_with_cancel(sw_background(), &pairs[i].ctx));
            /* victims are the next pair's context: callbacks cancel contexts whose own
             * callbacks then run in the same thread */
            atomic_store(&pairs[i].runs, 0);
            atomic_store(&pairs[i].bad, 0);
        }
        for (int i = 0; i < PAIRS; i++) {
            pairs[i].victim = pairs[(i + 1) % PAIRS].ctx;
            MUST(sw_after_func(pairs[i].ctx, reenter, &pairs[i], &pairs[i].stop));
        }
        for (int i = 0; i < THREADS; i++) {
            firsts[i] = i * (PAIRS / THREADS);
        }
        pthread_barrier_init(&start, NULL, THREADS);
        if (spawn(t, THREADS, cancel_pairs, firsts, sizeof firsts[0]) != 0) {
            sw_test_failures++;
            return;
        }
        join(t, THREADS);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < PAIRS; i++) {
            CHECK_EQ(atomic_load(&pairs[i].runs), 1);
            CHECK_EQ(atomic_load(&pairs[i].bad), 0);
            CHECK(!sw_stop(pairs[i].stop));
        }
        for (int i = 0; i < PAIRS; i++) {
            MUST(sw_release(pairs[i].ctx));
        }
    }
}

/* ---- F4: stop racing cancel: exactly one of them wins ---- */

struct race {
    sw_ctx ctx, stop;
    atomic_int runs;
    int stopped;
};

static void count_run(void *p) { atomic_fetch_add(&((struct race *)p)->runs, 1); }

static void *race_stop(void *p) {
    struct race *r = p;
    pthread_barrier_wait(&start);
    r->stopped = sw_stop(r->stop);
    return NULL;
}

static void *race_cancel(void *p) {
    struct race *r = p;
    pthread_barrier_wait(&start);
    (void)sw_cancel(r->ctx);
    return NULL;
}

static void f4_stop_racing_cancel_exactly_one_wins(void) {
    for (int round = 0; round < 200; round++) {
        struct race r;
        pthread_t a, b;
        memset(&r, 0, sizeof r);
        MUST(sw_with_cancel(sw_background(), &r.ctx));
        MUST(sw_after_func(r.ctx, count_run, &r, &r.stop));
        pthread_barrier_init(&start, NULL, 2);
        pthread_create(&a, NULL, race_stop, &r);
        pthread_create(&b, NULL, race_cancel, &r);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        pthread_barrier_destroy(&start);
        CHECK_EQ(r.stopped + atomic_load(&r.runs), 1);
        MUST(sw_release(r.ctx));
    }
}

const struct sw_test thread_tests[] = {
    {"c10_cancel_while_children_are_created_loses_nothing",
     c10_cancel_while_children_are_created_loses_nothing},
    {"k6_many_checkers_see_one_cancel_consistently", k6_many_checkers_see_one_cancel_consistently},
    {"c11_whole_tree_canceled_from_many_threads_without_deadlock",
     c11_whole_tree_canceled_from_many_threads_without_deadlock},
    {"f3_callbacks_calling_the_library_from_many_threads",
     f3_callbacks_calling_the_library_from_many_threads},
    {"f4_stop_racing_cancel_exactly_one_wins", f4_stop_racing_cancel_exactly_one_wins},
    {0, 0},
};
