/* Semihosting calls: `bkpt 0xAB` with the operation in r0 and its argument in r1. */

#include "semihosting.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
/* Reasons for SYS_EXIT (the Arm semihosting specification's ADP_Stopped_* codes). */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023u

static uint32_t semihosting_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write0(const char *s) { (void)semihosting_call(SYS_WRITE0, s); }

void sh_write_u32(uint32_t n)
{
    char buf[11];
    int i = 10;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + n % 10u);
        n /= 10u;
    } while (n != 0u);
    sh_write0(&buf[i]);
}

void sh_exit(int code)
{
    /* On 32-bit Arm the argument is the reason itself, not a pointer to a block. */
    uint32_t reason = code == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUN_TIME_ERROR;
    (void)semihosting_call(SYS_EXIT, (const void *)(uintptr_t)reason);
    for (;;) {
    }
}
