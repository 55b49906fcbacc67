/*
 * stopwire.hpp: a header-only C++17 layer over the C API (stopwire.h).
 *
 *   stopwire::context job = stopwire::background().with_cancel();   // owns; releases at scope end
 *   if (!job) { std::puts(sw_status_str(job.status())); return; }
 *   stopwire::registration r = job.after_func([] { std::puts("job done"); });
 *   while (!job.is_done()) { ... }                                     // workers check
 *   job.cancel();                                                      // runs the lambda
 *
 * - ctx_ref: a non-owning, copyable view of a context (what to pass down call chains).
 * - context: the owner, move-only; its destructor calls sw_release (Go's `defer cancel()`).
 *   Creation never throws: a failed creation gives an empty context (`!ctx`) whose status() says
 *   why (SW_ERR_ARENA_FULL, SW_ERR_STALE_HANDLE, ...).
 * - registration: a callback registered with after_func, move-only; its destructor stops it
 *   (sw_stop) and, if the callback has already started in another thread, waits until it has
 *   returned (as std::stop_callback's destructor does), so the callback never runs, nor is still
 *   running, once the registration is gone; from inside the callback itself it does not wait.
 *   Callables are kept in a small heap block shared with the pending call (freed by whichever
 *   finishes last). Callbacks must not throw (they are called from C: std::terminate).
 * - Creation sites (sw_dump): every creating member takes a last `const sw_site* site`, NULL by
 *   default (the library's line is recorded); pass SW_SITE to record the caller's line:
 *   `job.with_cancel(SW_SITE)`, `ctx.with_timeout(1000, 0, SW_SITE)`. (A default argument cannot
 *   make a static object per call site, which the C API keeps a pointer to.)
 * - Waiting (host builds): ctx_ref::wait() and wait_for(std::chrono duration) block the calling
 *   thread until the context is done (sw_wait, sw_wait_for); deadlines fire by themselves.
 * - With C++20 <stop_token>: done_source (a std::stop_source that is stopped when a context is
 *   done) and token_context (a context canceled when a std::stop_token is stopped).
 *
 * No exceptions, no RTTI needed. Every member is a thin call into the C API.
 */
#ifndef STOPWIRE_HPP
#define STOPWIRE_HPP

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "stopwire.h"

#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<stop_token>)
#include <stop_token>
#if defined(__cpp_lib_jthread)
#define STOPWIRE_HAS_STOP_TOKEN 1
#endif
#endif
#endif

namespace stopwire {

class context;
class registration;

namespace detail {

/* The heap state of a C++ callable: one reference for the registration, one for the pending call. */
struct block_base {
    std::atomic<int> refs{2};
    /* 0: not started; 1: running in `runner`; 2: returned. */
    std::atomic<int> phase{0};
    std::atomic<std::thread::id> runner{};
    virtual void run() noexcept = 0;
    virtual ~block_base() = default;
    void drop() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }
};

template <class F>
struct block final : block_base {
    F f;
    explicit block(F&& fn) : f(std::move(fn)) {}
    void run() noexcept override { f(); }
};

inline void trampoline(void* p) noexcept {
    auto* b = static_cast<block_base*>(p);
    b->runner.store(std::this_thread::get_id(), std::memory_order_relaxed);
    b->phase.store(1, std::memory_order_release);
    b->run();
    b->phase.store(2, std::memory_order_release);
    b->drop();
}

}  // namespace detail

/* A non-owning view of a context: copy it freely; it never releases anything. */
class ctx_ref {
public:
    constexpr ctx_ref() noexcept : h_{0} {}
    constexpr explicit ctx_ref(sw_ctx h) noexcept : h_(h) {}

    sw_ctx handle() const noexcept { return h_; }

    /* The hot-path check: lock-free, ISR-safe; true for a stale handle. */
    bool is_done() const noexcept { return sw_is_done(h_); }
    /* SW_OK, SW_CANCELED, SW_DEADLINE_EXCEEDED, or why the handle is refused. */
    sw_status err() const noexcept { return sw_err(h_); }
    /* Host builds: blocks until done; SW_CANCELED, SW_DEADLINE_EXCEEDED or SW_ERR_STALE_HANDLE. */
    sw_status wait() const noexcept { return sw_wait(h_); }
    /* Host builds: as wait(), giving up after `d`: SW_OK when the time ran out first. */
    template <class Rep, class Period>
    sw_status wait_for(std::chrono::duration<Rep, Period> d) const noexcept {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
        return sw_wait_for(h_, us < 0 ? 0 : static_cast<std::uint64_t>(us));
    }
    /* The cause once done (0 = none); empty while not done. */
    std::optional<std::uint32_t> cause() const noexcept {
        std::uint32_t c = 0;
        if (sw_cause(h_, &c) == SW_OK) return c;
        return std::nullopt;
    }
    /* The effective deadline in ticks, if any. */
    std::optional<std::uint64_t> deadline() const noexcept {
        std::uint64_t d = 0;
        if (sw_deadline(h_, &d) == SW_OK) return d;
        return std::nullopt;
    }
    /* The nearest value for `key` (non-zero), if any. */
    std::optional<std::uintptr_t> value(std::uintptr_t key) const noexcept {
        std::uintptr_t v = 0;
        if (sw_value(h_, key, &v) == SW_OK) return v;
        return std::nullopt;
    }
    /* Cancels this context and its subtree; cause 0 records none. Runs due callbacks. */
    sw_status cancel(std::uint32_t cause = 0) const noexcept {
        return cause == 0 ? sw_cancel(h_) : sw_cancel_cause(h_, cause);
    }

    /* Children (declared here, defined below `context`). */
    context with_cancel(const sw_site* site = nullptr) const noexcept;
    context with_deadline(std::uint64_t at, std::uint32_t cause = 0,
                          const sw_site* site = nullptr) const noexcept;
    context with_timeout(std::uint64_t ticks, std::uint32_t cause = 0,
                         const sw_site* site = nullptr) const noexcept;
    context with_value(std::uintptr_t key, std::uintptr_t value,
                       const sw_site* site = nullptr) const noexcept;
    context without_cancel(const sw_site* site = nullptr) const noexcept;

    /* Runs `f()` once after this context is done (at once if it already is). */
    template <class F>
    registration after_func(F&& f, const sw_site* site = nullptr) const noexcept;
    /* The C form: `fn(userdata)`, no allocation. */
    registration after_func(sw_callback fn, void* userdata,
                            const sw_site* site = nullptr) const noexcept;

    friend bool operator==(ctx_ref a, ctx_ref b) noexcept { return a.h_.raw == b.h_.raw; }
    friend bool operator!=(ctx_ref a, ctx_ref b) noexcept { return a.h_.raw != b.h_.raw; }

protected:
    sw_ctx h_;
};

inline ctx_ref background() noexcept { return ctx_ref(sw_background()); }
inline ctx_ref todo() noexcept { return ctx_ref(sw_todo()); }

/* The owner of a context: move-only, releases it on destruction. Converts to ctx_ref by slicing
 * (a copy of the handle, not of the ownership). */
class context : public ctx_ref {
public:
    context() noexcept : ctx_ref(), status_(SW_ERR_STALE_HANDLE) {}
    /* Takes ownership of a handle from the C API. */
    explicit context(sw_ctx owned) noexcept : ctx_ref(owned), status_(SW_OK) {}

    context(const context&) = delete;
    context& operator=(const context&) = delete;
    context(context&& o) noexcept : ctx_ref(o.h_), status_(o.status_) { o.h_ = sw_ctx{0}; }
    context& operator=(context&& o) noexcept {
        if (this != &o) {
            release();
            h_ = o.h_;
            status_ = o.status_;
            o.h_ = sw_ctx{0};
        }
        return *this;
    }
    ~context() { release(); }

    /* True when this object owns a context. */
    explicit operator bool() const noexcept { return h_.raw != 0; }
    /* SW_OK, or why the creation that made this object failed. */
    sw_status status() const noexcept { return status_; }
    ctx_ref ref() const noexcept { return ctx_ref(h_); }

    /* Cancels if needed and releases now; the object is empty afterwards. */
    sw_status release() noexcept {
        if (h_.raw == 0) return SW_ERR_STALE_HANDLE;
        sw_status s = sw_release(h_);
        h_ = sw_ctx{0};
        return s;
    }
    /* Gives up ownership without releasing: the caller must sw_release the handle. */
    sw_ctx disown() noexcept {
        sw_ctx h = h_;
        h_ = sw_ctx{0};
        return h;
    }

    /* Wraps the result of a C creation function. */
    static context adopt(sw_status s, sw_ctx h) noexcept {
        context c;
        if (s == SW_OK) c.h_ = h;
        c.status_ = s;
        return c;
    }

private:
    sw_status status_;
};

inline context ctx_ref::with_cancel(const sw_site* site) const noexcept {
    sw_ctx out{0};
    sw_status s = sw_with_cancel_at(h_, site, &out);
    return context::adopt(s, out);
}
inline context ctx_ref::with_deadline(std::uint64_t at, std::uint32_t cause,
                                      const sw_site* site) const noexcept {
    sw_ctx out{0};
    sw_status s = sw_with_deadline_cause_at(h_, at, cause, site, &out);
    return context::adopt(s, out);
}
inline context ctx_ref::with_timeout(std::uint64_t ticks, std::uint32_t cause,
                                     const sw_site* site) const noexcept {
    sw_ctx out{0};
    sw_status s = sw_with_timeout_cause_at(h_, ticks, cause, site, &out);
    return context::adopt(s, out);
}
inline context ctx_ref::with_value(std::uintptr_t key, std::uintptr_t value,
                                   const sw_site* site) const noexcept {
    sw_ctx out{0};
    sw_status s = sw_with_value_at(h_, key, value, site, &out);
    return context::adopt(s, out);
}
inline context ctx_ref::without_cancel(const sw_site* site) const noexcept {
    sw_ctx out{0};
    sw_status s = sw_without_cancel_at(h_, site, &out);
    return context::adopt(s, out);
}

/* A callback registration: move-only; stops the callback on destruction. */
class registration {
public:
    registration() noexcept = default;
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    registration(registration&& o) noexcept
        : stop_(o.stop_), block_(o.block_), status_(o.status_) {
        o.stop_ = sw_ctx{0};
        o.block_ = nullptr;
    }
    registration& operator=(registration&& o) noexcept {
        if (this != &o) {
            stop();
            stop_ = o.stop_;
            block_ = o.block_;
            status_ = o.status_;
            o.stop_ = sw_ctx{0};
            o.block_ = nullptr;
        }
        return *this;
    }
    ~registration() { stop(); }

    /* SW_OK, or why the registration failed (the callback will never run then). */
    sw_status status() const noexcept { return status_; }
    /* True while the callback may still run (registered, not run, not stopped). */
    bool pending() const noexcept { return stop_.raw != 0; }

    /* True exactly when this call prevented the callback (sw_stop). When it did not and the
     * callback has started in another thread, waits until it returns (so what it uses may be
     * destroyed right after); called from inside the callback itself, it does not wait. */
    bool stop() noexcept {
        bool prevented = stop_.raw != 0 && sw_stop(stop_);
        stop_ = sw_ctx{0};
        if (block_ != nullptr) {
            if (prevented) {
                block_->drop(); /* the call that will never happen */
            } else if (block_->runner.load(std::memory_order_relaxed) !=
                       std::this_thread::get_id()) {
                /* sw_stop answered false: the callback was dispatched (F4); wait for its end. */
                while (block_->phase.load(std::memory_order_acquire) != 2) {
                    std::this_thread::yield();
                }
            }
            block_->drop();
            block_ = nullptr;
        }
        return prevented;
    }

private:
    friend class ctx_ref;
    sw_ctx stop_{0};
    detail::block_base* block_ = nullptr;
    sw_status status_ = SW_OK;
};

inline registration ctx_ref::after_func(sw_callback fn, void* userdata,
                                        const sw_site* site) const noexcept {
    registration r;
    r.status_ = sw_after_func_at(h_, fn, userdata, site, &r.stop_);
    if (r.status_ != SW_OK) r.stop_ = sw_ctx{0};
    return r;
}

template <class F>
registration ctx_ref::after_func(F&& f, const sw_site* site) const noexcept {
    using Fn = std::decay_t<F>;
    registration r;
    auto* b = new (std::nothrow) detail::block<Fn>(Fn(std::forward<F>(f)));
    if (b == nullptr) {
        r.status_ = SW_ERR_ARENA_FULL; /* no memory: nothing registered */
        return r;
    }
    r.status_ = sw_after_func_at(h_, &detail::trampoline, b, site, &r.stop_);
    if (r.status_ != SW_OK) {
        r.stop_ = sw_ctx{0};
        delete b; /* never registered: no call holds it */
        return r;
    }
    r.block_ = b;
    return r;
}

inline std::uint64_t now() noexcept { return sw_now(); }
inline std::uint32_t expire(std::uint64_t at) noexcept { return sw_expire(at); }
inline sw_stats stats() noexcept {
    sw_stats s{};
    (void)sw_stats_get(&s);
    return s;
}

#if defined(STOPWIRE_HAS_STOP_TOKEN)

/* A std::stop_source that is stopped when a context is done (at once if it already is). Keep the
 * object alive as long as the bridge should work; tokens from get_token() stay valid after.
 * `site` (SW_SITE, or NULL) is the creation site sw_dump reports for its registration. */
class done_source {
public:
    explicit done_source(ctx_ref ctx, const sw_site* site = nullptr) noexcept
        : reg_(ctx.after_func([src = source_]() mutable noexcept { src.request_stop(); }, site)) {}
    std::stop_token get_token() const noexcept { return source_.get_token(); }
    std::stop_source& source() noexcept { return source_; }
    sw_status status() const noexcept { return reg_.status(); }

private:
    std::stop_source source_;
    registration reg_;
};

/* A child context of `parent` that is canceled (cause `cause`, 0 = none) when `token` is
 * stopped: at once if it already is. Neither copyable nor movable (std::stop_callback is not).
 * `site` (SW_SITE, or NULL) is the creation site sw_dump reports for it. */
class token_context {
    struct canceler {
        sw_ctx h;
        std::uint32_t cause;
        void operator()() const noexcept {
            (void)(cause == 0 ? sw_cancel(h) : sw_cancel_cause(h, cause));
        }
    };

public:
    token_context(ctx_ref parent, std::stop_token token, std::uint32_t cause = 0,
                  const sw_site* site = nullptr) noexcept
        : ctx_(parent.with_cancel(site)) {
        if (ctx_) cb_.emplace(std::move(token), canceler{ctx_.handle(), cause});
    }
    token_context(const token_context&) = delete;
    token_context& operator=(const token_context&) = delete;
    ~token_context() {
        cb_.reset(); /* before the handle is released */
    }

    const context& get() const noexcept { return ctx_; }
    ctx_ref ref() const noexcept { return ctx_.ref(); }
    explicit operator bool() const noexcept { return static_cast<bool>(ctx_); }

private:
    context ctx_;
    std::optional<std::stop_callback<canceler>> cb_;
};

#endif /* STOPWIRE_HAS_STOP_TOKEN */

}  // namespace stopwire

#endif /* STOPWIRE_HPP */
