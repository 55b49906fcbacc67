/*
 * Start-up code of the C firmware: the vector table, the reset handler (copy .data, zero .bss,
 * enable the FPU where there is one, call main) and the fault handler. Plain C, no C library.
 */

#include <stdint.h>

#include "board.h"
#include "semihosting.h"

/* From cortex-m.ld. */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

int main(void);

void reset_handler(void);
void default_handler(void);
void hard_fault_handler(void);

/* Handlers the firmware defines (main.c). */
void SysTick_Handler(void);
void IRQ0_Handler(void);

typedef void (*vector)(void);

/* 16 system exceptions and the first 32 external interrupts (the micro:bit's nRF51 has 32; the
   other boards have more, and none of the rest is enabled). */
__attribute__((section(".vectors"), used)) static const vector vectors[16 + 32] = {
    (vector)(uintptr_t)&_estack, /* initial stack pointer */
    reset_handler,
    default_handler,    /* NMI */
    hard_fault_handler, /* HardFault */
    default_handler,    /* MemManage (v7-M, v8-M) */
    default_handler,    /* BusFault */
    default_handler,    /* UsageFault */
    default_handler,    /* SecureFault (v8-M) */
    0,
    0,
    0,
    default_handler, /* SVCall */
    default_handler, /* DebugMonitor */
    0,
    default_handler, /* PendSV */
    SysTick_Handler,
    IRQ0_Handler, /* IRQ 0: the interrupt the tests pend by software */
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    default_handler,
};

void reset_handler(void)
{
    /* Word loops, written so that the compiler does not call memcpy/memset before .data and
       .bss exist. */
    volatile uint32_t *src = &_sidata;
    volatile uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0;
    }
#if defined(__ARM_FP)
    /* Full access to CP10 and CP11 (the FPU) before any floating-point instruction. */
    REG32(SCB_CPACR) |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    sh_exit(main());
}

void default_handler(void)
{
    sh_write0("unexpected exception ");
    sh_write_u32(current_exception());
    sh_write0("\n");
    sh_exit(3);
}

void hard_fault_handler(void)
{
    sh_write0("HardFault\n");
    sh_exit(2);
}
