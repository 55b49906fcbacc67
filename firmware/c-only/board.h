/*
 * The few Cortex-M system registers the C firmware uses (identical on v6-M, v7-M and v8-M), and
 * the interrupt helpers. No vendor header needed.
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define SYST_CSR 0xE000E010u  /* SysTick control and status */
#define SYST_RVR 0xE000E014u  /* SysTick reload value */
#define SYST_CVR 0xE000E018u  /* SysTick current value */
#define NVIC_ISER 0xE000E100u /* interrupt set-enable, IRQ 0-31 */
#define NVIC_ICER 0xE000E180u /* interrupt clear-enable */
#define NVIC_ISPR 0xE000E200u /* interrupt set-pending */
#define NVIC_ICPR 0xE000E280u /* interrupt clear-pending */
#define SCB_CPACR 0xE000ED88u /* coprocessor access (FPU) */

/* The number of the exception being handled (IPSR): 0 in thread mode, 15 in SysTick, 16 + n in
   IRQ n. */
static inline uint32_t current_exception(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    return ipsr & 0x1FFu;
}

/* PRIMASK bit 0: set while interrupts are masked. */
static inline uint32_t primask(void)
{
    uint32_t p;
    __asm__ volatile("mrs %0, primask" : "=r"(p)::"memory");
    return p & 1u;
}

static inline void irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }

/* Sleeps until an interrupt (SysTick ticks, so it always wakes). */
static inline void wait_for_interrupt(void) { __asm__ volatile("wfi" ::: "memory"); }

#endif
