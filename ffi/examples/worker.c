/* The seed's worker in C: a thread works until its context is canceled.
 * Build: cc -std=c11 -pthread worker.c $(pkg-config --cflags --libs stopwire) */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <stopwire.h>

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* worker runs until the context is canceled. Go: select { case <-ctx.Done(): return;
 * case <-time.After(50 * time.Millisecond): work } — sw_wait_for blocks, nothing polls. */
static void *worker(void *arg) {
    sw_ctx ctx = *(const sw_ctx *)arg;
    while (sw_wait_for(ctx, 50000) == SW_OK) { /* 50 ms passed, not canceled */
        printf("working...\n");
    }
    printf("worker stopped: %s\n", sw_status_str(sw_err(ctx)));
    return NULL;
}

int main(void) {
    sw_ctx ctx;
    pthread_t thread;
    /* Go: ctx, cancel := context.WithCancel(context.Background()) */
    sw_status s = sw_with_cancel(sw_background(), &ctx);
    if (s != SW_OK) {
        fprintf(stderr, "cannot create a context: %s\n", sw_status_str(s));
        return 1;
    }
    pthread_create(&thread, NULL, worker, &ctx);
    sleep_ms(120);
    sw_cancel(ctx); /* Go: cancel() */
    pthread_join(thread, NULL);
    sw_release(ctx); /* Go: defer cancel(); the handle is stale from here on */
    return 0;
}
