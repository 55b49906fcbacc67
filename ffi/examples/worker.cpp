// The seed's worker in C++17: a thread works until its context is canceled.
// Build: c++ -std=c++17 -pthread worker.cpp $(pkg-config --cflags --libs stopwire)
#include <chrono>
#include <cstdio>
#include <thread>

#include <stopwire.hpp>

// worker runs until the context is canceled: wait_for is Go's select on ctx.Done() and a timer.
static void worker(stopwire::ctx_ref ctx) {
    while (ctx.wait_for(std::chrono::milliseconds(50)) == SW_OK) {  // 50 ms, not canceled
        std::puts("working...");
    }
    std::printf("worker stopped: %s\n", sw_status_str(ctx.err()));
}

int main() {
    // Owns the context: released (and so canceled) when `job` goes out of scope.
    stopwire::context job = stopwire::background().with_cancel();
    if (!job) {
        std::fprintf(stderr, "cannot create a context: %s\n", sw_status_str(job.status()));
        return 1;
    }
    // Runs once the job is done, in the thread that cancels it; stopped if `done` goes first.
    stopwire::registration done = job.after_func([] { std::puts("cancel observed"); });
    std::thread t(worker, job.ref());
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    job.cancel();
    t.join();
    return 0;
}
