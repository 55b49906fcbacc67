// C++20 test of the std::stop_token adapters of include/stopwire.hpp, both ways.
// GCC 12 reports a false "may be used uninitialized" inside <stop_token> (std::stop_callback in a
// std::optional) once <condition_variable> is included; clang and newer GCCs do not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stop_token>
#include <thread>

#include "stopwire.hpp"

#include "harness.h"

#if !defined(STOPWIRE_HAS_STOP_TOKEN)
#error "a C++20 compiler with <stop_token> must enable the adapters"
#endif

static void done_source_stops_when_the_context_is_canceled() {
    stopwire::context job = stopwire::background().with_cancel();
    stopwire::done_source bridge(job);
    CHECK_EQ(bridge.status(), SW_OK);
    std::stop_token tok = bridge.get_token();
    CHECK(!tok.stop_requested());
    job.cancel(3);
    CHECK(tok.stop_requested());
}

static void done_source_of_a_done_context_is_stopped_at_once() {
    stopwire::context job = stopwire::background().with_cancel();
    job.cancel();
    stopwire::done_source bridge(job);
    CHECK(bridge.get_token().stop_requested());
}

static void done_source_stops_a_jthread_at_the_deadline() {
    sw_test_clock_install(0);
    stopwire::context job = stopwire::background().with_deadline(10);
    stopwire::done_source bridge(job);
    std::atomic<int> loops{0};
    std::jthread worker([&loops, tok = bridge.get_token()] {
        while (!tok.stop_requested()) {
            loops++;
            std::this_thread::yield();
        }
    });
    CHECK_EQ(stopwire::expire(10), 1);  // the driver runs the bridge's callback
    worker.join();                       // returns only because the token was stopped
    CHECK(bridge.get_token().stop_requested());
    sw_test_clock_uninstall();
}

static void n1_done_source_requests_stop_at_a_deadline_with_no_expire_call() {
    sw_set_clock(nullptr);
    stopwire::context job = stopwire::background().with_timeout(20000);  // 20 ms
    stopwire::done_source bridge(job);
    // C++20's interruptible wait: returns once the token is stopped (the predicate never
    // holds); the deadline driver thread requests the stop, nothing in this program expires it.
    std::condition_variable_any cv;
    std::mutex m;
    std::unique_lock<std::mutex> lock(m);
    bool pred = cv.wait(lock, bridge.get_token(), [] { return false; });
    CHECK(!pred);
    CHECK(bridge.get_token().stop_requested());
    CHECK_EQ(job.err(), SW_DEADLINE_EXCEEDED);
}

static void done_source_destroyed_first_never_fires() {
    stopwire::context job = stopwire::background().with_cancel();
    std::stop_token tok;
    {
        stopwire::done_source bridge(job);
        tok = bridge.get_token();
    }  // the registration is stopped here
    job.cancel();
    CHECK(!tok.stop_requested());
}

static void token_context_is_canceled_by_the_token() {
    std::stop_source src;
    stopwire::context parent = stopwire::background().with_cancel();
    stopwire::token_context tc(parent, src.get_token(), 77);
    CHECK(static_cast<bool>(tc));
    stopwire::context grandchild = tc.ref().with_cancel();
    CHECK(!tc.get().is_done());
    src.request_stop();
    CHECK_EQ(tc.get().err(), SW_CANCELED);
    CHECK_EQ(*tc.get().cause(), 77);
    CHECK_EQ(grandchild.err(), SW_CANCELED);  // the whole subtree
    CHECK_EQ(parent.err(), SW_OK);            // never the parent (C8)
}

static void token_context_with_a_stopped_token_is_born_canceled() {
    std::stop_source src;
    src.request_stop();
    stopwire::token_context tc(stopwire::background(), src.get_token());
    CHECK_EQ(tc.get().err(), SW_CANCELED);
}

static void token_context_follows_its_parent_too() {
    std::stop_source src;
    stopwire::context parent = stopwire::background().with_cancel();
    stopwire::token_context tc(parent, src.get_token());
    parent.cancel(5);
    CHECK_EQ(tc.get().err(), SW_CANCELED);
    CHECK_EQ(*tc.get().cause(), 5);
    src.request_stop();  // harmless after the fact
}

static void jthread_stop_cancels_the_context_of_its_work() {
    std::atomic<bool> saw_done{false};
    {
        std::jthread worker([&saw_done](std::stop_token tok) {
            stopwire::token_context tc(stopwire::background(), tok);
            while (!tc.get().is_done()) {  // the worker checks only the stopwire context
                std::this_thread::yield();
            }
            saw_done = true;
        });
    }  // ~jthread: request_stop + join
    CHECK(saw_done.load());
}

// SPEC A6: both adapters record the creation site they are given (SW_SITE), as sw_dump reports.
struct lines_seen {
    unsigned ours = 0;
    unsigned reg_line = 0, ctx_line = 0;
};

static void count_ours(const sw_live* e, void* userdata) {
    auto* seen = static_cast<lines_seen*>(userdata);
    if (e->file_len == std::strlen(__FILE__) && std::memcmp(e->file, __FILE__, e->file_len) == 0) {
        seen->ours++;
        if (e->line == seen->reg_line || e->line == seen->ctx_line) seen->ours += 100;
    }
}

static void a6_adapters_record_the_site_they_are_given() {
    stopwire::context job = stopwire::background().with_cancel();
    std::stop_source src;
    unsigned reg_line = __LINE__ + 1;
    stopwire::done_source bridge(job, SW_SITE);
    unsigned ctx_line = __LINE__ + 1;
    stopwire::token_context tc(job, src.get_token(), 0, SW_SITE);
    CHECK_EQ(bridge.status(), SW_OK);
    CHECK(static_cast<bool>(tc));
    lines_seen seen;
    seen.reg_line = reg_line;
    seen.ctx_line = ctx_line;
    (void)sw_dump(count_ours, &seen);
    CHECK_EQ(seen.ours, 202u); /* two entries of this file, each on its own line */
}

static const struct sw_test stop_token_tests[] = {
    {"a6_adapters_record_the_site_they_are_given", a6_adapters_record_the_site_they_are_given},
    {"n1_done_source_requests_stop_at_a_deadline_with_no_expire_call",
     n1_done_source_requests_stop_at_a_deadline_with_no_expire_call},
    {"done_source_stops_when_the_context_is_canceled",
     done_source_stops_when_the_context_is_canceled},
    {"done_source_of_a_done_context_is_stopped_at_once",
     done_source_of_a_done_context_is_stopped_at_once},
    {"done_source_stops_a_jthread_at_the_deadline", done_source_stops_a_jthread_at_the_deadline},
    {"done_source_destroyed_first_never_fires", done_source_destroyed_first_never_fires},
    {"token_context_is_canceled_by_the_token", token_context_is_canceled_by_the_token},
    {"token_context_with_a_stopped_token_is_born_canceled",
     token_context_with_a_stopped_token_is_born_canceled},
    {"token_context_follows_its_parent_too", token_context_follows_its_parent_too},
    {"jthread_stop_cancels_the_context_of_its_work", jthread_stop_cancels_the_context_of_its_work},
    {nullptr, nullptr},
};

int main() {
    const struct sw_test* const groups[] = {stop_token_tests, nullptr};
    return sw_run_tests(groups);
}
