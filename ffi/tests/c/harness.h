/* A minimal test harness for the C suite: TEST(name) defines a test, CHECK(cond) records a failure
 * (and the test goes on), the runner prints one line per test and the closing line
 * "N passed, M failed" that `cargo xtask c-test` counts. Tests are named after SPEC rule ids. */
#ifndef STOPWIRE_TEST_HARNESS_H
#define STOPWIRE_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stopwire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*sw_test_fn)(void);

struct sw_test {
    const char *name;
    sw_test_fn fn;
};

/* Failures of the running test (one thread at a time writes it: checks in worker threads use
 * an atomic counter of their own and CHECK it after the join). */
extern int sw_test_failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            sw_test_failures++;                                                       \
            fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_EQ(a, b)                                                                      \
    do {                                                                                    \
        unsigned long long check_a_ = (unsigned long long)(a);                              \
        unsigned long long check_b_ = (unsigned long long)(b);                              \
        if (check_a_ != check_b_) {                                                         \
            sw_test_failures++;                                                             \
            fprintf(stderr, "    %s:%d: %s == %llu, expected %s == %llu\n", __FILE__, __LINE__, \
                    #a, check_a_, #b, check_b_);                                             \
        }                                                                                   \
    } while (0)

/* Must succeed, or the test cannot go on. */
#define MUST(call)                                                                        \
    do {                                                                                  \
        sw_status must_s_ = (call);                                                       \
        if (must_s_ != SW_OK) {                                                           \
            sw_test_failures++;                                                           \
            fprintf(stderr, "    %s:%d: %s returned %s\n", __FILE__, __LINE__, #call,     \
                    sw_status_str(must_s_));                                              \
            return;                                                                       \
        }                                                                                 \
    } while (0)

/* Each test file defines `const struct sw_test name[]` ending with {0, 0}; main runs them. */
int sw_run_tests(const struct sw_test *const *groups);

/* Slots in use now (to check that a test leaves the arena as it found it, SPEC A6). */
unsigned sw_test_in_use(void);

/* A manual clock for deadline tests: time moves only when the test says. */
void sw_test_clock_install(unsigned long long start);
void sw_test_clock_set(unsigned long long now);
void sw_test_clock_uninstall(void);

#ifdef __cplusplus
}
#endif

#endif
