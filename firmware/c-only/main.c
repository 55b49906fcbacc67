/*
 * A firmware whose only code is C, linked with libstopwire.a (built with --no-default-features
 * and a critical-section feature), run under QEMU: the library's rules as a bare-metal C program
 * meets them.
 *
 * - SysTick advances a 64-bit tick counter, which is the library's clock (sw_set_clock), and is
 *   the alarm: when sw_next_deadline is due it calls sw_expire, so deadline callbacks run in the
 *   SysTick handler.
 * - IRQ 0, pended by software (NVIC set-pending) from SysTick, cancels a context while thread mode
 *   creates, checks and releases children of it.
 * - Thread mode sleeps with `wfi` until its context is done.
 * - The interrupt handlers create and release contexts too (every operation is ISR-safe: the
 *   arena lock is a critical section).
 *
 * Each test prints its name and "ok" or "FAILED" (with the failing line); the last line is
 * "c-firmware <target> <variant>: N passed, M failed", and the exit status is 0 only when nothing
 * failed.
 */

#include <stdbool.h>
#include <stdint.h>

#include <stopwire.h>

#include "board.h"
#include "semihosting.h"
#if defined(SW_PORT_CRITICAL_SECTION)
#include "port_stats.h"
#endif

#ifndef SW_EXPECTED_CAPACITY
#error "SW_EXPECTED_CAPACITY: the STOPWIRE_CAPACITY the library was built with"
#endif
#ifndef SW_FIRMWARE_NAME
#define SW_FIRMWARE_NAME "c-firmware"
#endif

/* SysTick reload: about 1 ms at the 12 MHz of lm3s6965evb, 0.75 ms at the micro:bit's 16 MHz. */
#define SYSTICK_RELOAD 12000u

/* The cause IRQ 0 cancels with, and the one a timeout records. */
#define CAUSE_IRQ 0xC0DEu
#define CAUSE_DEADLINE 0xD1u

/* ---- the clock: SysTick interrupts since start-up ---- */

static volatile uint32_t tick_lo, tick_hi;

/* The library's clock (sw_set_clock). Reads the two halves until no SysTick came in between, so
   thread mode never sees a torn value; called by the library from thread mode and interrupts. */
static uint64_t ticks(void)
{
    uint32_t hi, lo;
    do {
        hi = tick_hi;
        lo = tick_lo;
    } while (hi != tick_hi);
    return ((uint64_t)hi << 32) | lo;
}

/* ---- what the interrupt handlers do for the current test ---- */

/* Extra work SysTick does after the alarm, set by a test (NULL: none). */
static void (*volatile systick_hook)(uint64_t now);
/* sw_expire calls made by the alarm, and the deadline contexts they handled. */
static volatile uint32_t alarm_expire_calls, alarm_expired;

/* IRQ 0: cancels `irq_target` with CAUSE_IRQ, then sets `irq_done`. */
static volatile sw_ctx irq_target;
static volatile uint32_t irq_calls;
static volatile bool irq_done;
static volatile sw_status irq_status;
/* SysTick pends IRQ 0 once the clock reaches this tick (0: never). */
static volatile uint64_t irq_pend_at;

static void pend_irq0(void) { REG32(NVIC_ISPR) = 1u; }

void SysTick_Handler(void)
{
    if (++tick_lo == 0u) {
        tick_hi++;
    }
    uint64_t now = ticks();
    /* The alarm: sw_expire only when the earliest pending deadline is due. */
    uint64_t next;
    if (sw_next_deadline(&next) == SW_OK && next <= now) {
        alarm_expire_calls++;
        alarm_expired += sw_expire(now);
    }
    if (irq_pend_at != 0u && now >= irq_pend_at) {
        irq_pend_at = 0u;
        pend_irq0();
    }
    void (*hook)(uint64_t) = systick_hook;
    if (hook != 0) {
        hook(now);
    }
}

void IRQ0_Handler(void)
{
    irq_calls++;
    sw_ctx target = irq_target;
    irq_status = sw_cancel_cause(target, CAUSE_IRQ);
    irq_done = true;
}

/* ---- the test runner ---- */

static uint32_t checks_failed; /* failed checks of the running test */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            checks_failed++;                                                                       \
            sh_write0("\n    check failed, main.c line ");                                         \
            sh_write_u32((uint32_t)__LINE__);                                                      \
            sh_write0(": " #cond);                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_OK(call) CHECK((call) == SW_OK)

static uint32_t in_use(void)
{
    sw_stats s;
    return sw_stats_get(&s) == SW_OK ? s.in_use : 0xFFFFFFFFu;
}

static void sleep_ticks(uint64_t n)
{
    uint64_t until = ticks() + n;
    while (ticks() < until) {
        wait_for_interrupt();
    }
}

/* ---- tests ---- */

/* T4: the library's clock is the function given to sw_set_clock, here the SysTick counter. */
static void t4_sw_now_is_the_systick_counter(void)
{
    uint64_t a = sw_now();
    sleep_ticks(3);
    uint64_t b = sw_now();
    CHECK(b >= a + 3u);
    CHECK(b <= ticks());
}

/* T1: every locked call restores the interrupt mask it found: enabled in thread mode, still
   masked when called with interrupts masked. */
static void t1_the_critical_section_restores_the_interrupt_mask(void)
{
    sw_ctx c;
    CHECK(primask() == 0u);
    CHECK_OK(sw_with_cancel(sw_background(), &c));
    CHECK(primask() == 0u);
    irq_disable();
    CHECK_OK(sw_cancel(c));
    CHECK(primask() == 1u);
    irq_enable();
    CHECK_OK(sw_release(c));
    CHECK(primask() == 0u);
#if defined(SW_PORT_CRITICAL_SECTION)
    /* The port functions bracket every locked call, and each enter has its exit. */
    uint32_t before = port_enters;
    CHECK_OK(sw_with_cancel(sw_background(), &c));
    CHECK_OK(sw_release(c));
    CHECK(port_enters > before);
    irq_disable();
    CHECK(port_enters == port_exits);
    CHECK(port_depth == 0u);
    irq_enable();
    CHECK(port_max_depth >= 1u);
#endif
}

/* What a callback saw when it ran. */
struct callback_record {
    volatile uint32_t runs;
    volatile uint32_t exception; /* IPSR: 15 is SysTick */
    volatile uint64_t tick;
};

static void record_callback(void *userdata)
{
    struct callback_record *r = userdata;
    r->runs++;
    r->exception = current_exception();
    r->tick = ticks();
}

/* N1, T5, F1, K5: a timeout fires through the SysTick alarm (sw_next_deadline, then sw_expire),
   and its sw_after_func callback runs in the SysTick handler, once, at or after the deadline. */
static void n1_a_deadline_fires_through_the_systick_alarm(void)
{
    uint32_t expired_before = alarm_expired;
    uint32_t base = in_use();
    sw_ctx c, stop;
    uint64_t deadline = 0, next = 0;
    struct callback_record rec = {0};
    CHECK_OK(sw_with_timeout_cause(sw_background(), 5, CAUSE_DEADLINE, &c));
    CHECK_OK(sw_deadline(c, &deadline));
    CHECK_OK(sw_next_deadline(&next));
    CHECK(next == deadline);
    CHECK_OK(sw_after_func(c, record_callback, &rec, &stop));
    CHECK(rec.runs == 0u);
    while (rec.runs == 0u) {
        wait_for_interrupt();
    }
    CHECK(rec.runs == 1u);
    CHECK(rec.exception == 15u);
    CHECK(rec.tick >= deadline);
    CHECK(sw_err(c) == SW_DEADLINE_EXCEEDED);
    uint32_t cause = 0;
    CHECK_OK(sw_cause(c, &cause));
    CHECK(cause == CAUSE_DEADLINE);
    CHECK(alarm_expired == expired_before + 1u);
    CHECK(sw_next_deadline(&next) == SW_ERR_NOT_FOUND);
    CHECK(sw_stop(stop) == false);
    CHECK_OK(sw_release(c));
    sleep_ticks(2);
    CHECK(rec.runs == 1u);
    CHECK(in_use() == base);
}

/* N1: a context canceled before its deadline no longer wakes the alarm. */
static void n1_a_canceled_deadline_leaves_the_alarm(void)
{
    uint32_t calls_before = alarm_expire_calls;
    sw_ctx c;
    uint64_t next;
    CHECK_OK(sw_with_timeout(sw_background(), 3, &c));
    CHECK_OK(sw_next_deadline(&next));
    CHECK_OK(sw_cancel(c));
    CHECK(sw_next_deadline(&next) == SW_ERR_NOT_FOUND);
    sleep_ticks(5);
    CHECK(alarm_expire_calls == calls_before);
    CHECK(sw_err(c) == SW_CANCELED);
    CHECK_OK(sw_release(c));
}

/* C2, C7, T1: IRQ 0, pended from SysTick at a tick thread mode does not choose, cancels a parent
   while thread mode creates children and grandchildren of it, checks and releases them. Once the
   handler has returned, every descendant, old or new, reports canceled: none is lost. */
static void c2_a_pended_irq_cancels_while_main_creates_checks_and_releases(void)
{
    uint32_t base = in_use();
    sw_ctx parent, kept;
    CHECK_OK(sw_with_cancel(sw_background(), &parent));
    CHECK_OK(sw_with_cancel(parent, &kept));
    irq_done = false;
    irq_calls = 0;
    irq_target = parent;
    irq_pend_at = ticks() + 4u;
    uint32_t before = 0, after = 0, refused = 0;
    while (after < 50u) {
        bool canceled = irq_done; /* read before creating: the cancel has fully happened */
        sw_ctx child, grandchild;
        if (sw_with_cancel(parent, &child) != SW_OK) {
            refused++;
            break;
        }
        if (sw_with_value(child, 1, 2, &grandchild) != SW_OK) {
            refused++;
            (void)sw_release(child);
            break;
        }
        uintptr_t v = 0;
        CHECK_OK(sw_value(grandchild, 1, &v));
        CHECK(v == 2u);
        if (canceled) {
            CHECK(sw_is_done(child));
            CHECK(sw_is_done(grandchild));
            CHECK(sw_err(grandchild) == SW_CANCELED);
            after++;
        } else {
            before++;
        }
        CHECK_OK(sw_release(grandchild));
        CHECK_OK(sw_release(child));
    }
    CHECK(refused == 0u);
    CHECK(before > 10u); /* the interrupt came while the loop ran */
    CHECK(irq_calls == 1u);
    CHECK(irq_status == SW_OK);
    CHECK(sw_err(kept) == SW_CANCELED);
    uint32_t cause = 0;
    CHECK_OK(sw_cause(kept, &cause));
    CHECK(cause == CAUSE_IRQ);
    CHECK_OK(sw_release(kept));
    CHECK_OK(sw_release(parent));
    CHECK(in_use() == base);
}

/* N1 on bare metal: thread mode sleeps (wfi) until its context is done; an interrupt cancels it. */
static void n1_main_sleeps_with_wfi_until_its_context_is_done(void)
{
    sw_ctx job;
    CHECK_OK(sw_with_cancel(sw_background(), &job));
    irq_done = false;
    irq_target = job;
    irq_pend_at = ticks() + 3u;
    uint32_t wakeups = 0;
    while (!sw_is_done(job)) {
        wait_for_interrupt();
        wakeups++;
    }
    CHECK(wakeups >= 2u); /* it slept through at least one tick before the cancel */
    CHECK(irq_done);
    CHECK(sw_err(job) == SW_CANCELED);
    CHECK_OK(sw_release(job));
}

/* What the SysTick hook of the next test did. */
static volatile uint32_t isr_rounds, isr_failures;
static volatile uint32_t isr_callback_runs;

static void count_callback(void *userdata)
{
    (void)userdata;
    isr_callback_runs++;
}

/* Each tick, for 20 ticks: create, check and release from the interrupt handler. */
static void create_and_release_in_isr(uint64_t now)
{
    (void)now;
    if (isr_rounds >= 20u) {
        return;
    }
    uint32_t failures = 0;
    sw_ctx a, b, v, stop, d;
    if (sw_with_cancel(sw_background(), &a) != SW_OK) {
        isr_failures++;
        isr_rounds++;
        return;
    }
    failures += sw_with_timeout(a, 1000, &b) != SW_OK;
    failures += sw_with_value(b, 7, 70, &v) != SW_OK;
    uintptr_t got = 0;
    failures += sw_value(v, 7, &got) != SW_OK || got != 70u;
    failures += sw_after_func(b, count_callback, 0, &stop) != SW_OK;
    failures += sw_without_cancel(v, &d) != SW_OK;
    failures += sw_cancel(a) != SW_OK;
    failures += !sw_is_done(v);
    failures += sw_is_done(d); /* detached: the cancel does not reach it */
    failures += sw_release(d) != SW_OK;
    failures += sw_release(v) != SW_OK;
    failures += sw_release(b) != SW_OK;
    failures += sw_release(a) != SW_OK;
    isr_failures += failures;
    isr_rounds++;
}

/* T1 from C: the SysTick handler creates (cancel, timeout, value, detached), registers a callback,
   cancels and releases, while thread mode does the same; the callback runs in the handler that
   canceled, and every slot comes back. */
static void t1_interrupts_create_and_release_while_main_does_too(void)
{
    uint32_t base = in_use();
    isr_rounds = 0;
    isr_failures = 0;
    isr_callback_runs = 0;
    systick_hook = create_and_release_in_isr;
    uint32_t main_rounds = 0;
    while (isr_rounds < 20u) {
        sw_ctx c, t;
        CHECK_OK(sw_with_cancel(sw_background(), &c));
        CHECK_OK(sw_with_timeout(c, 500, &t));
        CHECK(!sw_is_done(t));
        CHECK_OK(sw_release(t));
        CHECK_OK(sw_release(c));
        main_rounds++;
    }
    systick_hook = 0;
    CHECK(isr_failures == 0u);
    CHECK(isr_callback_runs == 20u);
    CHECK(main_rounds > 20u);
    CHECK(in_use() == base);
}

/* A3, A6: the arena holds SW_EXPECTED_CAPACITY contexts (build setting STOPWIRE_CAPACITY); one
   more is refused with SW_ERR_ARENA_FULL, changes nothing, and is counted; after the releases the
   slots serve again. */
static void a3_a_full_arena_refuses_and_recovers(void)
{
    static sw_ctx held[SW_EXPECTED_CAPACITY];
    sw_stats s0;
    CHECK_OK(sw_stats_get(&s0));
    CHECK(s0.capacity == SW_EXPECTED_CAPACITY);
    uint32_t n = 0;
    while (n < SW_EXPECTED_CAPACITY && sw_with_cancel(sw_background(), &held[n]) == SW_OK) {
        n++;
    }
    CHECK(n == SW_EXPECTED_CAPACITY - s0.in_use);
    sw_ctx extra = {0};
    CHECK(sw_with_cancel(sw_background(), &extra) == SW_ERR_ARENA_FULL);
    CHECK(extra.raw == 0u);
    sw_stats s1;
    CHECK_OK(sw_stats_get(&s1));
    CHECK(s1.in_use == SW_EXPECTED_CAPACITY);
    CHECK(s1.full_count == s0.full_count + 1u);
    while (n > 0u) {
        CHECK_OK(sw_release(held[--n]));
    }
    CHECK(in_use() == s0.in_use);
    CHECK_OK(sw_with_cancel(sw_background(), &extra));
    CHECK_OK(sw_release(extra));
}

/* A2: a released handle is stale everywhere, even from an interrupt-free thread mode check. */
/* A creation site (docs/c-api.md, "Creation sites"): the _at forms link and work in a library
   built without std, which keeps no site (this build is freestanding: SW_SITE is NULL). */
static const sw_site here = {"main.c", 1u};

static void a2_a_released_handle_is_stale(void)
{
    sw_ctx c;
    CHECK(SW_SITE == 0);
    CHECK_OK(sw_with_cancel_at(sw_background(), &here, &c));
    CHECK_OK(sw_release(c));
    CHECK_OK(sw_with_cancel(sw_background(), &c));
    CHECK_OK(sw_release(c));
    CHECK(sw_is_done(c));
    CHECK(sw_err(c) == SW_ERR_STALE_HANDLE);
    CHECK(sw_cancel(c) == SW_ERR_STALE_HANDLE);
    CHECK(sw_release(c) == SW_ERR_STALE_HANDLE);
}

struct test {
    const char *name;
    void (*run)(void);
};

static const struct test tests[] = {
    {"t4_sw_now_is_the_systick_counter", t4_sw_now_is_the_systick_counter},
    {"t1_the_critical_section_restores_the_interrupt_mask",
     t1_the_critical_section_restores_the_interrupt_mask},
    {"n1_a_deadline_fires_through_the_systick_alarm", n1_a_deadline_fires_through_the_systick_alarm},
    {"n1_a_canceled_deadline_leaves_the_alarm", n1_a_canceled_deadline_leaves_the_alarm},
    {"c2_a_pended_irq_cancels_while_main_creates_checks_and_releases",
     c2_a_pended_irq_cancels_while_main_creates_checks_and_releases},
    {"n1_main_sleeps_with_wfi_until_its_context_is_done",
     n1_main_sleeps_with_wfi_until_its_context_is_done},
    {"t1_interrupts_create_and_release_while_main_does_too",
     t1_interrupts_create_and_release_while_main_does_too},
    {"a3_a_full_arena_refuses_and_recovers", a3_a_full_arena_refuses_and_recovers},
    {"a2_a_released_handle_is_stale", a2_a_released_handle_is_stale},
};

int main(void)
{
    sw_set_clock(ticks);
    REG32(NVIC_ICPR) = 1u;
    REG32(NVIC_ISER) = 1u; /* IRQ 0, pended only by software */
    REG32(SYST_RVR) = SYSTICK_RELOAD - 1u;
    REG32(SYST_CVR) = 0u;
    REG32(SYST_CSR) = 0x7u; /* processor clock, interrupt, counter on */

    sh_write0("stopwire ");
    sh_write0(sw_version());
    sh_write0(" from C: " SW_FIRMWARE_NAME "\n");
    uint32_t passed = 0, failed = 0;
    for (uint32_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        sh_write0("test ");
        sh_write0(tests[i].name);
        sh_write0(" ...");
        checks_failed = 0;
        tests[i].run();
        if (checks_failed == 0u) {
            sh_write0(" ok\n");
            passed++;
        } else {
            sh_write0("\n    FAILED\n");
            failed++;
        }
    }
    /* No test may leave a slot behind (A6). */
    if (in_use() != 0u) {
        sh_write0("slots still in use at the end\n");
        failed++;
    }
    REG32(SYST_CSR) = 0u;
    sh_write0(SW_FIRMWARE_NAME ": ");
    sh_write_u32(passed);
    sh_write0(" passed, ");
    sh_write_u32(failed);
    sh_write0(" failed\n");
    return failed == 0u ? 0 : 1;
}
