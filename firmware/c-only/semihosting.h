/*
 * Output and exit through semihosting (`bkpt 0xAB`): QEMU with `-semihosting-config
 * enable=on,target=native` prints to its standard output and turns the exit into its own exit
 * status. No C library needed.
 */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H

#include <stdint.h>

/* SYS_WRITE0: prints a NUL-terminated string. */
void sh_write0(const char *s);
/* Prints `n` in decimal. */
void sh_write_u32(uint32_t n);
/* SYS_EXIT: ends the emulation; QEMU exits 0 when `code` is 0 and 1 otherwise. */
__attribute__((noreturn)) void sh_exit(int code);

#endif
