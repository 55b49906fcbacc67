/* The C half of the demo: an interrupt-time function that cancels a Rust task's context through
 * the C API. The Rust firmware hands it the context (`demo_c_arm`) and calls `demo_c_button_isr`
 * from an interrupt handler, as a driver's "abort" button would. */
#include <stdint.h>
#include "stopwire.h"

#define ABORTED_BY_BUTTON 0xC0DEu

static sw_ctx armed;          /* all-zero: never a valid context, so nothing is armed */
static volatile uint32_t presses;

void demo_c_arm(sw_ctx ctx) { armed = ctx; }

/* Runs in interrupt context. sw_cancel_cause takes a critical section for a bounded time and runs
 * the callbacks the cancellation makes due (here: the waker of the Rust task) before returning. */
sw_status demo_c_button_isr(void) {
    presses++;
    if (sw_is_done(armed)) {
        return SW_OK;
    }
    return sw_cancel_cause(armed, ABORTED_BY_BUTTON);
}

uint32_t demo_c_presses(void) { return presses; }
