/* The runner of the C suite. */
#include "harness.h"

int sw_test_failures;

static unsigned long long manual_now;

static uint64_t manual_clock(void) {
    return __atomic_load_n(&manual_now, __ATOMIC_SEQ_CST);
}

void sw_test_clock_install(unsigned long long start) {
    __atomic_store_n(&manual_now, start, __ATOMIC_SEQ_CST);
    sw_set_clock(manual_clock);
}

void sw_test_clock_set(unsigned long long now) {
    __atomic_store_n(&manual_now, now, __ATOMIC_SEQ_CST);
}

void sw_test_clock_uninstall(void) {
    sw_set_clock(NULL);
}

unsigned sw_test_in_use(void) {
    sw_stats s;
    if (sw_stats_get(&s) != SW_OK) {
        return 0xFFFFFFFFu;
    }
    return s.in_use;
}

/* SW_TEST_ONLY: a comma-separated list of name prefixes. */
static int selected(const char *only, const char *name) {
    while (*only) {
        size_t n = strcspn(only, ",");
        if (n > 0 && strncmp(name, only, n) == 0) {
            return 1;
        }
        only += n;
        if (*only == ',') {
            only++;
        }
    }
    return 0;
}

int sw_run_tests(const struct sw_test *const *groups) {
    unsigned passed = 0, failed = 0;
    const char *only = getenv("SW_TEST_ONLY");
    for (; *groups; groups++) {
        for (const struct sw_test *t = *groups; t->name; t++) {
            if (only && !selected(only, t->name)) {
                continue;
            }
            unsigned before = sw_test_in_use();
            sw_test_failures = 0;
            t->fn();
            /* Every test releases what it created: no slot ever leaks (SPEC A6). */
            if (sw_test_in_use() != before) {
                fprintf(stderr, "    leak: %u slots in use before, %u after\n", before,
                        sw_test_in_use());
                sw_test_failures++;
            }
            if (sw_test_failures == 0) {
                passed++;
                printf("ok     %s\n", t->name);
            } else {
                failed++;
                printf("FAILED %s (%d checks)\n", t->name, sw_test_failures);
            }
            fflush(stdout);
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
