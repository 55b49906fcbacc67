/* Being woken, from C (SPEC N1, N2, N5, N6): threads blocked in sw_wait are woken by a cancel from
 * another thread, by release and by a deadline that fires by itself (the C library's driver
 * thread: the program never calls sw_expire); sw_wait_for gives up and leaves nothing behind; an
 * sw_after_func callback on a timeout runs with no sw_expire call; and with a clock of the
 * program's own, the driver thread fires nothing: sw_expire does (T5, D5, F3). Outcomes only: the
 * only timed waits are generous hang guards (10 s) that a passing run never reaches, and one pause
 * before checking that nothing happened, which a passing run does not depend on. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "harness.h"

#define WAITERS 16

struct waiter {
    sw_ctx ctx;
    sw_status got;
};

static void *wait_thread(void *p) {
    struct waiter *w = p;
    w->got = sw_wait(w->ctx);
    return NULL;
}

static void n2_sixteen_threads_blocked_on_one_context_all_return_after_one_cancel(void) {
    sw_set_clock(NULL);
    sw_ctx job;
    MUST(sw_with_cancel(sw_background(), &job));
    struct waiter w[WAITERS];
    pthread_t t[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        w[i].ctx = job;
        w[i].got = SW_OK;
        CHECK_EQ(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
    }
    CHECK_EQ(sw_cancel_cause(job, 7), SW_OK);
    for (int i = 0; i < WAITERS; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ(w[i].got, SW_CANCELED);
    }
    MUST(sw_release(job));
}

static void n2_n5_wait_for_gives_up_and_leaves_nothing(void) {
    sw_set_clock(NULL);
    sw_stats before, after;
    MUST(sw_stats_get(&before));
    sw_ctx job;
    MUST(sw_with_cancel(sw_background(), &job));
    CHECK_EQ(sw_wait_for(job, 2000), SW_OK); /* 2 ms: the time ran out first */
    MUST(sw_cancel(job));
    CHECK_EQ(sw_wait_for(job, 2000), SW_CANCELED); /* done: returns at once */
    MUST(sw_release(job));
    CHECK_EQ(sw_wait(job), SW_ERR_STALE_HANDLE);
    MUST(sw_stats_get(&after));
    CHECK_EQ(after.in_use, before.in_use);
}

static void n6_release_wakes_a_waiter_on_a_value_layer(void) {
    sw_set_clock(NULL);
    sw_ctx layer;
    MUST(sw_with_value(sw_background(), 9, 99, &layer));
    struct waiter w = {layer, SW_OK};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, wait_thread, &w), 0);
    /* Let the waiter block (if it has not yet, it finds the handle stale: the same answer). */
    CHECK_EQ(sw_wait_for(sw_background(), 1000), SW_OK);
    MUST(sw_release(layer));
    pthread_join(t, NULL);
    CHECK_EQ(w.got, SW_ERR_STALE_HANDLE);
}

/* ---- N1: deadlines fire by themselves ---- */

static pthread_mutex_t fired_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fired_cond = PTHREAD_COND_INITIALIZER;
static int fired;

static void on_deadline(void *p) {
    (void)p;
    pthread_mutex_lock(&fired_lock);
    fired++;
    pthread_cond_broadcast(&fired_cond);
    pthread_mutex_unlock(&fired_lock);
}

static void n1_after_func_and_waiter_run_at_a_timeout_with_no_expire_call(void) {
    sw_set_clock(NULL);
    sw_ctx timed, stop;
    MUST(sw_with_timeout(sw_background(), 20000, &timed)); /* 20 ms */
    fired = 0;
    MUST(sw_after_func(timed, on_deadline, NULL, &stop));
    /* A blocked waiter returns with the deadline's Err: the driver thread expired it. */
    CHECK_EQ(sw_wait(timed), SW_DEADLINE_EXCEEDED);
    /* The callback runs in the driver thread; wait for it with a hang guard only. */
    struct timespec guard;
    clock_gettime(CLOCK_REALTIME, &guard);
    guard.tv_sec += 10;
    pthread_mutex_lock(&fired_lock);
    while (fired == 0) {
        if (pthread_cond_timedwait(&fired_cond, &fired_lock, &guard) != 0) {
            break;
        }
    }
    int n = fired;
    pthread_mutex_unlock(&fired_lock);
    CHECK_EQ(n, 1);
    CHECK(!sw_stop(stop)); /* it ran */
    MUST(sw_release(timed));
}

/* ---- T5, D5, F3: a clock of the program's own is driven by its sw_expire alone ---- */

struct where_run {
    pthread_t caller;
    atomic_int runs;
    atomic_int elsewhere; /* runs in a thread other than `caller` */
};

static void note_where(void *p) {
    struct where_run *w = p;
    if (!pthread_equal(pthread_self(), w->caller)) {
        atomic_fetch_add(&w->elsewhere, 1);
    }
    atomic_fetch_add(&w->runs, 1);
}

/* With a clock given to sw_set_clock the program's sw_expire drives deadlines (docs/c-api.md):
 * the library's driver thread, which runs since an earlier deadline of the default clock and is
 * woken by every new deadline, must not expire one itself. Before the fix it did, as soon as a
 * new deadline woke it after the clock had passed an older one: then sw_expire counted 0 and
 * the callback ran in the driver thread. The pause only gives a faulty driver time to act; the
 * outcome checked does not depend on it (nothing may happen before sw_expire). */
static void t5_d5_f3_with_the_programs_clock_only_sw_expire_fires_and_counts(void) {
    sw_ctx warm, a, later, stop;
    /* The driver thread runs (started by this deadline if no earlier test started it). */
    sw_set_clock(NULL);
    MUST(sw_with_timeout(sw_background(), 60000000, &warm));
    MUST(sw_release(warm));
    sw_test_clock_install(0);
    struct where_run w = {pthread_self(), 0, 0};
    MUST(sw_with_deadline(sw_background(), 10, &a));
    MUST(sw_after_func(a, note_where, &w, &stop));
    sw_test_clock_set(20); /* a's deadline has passed: a check sees it, nothing fires it */
    MUST(sw_with_deadline(sw_background(), 1000, &later)); /* wakes the driver thread */
    struct timespec pause = {0, 20 * 1000 * 1000};         /* 20 ms */
    nanosleep(&pause, NULL);
    CHECK_EQ(sw_err(a), SW_DEADLINE_EXCEEDED);
    CHECK_EQ(atomic_load(&w.runs), 0); /* only sw_expire runs it */
    CHECK_EQ(sw_expire(20), 1);        /* and counts it (T5) */
    CHECK_EQ(atomic_load(&w.runs), 1);
    CHECK_EQ(atomic_load(&w.elsewhere), 0); /* in the thread that called sw_expire (F3) */
    CHECK(!sw_stop(stop));
    CHECK_EQ(sw_expire(2000), 1); /* `later`: still for sw_expire to handle */
    MUST(sw_release(later));
    MUST(sw_release(a));
    sw_test_clock_uninstall();
}

const struct sw_test wait_tests[] = {
    {"n2_sixteen_threads_blocked_on_one_context_all_return_after_one_cancel",
     n2_sixteen_threads_blocked_on_one_context_all_return_after_one_cancel},
    {"n2_n5_wait_for_gives_up_and_leaves_nothing", n2_n5_wait_for_gives_up_and_leaves_nothing},
    {"n6_release_wakes_a_waiter_on_a_value_layer", n6_release_wakes_a_waiter_on_a_value_layer},
    {"n1_after_func_and_waiter_run_at_a_timeout_with_no_expire_call",
     n1_after_func_and_waiter_run_at_a_timeout_with_no_expire_call},
    {"t5_d5_f3_with_the_programs_clock_only_sw_expire_fires_and_counts",
     t5_d5_f3_with_the_programs_clock_only_sw_expire_fires_and_counts},
    {0, 0},
};
