/* sw_dump, the live-context report, as a C program uses it: a callback that prints one line per
 * context still held into a FILE, and checks of what the printed report names (docs/spec.md A6:
 * what is not released is found; once all is released the report is empty). */
#include "harness.h"

#define REPORT_MAX 8192

static const char *kind_name(sw_live_kind k) {
    switch (k) {
    case SW_LIVE_CANCEL:
        return "cancel";
    case SW_LIVE_DEADLINE:
        return "deadline";
    case SW_LIVE_VALUE:
        return "value";
    case SW_LIVE_DETACHED:
        return "detached";
    case SW_LIVE_AFTER_FUNC:
        return "after_func";
    }
    return "?";
}

/* What the printing callback is given. */
struct printer {
    FILE *out;
    unsigned entries;
    unsigned bad_sites;       /* entries without a file or line */
    unsigned disagreements;   /* entries whose err differs from sw_err, asked from the callback */
    unsigned long long last_born;
    unsigned out_of_order;    /* an entry born before the one printed before it */
};

/* One line per entry: handle, kind, err, parent, age, creation site. */
static void print_entry(const sw_live *e, void *userdata) {
    struct printer *p = userdata;
    p->entries++;
    if (e->file == NULL || e->file_len == 0 || e->line == 0) {
        p->bad_sites++;
    }
    if (p->entries > 1 && e->born < p->last_born) {
        p->out_of_order++;
    }
    p->last_born = e->born;
    /* The callback runs with no lock held: it may call the library. A registration's handle is a
     * stop handle, not a context (sw_err refuses it). */
    if (e->kind != SW_LIVE_AFTER_FUNC && sw_err(e->ctx) != e->err) {
        p->disagreements++;
    }
    fprintf(p->out, "ctx=%016llx kind=%s err=%s parent=%s%s born=%llu age=%llu site=%.*s:%u\n",
            (unsigned long long)e->ctx.raw, kind_name(e->kind), sw_status_str(e->err),
            e->parent_slot == UINT32_MAX ? "root" : "slot",
            e->parent_slot == UINT32_MAX ? "" : (e->parent_held ? ",held" : ",released"),
            (unsigned long long)e->born, (unsigned long long)e->age, (int)e->file_len,
            e->file ? e->file : "", e->line);
}

/* Runs sw_dump into a fresh temporary file and reads the report back into `text`. */
static uint32_t dump_to_text(struct printer *p, char *text, size_t cap) {
    memset(p, 0, sizeof *p);
    p->out = tmpfile();
    if (p->out == NULL) {
        text[0] = '\0';
        return UINT32_MAX;
    }
    uint32_t n = sw_dump(print_entry, p);
    rewind(p->out);
    size_t len = fread(text, 1, cap - 1, p->out);
    text[len] = '\0';
    fclose(p->out);
    p->out = NULL;
    return n;
}

/* The report's line for `c`, or NULL; copied into `line`. */
static const char *line_of(const char *text, sw_ctx c, char *line, size_t cap) {
    char key[32];
    snprintf(key, sizeof key, "ctx=%016llx ", (unsigned long long)c.raw);
    const char *at = strstr(text, key);
    if (at == NULL) {
        return NULL;
    }
    size_t n = strcspn(at, "\n");
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(line, at, n);
    line[n] = '\0';
    return line;
}

/* `c` has a line in the report and that line contains every word of `words` (NULL-terminated). */
static int names(const char *text, sw_ctx c, const char *const *words) {
    char line[256];
    if (line_of(text, c, line, sizeof line) == NULL) {
        fprintf(stderr, "    the report does not name %016llx:\n%s", (unsigned long long)c.raw,
                text);
        return 0;
    }
    for (; *words; words++) {
        if (strstr(line, *words) == NULL) {
            fprintf(stderr, "    line `%s` lacks `%s`\n", line, *words);
            return 0;
        }
    }
    return 1;
}

static int ran;
static void count_run(void *p) {
    (void)p;
    ran++;
}

static void a6_sw_dump_names_every_context_still_held(void) {
    static char text[REPORT_MAX];
    struct printer p;
    CHECK_EQ(dump_to_text(&p, text, sizeof text), 0);
    CHECK_EQ(p.entries, 0);
    CHECK_EQ(text[0], '\0');

    /* A manual clock, one tick further for each creation: birth ticks tell the order. */
    sw_test_clock_install(1000);
    sw_ctx job, tagged, timed, detached, stop;
    MUST(sw_with_cancel(sw_background(), &job));
    sw_test_clock_set(1001);
    MUST(sw_with_value(job, 7, 8, &tagged));
    sw_test_clock_set(1002);
    MUST(sw_with_timeout(job, 1000000, &timed));
    sw_test_clock_set(1003);
    MUST(sw_without_cancel(sw_background(), &detached));
    sw_test_clock_set(1004);
    ran = 0;
    MUST(sw_after_func(job, count_run, NULL, &stop));
    sw_test_clock_set(1010);

    CHECK_EQ(dump_to_text(&p, text, sizeof text), 5);
    CHECK_EQ(p.entries, 5);
    CHECK_EQ(p.bad_sites, 0);
    CHECK_EQ(p.disagreements, 0);
    CHECK_EQ(p.out_of_order, 0);
    {
        const char *const w_job[] = {"kind=cancel", "err=ok", "parent=root ", "born=1000",
                                     "age=10", NULL};
        const char *const w_tagged[] = {"kind=value", "err=ok", "parent=slot,held", "born=1001",
                                        NULL};
        const char *const w_timed[] = {"kind=deadline", "err=ok", "parent=slot,held",
                                       "born=1002", NULL};
        const char *const w_detached[] = {"kind=detached", "err=ok", "parent=root ", NULL};
        const char *const w_stop[] = {"kind=after_func", "born=1004", NULL};
        CHECK(names(text, job, w_job));
        CHECK(names(text, tagged, w_tagged));
        CHECK(names(text, timed, w_timed));
        CHECK(names(text, detached, w_detached));
        CHECK(names(text, stop, w_stop));
    }
    /* Oldest first: the job's line comes before the registration's. */
    {
        char key_job[32], key_stop[32];
        snprintf(key_job, sizeof key_job, "ctx=%016llx ", (unsigned long long)job.raw);
        snprintf(key_stop, sizeof key_stop, "ctx=%016llx ", (unsigned long long)stop.raw);
        const char *a = strstr(text, key_job), *b = strstr(text, key_stop);
        CHECK(a != NULL && b != NULL && a < b);
    }

    /* Releasing the job cancels its subtree and runs the callback: the registration is gone,
     * the job's handle is stale (not reported), its descendants are canceled and say that their
     * parent was released. */
    CHECK_EQ(sw_release(job), SW_OK);
    CHECK_EQ(ran, 1);
    CHECK_EQ(dump_to_text(&p, text, sizeof text), 3);
    CHECK_EQ(p.disagreements, 0);
    {
        char line[256];
        const char *const w_tagged[] = {"kind=value", "err=context canceled",
                                        "parent=slot,released", NULL};
        const char *const w_timed[] = {"kind=deadline", "err=context canceled",
                                       "parent=slot,released", NULL};
        const char *const w_detached[] = {"kind=detached", "err=ok", NULL};
        CHECK(line_of(text, job, line, sizeof line) == NULL);
        CHECK(line_of(text, stop, line, sizeof line) == NULL);
        CHECK(names(text, tagged, w_tagged));
        CHECK(names(text, timed, w_timed));
        CHECK(names(text, detached, w_detached));
    }

    /* Counting only: a NULL callback. */
    CHECK_EQ(sw_dump(NULL, NULL), 3);

    CHECK_EQ(sw_release(tagged), SW_OK);
    CHECK_EQ(sw_release(timed), SW_OK);
    CHECK_EQ(sw_release(detached), SW_OK);
    CHECK_EQ(dump_to_text(&p, text, sizeof text), 0);
    CHECK_EQ(text[0], '\0');
    sw_test_clock_uninstall();
}

/* The callback runs with no lock held, so it may change the arena while the report goes on, and
 * the report shows the change (each entry is read under the lock on its own): canceling the
 * oldest context from the callback runs the registration on its child, which is then not
 * reported. */
struct canceler {
    unsigned entries;
    unsigned cancel_failures;
};

static void cancel_entry(const sw_live *e, void *userdata) {
    struct canceler *c = userdata;
    c->entries++;
    if (e->kind == SW_LIVE_CANCEL && sw_cancel(e->ctx) != SW_OK) {
        c->cancel_failures++;
    }
}

static void a6_sw_dump_callback_may_call_the_library(void) {
    sw_ctx a, b, stop;
    sw_test_clock_install(1);
    MUST(sw_with_cancel(sw_background(), &a));
    sw_test_clock_set(2);
    MUST(sw_with_cancel(a, &b));
    sw_test_clock_set(3);
    ran = 0;
    MUST(sw_after_func(b, count_run, NULL, &stop));
    CHECK_EQ(sw_dump(NULL, NULL), 3);
    struct canceler c = {0, 0};
    CHECK_EQ(sw_dump(cancel_entry, &c), 2); /* a (cancels a, b, runs the callback), then b */
    CHECK_EQ(c.entries, 2);
    CHECK_EQ(c.cancel_failures, 0);
    CHECK_EQ(ran, 1);
    CHECK_EQ(sw_err(a), SW_CANCELED);
    CHECK_EQ(sw_err(b), SW_CANCELED);
    CHECK(!sw_stop(stop));
    CHECK_EQ(sw_release(b), SW_OK);
    CHECK_EQ(sw_release(a), SW_OK);
    CHECK_EQ(sw_dump(NULL, NULL), 0);
    sw_test_clock_uninstall();
}

/* Creation sites (docs/c-api.md, "Creation sites"; the leak report of SPEC A6 names the line that
 * created what is still held). Compiled with gcc, the header makes the plain names macros that
 * pass SW_SITE: each context reports this file and the line of its call, column 0. The function
 * itself (the macro bypassed), a NULL site and a site with a NULL file report the library's Rust
 * source, as before; an explicit static sw_site is reported as given. */
#if defined(__GNUC__) && !defined(SW_SITE_MACROS)
#error "with GNU C the header's creation-site macros are on"
#endif

struct seen_site {
    sw_ctx ctx;
    char file[256];
    unsigned line, column;
};

struct site_log {
    unsigned n;
    struct seen_site e[16];
};

static void log_site(const sw_live *e, void *userdata) {
    struct site_log *l = userdata;
    if (l->n >= sizeof l->e / sizeof l->e[0]) {
        return;
    }
    struct seen_site *s = &l->e[l->n++];
    size_t len = e->file_len < sizeof s->file ? e->file_len : sizeof s->file - 1;
    s->ctx = e->ctx;
    if (e->file != NULL) {
        memcpy(s->file, e->file, len);
    }
    s->file[e->file != NULL ? len : 0] = '\0';
    s->line = e->line;
    s->column = e->column;
}

/* The report's entry for `c`, or NULL. */
static const struct seen_site *site_of(const struct site_log *l, sw_ctx c) {
    for (unsigned i = 0; i < l->n; i++) {
        if (l->e[i].ctx.raw == c.raw) {
            return &l->e[i];
        }
    }
    fprintf(stderr, "    no entry for %016llx\n", (unsigned long long)c.raw);
    return NULL;
}

/* `c` was reported as created in `file` at `line` (column 0: a C site). */
static int created_at(const struct site_log *l, sw_ctx c, const char *file, unsigned line) {
    const struct seen_site *s = site_of(l, c);
    if (s == NULL) {
        return 0;
    }
    if (strcmp(s->file, file) != 0 || s->line != line || s->column != 0) {
        fprintf(stderr, "    %016llx created at %s:%u:%u, expected %s:%u\n",
                (unsigned long long)c.raw, s->file, s->line, s->column, file, line);
        return 0;
    }
    return 1;
}

/* `c` was reported with the library's own source line (a Rust file of the ffi crate). */
static int created_in_library(const struct site_log *l, sw_ctx c) {
    const struct seen_site *s = site_of(l, c);
    size_t n = s != NULL ? strlen(s->file) : 0;
    if (s == NULL || n < 3 || strcmp(s->file + n - 3, ".rs") != 0 || s->line == 0 ||
        s->column == 0) {
        fprintf(stderr, "    %016llx: expected a Rust site of the library, got %s:%u:%u\n",
                (unsigned long long)c.raw, s ? s->file : "?", s ? s->line : 0,
                s ? s->column : 0);
        return 0;
    }
    return 1;
}

static const sw_site named_site = {"firmware/driver.c", 4242};
static const sw_site no_file = {NULL, 7};

static void a6_sw_dump_reports_the_c_creation_site(void) {
    sw_ctx c[8], plain, with_null, with_no_file, named, stop;
    unsigned line[8];
    /* Through the macros: one call per line. */
    line[0] = __LINE__ + 1;
    MUST(sw_with_cancel(sw_background(), &c[0]));
    line[1] = __LINE__ + 1;
    MUST(sw_with_deadline(c[0], sw_now() + 60000000, &c[1]));
    line[2] = __LINE__ + 1;
    MUST(sw_with_timeout(c[0], 60000000, &c[2]));
    line[3] = __LINE__ + 1;
    MUST(sw_with_deadline_cause(c[0], sw_now() + 60000000, 5, &c[3]));
    line[4] = __LINE__ + 1;
    MUST(sw_with_timeout_cause(c[0], 60000000, 5, &c[4]));
    line[5] = __LINE__ + 1;
    MUST(sw_with_value(c[0], 3, 4, &c[5]));
    line[6] = __LINE__ + 1;
    MUST(sw_without_cancel(c[0], &c[6]));
    line[7] = __LINE__ + 1;
    MUST(sw_after_func(c[0], count_run, NULL, &c[7]));
    /* The function itself, NULL sites, and a site of the caller's own. */
    MUST((sw_with_cancel)(c[0], &plain));
    MUST(sw_with_cancel_at(c[0], NULL, &with_null));
    MUST(sw_with_cancel_at(c[0], &no_file, &with_no_file));
    MUST(sw_with_value_at(c[0], 9, 9, &named_site, &named));
    MUST(sw_after_func_at(named, count_run, NULL, SW_SITE, &stop));
    unsigned stop_line = __LINE__ - 1;

    struct site_log log;
    memset(&log, 0, sizeof log);
    CHECK_EQ(sw_dump(log_site, &log), 13);
    CHECK_EQ(log.n, 13);
    for (unsigned i = 0; i < 8; i++) {
        CHECK(created_at(&log, c[i], __FILE__, line[i]));
    }
    CHECK(created_at(&log, stop, __FILE__, stop_line));
    CHECK(created_at(&log, named, "firmware/driver.c", 4242));
    CHECK(created_in_library(&log, plain));
    CHECK(created_in_library(&log, with_null));
    CHECK(created_in_library(&log, with_no_file));

    /* The sites do not change what is created: the usual results, and release as always. */
    CHECK_EQ(sw_err(c[1]), SW_OK);
    {
        uintptr_t v = 0;
        CHECK_EQ(sw_value(named, 9, &v), SW_OK);
        CHECK_EQ(v, 9);
    }
    ran = 0;
    CHECK_EQ(sw_release(c[0]), SW_OK); /* runs both callbacks */
    CHECK_EQ(ran, 2);
    for (unsigned i = 1; i < 7; i++) {
        CHECK_EQ(sw_release(c[i]), SW_OK);
    }
    CHECK_EQ(sw_release(plain), SW_OK);
    CHECK_EQ(sw_release(with_null), SW_OK);
    CHECK_EQ(sw_release(with_no_file), SW_OK);
    CHECK_EQ(sw_release(named), SW_OK);
    CHECK_EQ(sw_dump(NULL, NULL), 0);
}

const struct sw_test dump_tests[] = {
    {"a6_sw_dump_names_every_context_still_held", a6_sw_dump_names_every_context_still_held},
    {"a6_sw_dump_callback_may_call_the_library", a6_sw_dump_callback_may_call_the_library},
    {"a6_sw_dump_reports_the_c_creation_site", a6_sw_dump_reports_the_c_creation_site},
    {0, 0},
};
