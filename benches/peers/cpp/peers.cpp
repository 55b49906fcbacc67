// C++20 std::stop_token on the workloads of stopwire's criterion bench (benches/context.rs), under
// the same ids, so that `cargo xtask bench-report` can put it beside stopwire and tokio-util.
//
// std::stop_token has no tree of its own: a child is a std::stop_source whose stop is requested by
// a std::stop_callback registered on its parent's token. That is how each workload below links a
// child to its parent. There are no deadlines and no values, so those rows have no C++ twin, and
// a check costs the same at any depth (the token reads its own state), so only depth 1 is measured.
//
// Each workload is calibrated to about --ms milliseconds per run, warmed up for one run, then timed
// for --runs runs; the median of the runs' nanoseconds per operation is reported. Heap allocations
// are counted by a replacement operator new. One JSON object per line goes to standard output:
//
//   {"id":"check/depth1","ns":0.3,"min_ns":0.29,"max_ns":0.31,"runs":11,"allocs":0}
//
// Build: g++ -std=c++20 -O2 -pthread peers.cpp (`cargo xtask bench-peers` does it).

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

// Allocations made by this thread (operator new below counts them; one add to thread-local
// storage per allocation, the same for every workload).
thread_local std::uint64_t t_allocs = 0;

}  // namespace

void* operator new(std::size_t n) {
    ++t_allocs;
    if (void* p = std::malloc(n ? n : 1)) {
        return p;
    }
    throw std::bad_alloc();
}

void operator delete(void* p) noexcept { std::free(p); }

void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Clock = std::chrono::steady_clock;

// Tells the optimizer that `p` may be read and changed here, so work on it cannot be hoisted out
// of the loop or removed (the role of Rust's black_box).
template <class T>
inline void opaque(T*& p) {
    asm volatile("" : "+r"(p) : : "memory");
}

template <class T>
inline void keep(const T& v) {
    asm volatile("" : : "r"(v) : "memory");
}

// Requests stop on the source it points at: the callback that links a child to its parent.
struct RequestStop {
    std::stop_source* child;
    void operator()() const noexcept { child->request_stop(); }
};

using Link = std::stop_callback<RequestStop>;

struct Options {
    int runs = 11;
    double ms = 300.0;
    const char* filter = nullptr;
};

struct Result {
    double median, min, max, allocs;
};

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

// `timed(iters)` runs the operation `iters` times and returns (elapsed ns, allocations).
template <class Timed>
Result measure(const Options& o, Timed timed) {
    // Calibrate: double the count until one batch takes at least 10 ms, then scale to the run length.
    std::uint64_t iters = 1;
    for (;;) {
        auto [ns, allocs] = timed(iters);
        (void)allocs;
        if (ns >= 10e6 || iters >= (1ull << 40)) {
            double per = ns / double(iters);
            iters = std::max<std::uint64_t>(1, std::uint64_t(o.ms * 1e6 / per));
            break;
        }
        iters *= 2;
    }
    timed(iters);  // warm-up, discarded
    std::vector<double> per_op;
    double allocs = 0;
    for (int r = 0; r < o.runs; ++r) {
        auto [ns, a] = timed(iters);
        per_op.push_back(ns / double(iters));
        allocs += double(a) / double(iters);
    }
    auto [lo, hi] = std::minmax_element(per_op.begin(), per_op.end());
    return {median_of(per_op), *lo, *hi, allocs / o.runs};
}

// Adapts a single-threaded operation to measure(): times `iters` calls of `op`.
template <class Op>
auto single(Op op) {
    return [op](std::uint64_t iters) mutable {
        std::uint64_t a0 = t_allocs;
        auto t0 = Clock::now();
        for (std::uint64_t i = 0; i < iters; ++i) {
            op();
        }
        auto t1 = Clock::now();
        return std::pair<double, std::uint64_t>(
            std::chrono::duration<double, std::nano>(t1 - t0).count(), t_allocs - a0);
    };
}

// check/depth1: stop_requested() on the token of a live child linked to a root.
void check_depth1(const Options& o, Result& r) {
    std::stop_source root;
    std::stop_source child;
    Link link(root.get_token(), RequestStop{&child});
    std::stop_token tok = child.get_token();
    std::stop_token* p = &tok;
    r = measure(o, single([p]() mutable {
                    opaque(p);
                    keep(p->stop_requested());
                }));
    if (tok.stop_requested()) {
        std::abort();
    }
}

// create_cancel/cancel: a child source linked to a long-lived parent, stop requested, then the
// link and the source destroyed (the callback unregisters, the shared state is freed).
void create_cancel(const Options& o, Result& r) {
    std::stop_source parent;
    std::stop_token ptok = parent.get_token();
    std::stop_token* pt = &ptok;
    r = measure(o, single([pt]() mutable {
                    opaque(pt);
                    std::stop_source child;
                    {
                        Link link(*pt, RequestStop{&child});
                        child.request_stop();
                    }
                    keep(child.stop_requested());
                }));
    if (parent.stop_requested()) {
        std::abort();
    }
}

// tree/111 and tree/931: a fresh root, `fanout` children linked to it with `fanout` children
// linked to each, stop requested on the root (the callbacks carry it down), then every link and
// source destroyed. The storage is allocated outside the timed part and reused.
struct Tree {
    explicit Tree(int fanout)
        : fanout(fanout), sources(std::size_t(fanout) * fanout + fanout),
          links(std::size_t(fanout) * fanout + fanout) {}

    // Returns true when every node saw the stop (checked only when asked, outside the timing).
    template <bool Verify>
    bool once() {
        std::stop_source root;
        std::stop_token rtok = root.get_token();
        std::size_t n = 0;
        for (int i = 0; i < fanout; ++i) {
            std::size_t c = n++;
            sources[c].emplace();
            links[c].emplace(rtok, RequestStop{&*sources[c]});
            std::stop_token ctok = sources[c]->get_token();
            for (int j = 0; j < fanout; ++j) {
                std::size_t g = n++;
                sources[g].emplace();
                links[g].emplace(ctok, RequestStop{&*sources[g]});
            }
        }
        root.request_stop();
        keep(sources[n - 1]->stop_requested());
        bool all = true;
        if constexpr (Verify) {
            for (std::size_t k = 0; k < n; ++k) {
                all = all && sources[k]->stop_requested();
            }
        }
        for (std::size_t k = 0; k < n; ++k) {
            links[k].reset();
            sources[k].reset();
        }
        return all;
    }

    int fanout;
    std::vector<std::optional<std::stop_source>> sources;
    std::vector<std::optional<Link>> links;
};

void tree(const Options& o, int fanout, Result& r) {
    Tree t(fanout);
    Tree* p = &t;
    r = measure(o, single([p]() mutable {
                    opaque(p);
                    p->once<false>();
                }));
    if (!t.once<true>()) {
        std::fprintf(stderr, "tree/%d: a node missed the stop\n", fanout);
        std::abort();
    }
}

// contended/create_cancel: two threads doing create_cancel under one shared parent, started
// together; wall time from the first start to the last finish, per operation (the Rust harness
// of benches/context.rs).
void contended(const Options& o, Result& r) {
    std::stop_source parent;
    std::stop_token ptok = parent.get_token();
    auto timed = [&ptok](std::uint64_t iters) {
        std::barrier sync(2);
        Clock::time_point start[2], end[2];
        std::uint64_t allocs[2] = {0, 0};
        auto worker = [&](int w, std::uint64_t n) {
            std::stop_token* pt = &ptok;
            sync.arrive_and_wait();
            std::uint64_t a0 = t_allocs;
            start[w] = Clock::now();
            for (std::uint64_t i = 0; i < n; ++i) {
                opaque(pt);
                std::stop_source child;
                {
                    Link link(*pt, RequestStop{&child});
                    child.request_stop();
                }
                keep(child.stop_requested());
            }
            end[w] = Clock::now();
            allocs[w] = t_allocs - a0;
        };
        std::thread a(worker, 0, iters / 2);
        std::thread b(worker, 1, iters - iters / 2);
        a.join();
        b.join();
        auto ns = std::chrono::duration<double, std::nano>(std::max(end[0], end[1]) -
                                                           std::min(start[0], start[1]))
                      .count();
        return std::pair<double, std::uint64_t>(ns, allocs[0] + allocs[1]);
    };
    r = measure(o, timed);
    if (parent.stop_requested()) {
        std::abort();
    }
}

bool selected(const Options& o, const char* id) {
    return o.filter == nullptr || std::strstr(id, o.filter) != nullptr;
}

void emit(const char* id, const Options& o, const Result& r) {
    std::printf("{\"id\":\"%s\",\"ns\":%.4f,\"min_ns\":%.4f,\"max_ns\":%.4f,\"runs\":%d,\"allocs\":%.4f}\n",
                id, r.median, r.min, r.max, o.runs, r.allocs);
    std::fflush(stdout);
    std::fprintf(stderr, "c++ %-26s %10.2f ns/op  [%.2f - %.2f]  %.2f allocs/op\n", id, r.median,
                 r.min, r.max, r.allocs);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc) {
            o.runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--ms" && i + 1 < argc) {
            o.ms = std::max(1.0, std::atof(argv[++i]));
        } else if (a == "--filter" && i + 1 < argc) {
            o.filter = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--runs N] [--ms MS] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    Result r{};
    if (selected(o, "check/depth1")) {
        check_depth1(o, r);
        emit("check/depth1", o, r);
    }
    if (selected(o, "create_cancel/cancel")) {
        create_cancel(o, r);
        emit("create_cancel/cancel", o, r);
    }
    if (selected(o, "tree/111")) {
        tree(o, 10, r);
        emit("tree/111", o, r);
    }
    if (selected(o, "tree/931")) {
        tree(o, 30, r);
        emit("tree/931", o, r);
    }
    if (selected(o, "contended/create_cancel")) {
        contended(o, r);
        emit("contended/create_cancel", o, r);
    }
    return 0;
}
