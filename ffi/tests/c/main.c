/* The C suite: rule groups, bad input, threads, the live-context report. Prints "N passed, M
 * failed". */
#include "harness.h"

extern const struct sw_test rule_tests[];
extern const struct sw_test bad_input_tests[];
extern const struct sw_test thread_tests[];
extern const struct sw_test dump_tests[];
extern const struct sw_test wait_tests[];

int main(void) {
    const struct sw_test *const groups[] = {rule_tests, bad_input_tests, thread_tests,
                                             dump_tests, wait_tests, NULL};
    return sw_run_tests(groups);
}
