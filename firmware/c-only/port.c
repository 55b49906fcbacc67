/*
 * The port layer of a library built with `--features critical-section-port`: the critical
 * section every locked stopwire call takes. This one is for a single Cortex-M core (PRIMASK), and
 * counts its calls so that the test suite can see the library use it.
 *
 * On a multi-core chip, enter must also take a lock that excludes the other cores (after masking
 * its own core's interrupts, so that no handler of this core can spin on a lock this core holds),
 * and exit must give it back before restoring the mask. On RP2040, with one of the SIO hardware
 * spinlocks that no other code uses (reading it claims it and gives 0 if the other core has it;
 * writing frees it) and a nesting count per core (SIO CPUID says which core runs):
 *
 *     #define SIO_CPUID    (*(volatile uint32_t *)0xD0000000u)
 *     #define SW_SPINLOCK  (*(volatile uint32_t *)0xD000017Cu)   // spinlock 31
 *     static uint32_t depth[2];
 *
 *     uint32_t sw_port_critical_enter(void) {
 *         uint32_t was_masked = primask();
 *         irq_disable();
 *         if (depth[SIO_CPUID]++ == 0) { while (SW_SPINLOCK == 0) {} }
 *         return was_masked;
 *     }
 *     void sw_port_critical_exit(uint32_t was_masked) {
 *         if (--depth[SIO_CPUID] == 0) { SW_SPINLOCK = 1; }
 *         if (!was_masked) { irq_enable(); }
 *     }
 *
 * Under an RTOS, use the kernel's critical section when it masks every interrupt that calls the
 * library (on an SMP kernel, one that also spins on a cross-core lock).
 */

#include <stdint.h>

#include "board.h"
#include "port_stats.h"
#include <stopwire.h>

volatile uint32_t port_enters;
volatile uint32_t port_exits;
volatile uint32_t port_depth;
volatile uint32_t port_max_depth;

uint32_t sw_port_critical_enter(void)
{
    uint32_t was_masked = primask();
    irq_disable();
    port_enters++;
    if (++port_depth > port_max_depth) {
        port_max_depth = port_depth;
    }
    return was_masked;
}

void sw_port_critical_exit(uint32_t was_masked)
{
    port_depth--;
    port_exits++;
    if (!was_masked) {
        irq_enable();
    }
}
