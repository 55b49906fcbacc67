// C++17 test of include/stopwire.hpp: RAII ownership, registrations that stop on destruction,
// member queries. Linked with harness.c; prints "N passed, M failed".
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stopwire.hpp"

#include "harness.h"

static_assert(!std::is_copy_constructible_v<stopwire::context>, "context is move-only");
static_assert(std::is_nothrow_move_constructible_v<stopwire::context>, "moves never throw");
static_assert(!std::is_copy_constructible_v<stopwire::registration>, "registration is move-only");
static_assert(std::is_trivially_copyable_v<stopwire::ctx_ref>, "ctx_ref is a plain view");

static void a4_context_releases_on_destruction() {
    unsigned base = sw_test_in_use();
    sw_ctx kept{0};
    {
        stopwire::context job = stopwire::background().with_cancel();
        CHECK(static_cast<bool>(job));
        CHECK_EQ(job.status(), SW_OK);
        CHECK(!job.is_done());
        CHECK_EQ(sw_test_in_use(), base + 1);
        kept = job.handle();
    }
    CHECK_EQ(sw_test_in_use(), base);
    CHECK_EQ(sw_err(kept), SW_ERR_STALE_HANDLE); // released: the handle is stale
}

static void a4_move_transfers_ownership_once() {
    unsigned base = sw_test_in_use();
    stopwire::context a = stopwire::background().with_value(5, 50);
    sw_ctx h = a.handle();
    stopwire::context b = std::move(a);
    CHECK(!a);  // NOLINT: moved-from is empty by contract
    CHECK_EQ(b.handle().raw, h.raw);
    CHECK_EQ(*b.value(5), 50);
    stopwire::context c = stopwire::background().with_cancel();
    sw_ctx old_c = c.handle();
    c = std::move(b);  // releases c's own context first
    CHECK_EQ(sw_err(old_c), SW_ERR_STALE_HANDLE);
    CHECK_EQ(c.handle().raw, h.raw);
    CHECK_EQ(sw_test_in_use(), base + 1);
    CHECK_EQ(c.release(), SW_OK);
    CHECK(!c);
    CHECK_EQ(sw_test_in_use(), base);
}

static void c6_members_report_err_cause_deadline_value() {
    stopwire::context parent = stopwire::background().with_timeout(1000000000ull);
    stopwire::context child = parent.with_value(1, 11);
    stopwire::ctx_ref view = child;  // a non-owning copy
    CHECK(!view.cause().has_value());
    CHECK(view.deadline().has_value());
    CHECK_EQ(*view.value(1), 11);
    CHECK(!view.value(2).has_value());
    CHECK_EQ(parent.cancel(42), SW_OK);
    CHECK(view.is_done());
    CHECK_EQ(view.err(), SW_CANCELED);
    CHECK_EQ(*view.cause(), 42);
    CHECK(view == child.ref());
}

static void a3_failed_creation_gives_an_empty_context_with_the_reason() {
    stopwire::context bad = stopwire::ctx_ref(sw_ctx{0}).with_cancel();
    CHECK(!bad);
    CHECK_EQ(bad.status(), SW_ERR_STALE_HANDLE);
    CHECK_EQ(bad.release(), SW_ERR_STALE_HANDLE);
    stopwire::context zero_key = stopwire::background().with_value(0, 1);
    CHECK_EQ(zero_key.status(), SW_ERR_INVALID_ARG);
}

static void f1_lambda_runs_once_when_done() {
    int runs = 0;
    stopwire::context job = stopwire::background().with_cancel();
    stopwire::registration r = job.after_func([&runs] { runs++; });
    CHECK_EQ(r.status(), SW_OK);
    CHECK(r.pending());
    CHECK_EQ(runs, 0);
    job.cancel();
    CHECK_EQ(runs, 1);
    CHECK(!r.stop());  // already ran
}

static void f4_registration_stops_on_destruction() {
    int runs = 0;
    unsigned base = sw_test_in_use();
    stopwire::context job = stopwire::background().with_cancel();
    {
        stopwire::registration r = job.after_func([&runs] { runs++; });
        CHECK_EQ(sw_test_in_use(), base + 2);
    }  // stopped here
    CHECK_EQ(sw_test_in_use(), base + 1);
    job.cancel();
    CHECK_EQ(runs, 0);
}

static void f2_done_context_runs_the_lambda_at_once() {
    int runs = 0;
    stopwire::context job = stopwire::background().with_cancel();
    job.cancel();
    stopwire::registration r = job.after_func([&runs] { runs++; });
    CHECK_EQ(runs, 1);
    CHECK(!r.pending());
}

static void c_callback(void* p) { ++*static_cast<int*>(p); }

static void f1_c_function_registration() {
    int runs = 0;
    stopwire::context job = stopwire::background().with_cancel();
    stopwire::registration moved;
    {
        stopwire::registration r = job.after_func(c_callback, &runs);
        moved = std::move(r);  // r's destructor must not stop it
    }
    job.cancel();
    CHECK_EQ(runs, 1);
}

static void f4_registration_outlives_nothing_when_stop_races_the_callback() {
    // The callable's state is shared with the pending call: destroying the registration while
    // another thread runs the callback must neither free it under the call nor leak it (ASan
    // and valgrind check both).
    for (int round = 0; round < 200; round++) {
        std::atomic<int> runs{0};
        stopwire::context job = stopwire::background().with_cancel();
        auto r = std::make_unique<stopwire::registration>(
            job.after_func([&runs, big = std::vector<int>(64, round)] { runs += big[0] >= 0; }));
        std::thread t([&job] { job.cancel(); });
        bool prevented = r->stop();
        t.join();
        CHECK_EQ(prevented ? 0 : 1, runs.load());
        r.reset();
    }
}

static void f4_stop_waits_for_a_callback_that_has_started_elsewhere() {
    // The registration's owner frees what the callback uses right after stop() answered false:
    // stop() must not return while the callback still runs in the canceling thread (ASan: no
    // heap-use-after-free; the plain run: the write lands before the check).
    for (int round = 0; round < 20; round++) {
        auto* value = new int(0);
        std::atomic<bool> started{false};
        stopwire::context job = stopwire::background().with_cancel();
        stopwire::registration r = job.after_func([value, &started] {
            started.store(true);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            *value = 42;  // after stop() returned, this would write freed memory
        });
        std::thread t([&job] { job.cancel(); });
        while (!started.load()) std::this_thread::yield();
        CHECK(!r.stop());  // started: not prevented, and waited for
        CHECK_EQ(*value, 42);
        delete value;
        t.join();
    }
}

static void n2_wait_and_wait_for_block_until_done() {
    sw_set_clock(nullptr);
    stopwire::context job = stopwire::background().with_cancel();
    CHECK_EQ(job.wait_for(std::chrono::milliseconds(2)), SW_OK);  // the time ran out
    std::thread t([ref = job.ref()] { CHECK_EQ(ref.wait(), SW_CANCELED); });
    job.cancel();
    t.join();
    stopwire::context timed = stopwire::background().with_timeout(20000);  // 20 ms
    CHECK_EQ(timed.wait(), SW_DEADLINE_EXCEEDED);  // the driver thread fired it (N1)
}

static void w1_detached_child_and_deadline_members() {
    sw_test_clock_install(100);
    stopwire::context p = stopwire::background().with_deadline(150, 7);
    stopwire::context det = p.without_cancel();
    stopwire::context t = p.with_timeout(1000);
    CHECK_EQ(stopwire::now(), 100);
    CHECK_EQ(*t.deadline(), 150);  // clamped by the parent (D2)
    CHECK(!det.deadline().has_value());
    CHECK_EQ(stopwire::expire(150), 1);
    CHECK_EQ(t.err(), SW_DEADLINE_EXCEEDED);
    CHECK_EQ(*t.cause(), 7);
    CHECK_EQ(det.err(), SW_OK);
    sw_test_clock_uninstall();
}

// Creation sites (docs/c-api.md, "Creation sites"; SPEC A6): a member given SW_SITE reports this
// file and line, column 0; without one the library's own line; the C API's plain names are
// macros in C++ too.
struct site_seen {
    sw_ctx ctx;
    std::string file;
    unsigned line, column;
};

static void collect_site(const sw_live* e, void* userdata) {
    auto* out = static_cast<std::vector<site_seen>*>(userdata);
    out->push_back({e->ctx, std::string(e->file, e->file_len), e->line, e->column});
}

static void a6_sw_site_members_report_the_callers_line() {
    unsigned line = __LINE__ + 1;
    stopwire::context job = stopwire::background().with_cancel(SW_SITE);
    stopwire::context timed = job.with_timeout(60000000, 3, SW_SITE);
    stopwire::context plain = job.with_value(1, 2);
    sw_ctx c_made{0};
    unsigned c_line = __LINE__ + 1;
    MUST(sw_without_cancel(job.handle(), &c_made));
    stopwire::registration reg = job.after_func([] {}, SW_SITE);
    unsigned reg_line = __LINE__ - 1;
    std::vector<site_seen> seen;
    CHECK_EQ(sw_dump(collect_site, &seen), 5);
    auto of = [&](sw_ctx c) -> const site_seen* {
        for (const auto& s : seen) {
            if (s.ctx.raw == c.raw) return &s;
        }
        return nullptr;
    };
    const site_seen* s = of(job.handle());
    CHECK(s != nullptr && s->file == __FILE__ && s->line == line && s->column == 0);
    s = of(timed.handle());
    CHECK(s != nullptr && s->file == __FILE__ && s->line == line + 1);
    s = of(c_made);
    CHECK(s != nullptr && s->file == __FILE__ && s->line == c_line);
    s = of(plain.handle());
    CHECK(s != nullptr && s->file.size() > 3 &&
          s->file.compare(s->file.size() - 3, 3, ".rs") == 0 && s->column > 0);
    CHECK_EQ(seen.size(), 5);
    bool reg_seen = false;
    for (const auto& e : seen) {
        reg_seen |= e.file == __FILE__ && e.line == reg_line;
    }
    CHECK(reg_seen);
    CHECK_EQ(sw_release(c_made), SW_OK);
}

static void a6_stats_member() {
    sw_stats s = stopwire::stats();
    CHECK(s.capacity > 0);
    CHECK_EQ(s.in_use, sw_test_in_use());
}

static const struct sw_test hpp_tests[] = {
    {"a4_context_releases_on_destruction", a4_context_releases_on_destruction},
    {"a4_move_transfers_ownership_once", a4_move_transfers_ownership_once},
    {"c6_members_report_err_cause_deadline_value", c6_members_report_err_cause_deadline_value},
    {"a3_failed_creation_gives_an_empty_context_with_the_reason",
     a3_failed_creation_gives_an_empty_context_with_the_reason},
    {"f1_lambda_runs_once_when_done", f1_lambda_runs_once_when_done},
    {"f4_registration_stops_on_destruction", f4_registration_stops_on_destruction},
    {"f2_done_context_runs_the_lambda_at_once", f2_done_context_runs_the_lambda_at_once},
    {"f1_c_function_registration", f1_c_function_registration},
    {"f4_registration_outlives_nothing_when_stop_races_the_callback",
     f4_registration_outlives_nothing_when_stop_races_the_callback},
    {"f4_stop_waits_for_a_callback_that_has_started_elsewhere",
     f4_stop_waits_for_a_callback_that_has_started_elsewhere},
    {"n2_wait_and_wait_for_block_until_done", n2_wait_and_wait_for_block_until_done},
    {"w1_detached_child_and_deadline_members", w1_detached_child_and_deadline_members},
    {"a6_stats_member", a6_stats_member},
    {"a6_sw_site_members_report_the_callers_line", a6_sw_site_members_report_the_callers_line},
    {nullptr, nullptr},
};

int main() {
    const struct sw_test* const groups[] = {hpp_tests, nullptr};
    return sw_run_tests(groups);
}
