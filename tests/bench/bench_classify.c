/*
 * NAME
 *   bench_classify - accuracy and speed of the bounce classifier on a corpus
 *
 * SYNOPSIS
 *   bench_classify [--quick] [-v] [CORPUS_DIR]
 *
 * DESCRIPTION
 *   Reads CORPUS_DIR/MANIFEST.tsv (default ../shared/corpus; columns file,
 *   label, source_repo, commit, source_path, license, notes) and loads every
 *   listed message into memory first. Then it times, on one core:
 *     (a) a baseline pass that only reads the same bytes (a checksum), and
 *     (b) classify_message() on every message, with no envelope information
 *         (the corpus has none),
 *   each repeated over the whole corpus (3 rounds with --quick, 30 without)
 *   and measured in CPU time of the benchmark's one thread, so the figure is
 *   per core and holds on a busy machine.
 *   It prints the recall on bounce/ overall, by the manifest's original= and
 *   subtype= notes, the number of messages of each negative kind (ham, spam,
 *   autoreply, arf, mdn) called a bounce, the classes given to each kind,
 *   and messages per second with the ratio to the baseline. ambiguous/ is
 *   left out of every figure. -v lists each missed bounce and false bounce.
 *
 * DIAGNOSTICS
 *   A missing corpus prints a note and exits 0 (the corpus is optional).
 *   An unreadable listed file is reported and skipped. Exit 0 otherwise: the
 *   figures are for people, the targets are printed as PASS/FAIL lines.
 */
#include "classify.h"
#include "xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *file;    /* path relative to the corpus */
    char *label;   /* bounce, ham, spam, autoreply, arf, mdn, ambiguous */
    char *orig;    /* original= note for bounces ("rfc822", "headers-only", ...) or "" */
    char *subtype; /* subtype= note for bounces or "" */
    char *data;    /* the message */
    size_t len;    /* its length */
} bench_msg_t;

/* CPU seconds of this thread: the figure is per core and does not move
   when other processes share the machine. */
static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The value of key= in notes (up to ';' or space), or "". */
static char *s_note(const char *notes, const char *key)
{
    const char *p = strstr(notes, key);
    if (!p)
        return xstrdup("");
    p += strlen(key);
    return xstrndup(p, strcspn(p, "; \t\n"));
}

static char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Counts per key string, a tiny fixed table. */
typedef struct {
    char key[32]; /* the key */
    int total;    /* messages with it */
    int hit;      /* of those, called a bounce */
    int cls[6];   /* of those, per class */
} bench_count_t;

static bench_count_t *s_count(bench_count_t *tab, int *n, const char *key)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(tab[i].key, key))
            return &tab[i];
    bench_count_t *c = &tab[(*n)++];
    memset(c, 0, sizeof(*c));
    snprintf(c->key, sizeof(c->key), "%s", key);
    return c;
}

int main(int argc, char **argv)
{
    const char *dir = "../shared/corpus";
    int quick = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: bench_classify [--quick] [-v] [CORPUS_DIR]\n");
            return 64;
        } else
            dir = argv[i];
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/MANIFEST.tsv", dir);
    FILE *mf = fopen(path, "r");
    if (!mf) {
        printf("bench_classify: no corpus at %s (no MANIFEST.tsv); nothing to measure\n", dir);
        return 0;
    }

    size_t cap = 1024, n = 0;
    bench_msg_t *msgs = xmalloc(cap * sizeof(*msgs));
    char line[8192];
    size_t bytes = 0;
    while (fgets(line, sizeof(line), mf)) {
        char *cols[7] = {0};
        int nc = 0;
        char *save = NULL;
        line[strcspn(line, "\n")] = 0;
        for (char *t = strtok_r(line, "\t", &save); t && nc < 7; t = strtok_r(NULL, "\t", &save))
            cols[nc++] = t;
        if (nc < 2 || !strcmp(cols[0], "file") || !strcmp(cols[1], "ambiguous"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, cols[0]);
        size_t len = 0;
        char *data = s_read_file(path, &len);
        if (!data) {
            fprintf(stderr, "bench_classify: cannot read %s, skipped\n", path);
            continue;
        }
        if (n == cap)
            msgs = xrealloc(msgs, (cap *= 2) * sizeof(*msgs));
        bench_msg_t *m = &msgs[n++];
        m->file = xstrdup(cols[0]);
        m->label = xstrdup(cols[1]);
        m->orig = s_note(nc > 6 ? cols[6] : "", "original=");
        m->subtype = s_note(nc > 6 ? cols[6] : "", "subtype=");
        m->data = data;
        m->len = len;
        bytes += len;
    }
    fclose(mf);
    if (n == 0) {
        printf("bench_classify: no messages listed in %s/MANIFEST.tsv\n", dir);
        return 0;
    }

    /* accuracy pass (also warms caches and GMime's one-time init) */
    bench_count_t kinds[16], origs[16], subtypes[8];
    int nkinds = 0, norigs = 0, nsub = 0;
    int bounces = 0, found = 0, orig_seen = 0;
    for (size_t i = 0; i < n; i++) {
        bench_msg_t *m = &msgs[i];
        classify_input_t in = {.msg = m->data, .len = m->len};
        classify_result_t *r = classify_message(&in);
        classify_class_t c = classify_result_class(r);
        int is_bounce = c == CLASSIFY_BOUNCE;
        bench_count_t *k = s_count(kinds, &nkinds, m->label);
        k->total++;
        k->hit += is_bounce;
        k->cls[c]++;
        if (!strcmp(m->label, "bounce")) {
            bounces++;
            found += is_bounce;
            bench_count_t *o = s_count(origs, &norigs, *m->orig ? m->orig : "?");
            o->total++;
            o->hit += is_bounce;
            bench_count_t *s = s_count(subtypes, &nsub, *m->subtype ? m->subtype : "?");
            s->total++;
            s->hit += is_bounce;
            if (is_bounce &&
                (classify_result_orig_subject(r) || classify_result_orig_message_id(r)))
                orig_seen++;
            if (!is_bounce && verbose)
                printf("  missed bounce: %s (%s) original=%s\n", m->file, classify_class_name(c),
                       m->orig);
        } else if (is_bounce && verbose) {
            printf("  false bounce:  %s (%s)", m->file, m->label);
            for (size_t j = 0; j < classify_result_reason_count(r); j++)
                printf(" %s", classify_result_reason(r, j));
            printf("\n");
        }
        classify_result_destroy(&r);
    }

    int rounds = quick ? 3 : 30;
    /* (a) baseline: touch every byte */
    volatile uint64_t sink = 0;
    double t0 = s_now();
    for (int round = 0; round < rounds; round++)
        for (size_t i = 0; i < n; i++) {
            uint64_t sum = 0;
            const unsigned char *p = (const unsigned char *)msgs[i].data;
            for (size_t j = 0; j < msgs[i].len; j++)
                sum = sum * 31 + p[j];
            sink += sum;
        }
    double base_s = s_now() - t0;
    /* (b) classification */
    t0 = s_now();
    for (int round = 0; round < rounds; round++)
        for (size_t i = 0; i < n; i++) {
            classify_input_t in = {.msg = msgs[i].data, .len = msgs[i].len};
            classify_result_t *r = classify_message(&in);
            sink += classify_result_class(r);
            classify_result_destroy(&r);
        }
    double cls_s = s_now() - t0;
    (void)sink;

    double total = (double)n * rounds;
    printf("corpus: %s, %zu messages (ambiguous/ excluded), %.1f MB, %d rounds\n", dir, n,
           (double)bytes / 1e6, rounds);
    printf("bounce recall: %d/%d = %.2f%%  (original quoted/enclosed found in %d)\n", found,
           bounces, bounces ? 100.0 * found / bounces : 0.0, orig_seen);
    for (int i = 0; i < norigs; i++)
        printf("  original=%-14s %3d/%3d = %6.2f%%\n", origs[i].key, origs[i].hit, origs[i].total,
               100.0 * origs[i].hit / origs[i].total);
    for (int i = 0; i < nsub; i++)
        printf("  subtype=%-15s %3d/%3d = %6.2f%%\n", subtypes[i].key, subtypes[i].hit,
               subtypes[i].total, 100.0 * subtypes[i].hit / subtypes[i].total);
    printf("false bounces per negative kind (classes given: normal/bounce/autoreply/mdn/arf):\n");
    int false_total = 0;
    for (int i = 0; i < nkinds; i++) {
        if (!strcmp(kinds[i].key, "bounce"))
            continue;
        false_total += kinds[i].hit;
        printf("  %-10s %3d of %3d   (%d/%d/%d/%d/%d)\n", kinds[i].key, kinds[i].hit,
               kinds[i].total, kinds[i].cls[1], kinds[i].cls[2], kinds[i].cls[3], kinds[i].cls[4],
               kinds[i].cls[5]);
    }
    double rate = total / cls_s, base_rate = total / base_s;
    printf("speed (one core, thread CPU time): classify %.0f msgs/s (%.1f MB/s), baseline %.0f "
           "msgs/s, classify/baseline time ratio %.1f\n",
           rate, (double)bytes * rounds / cls_s / 1e6, base_rate, cls_s / base_s);

    int none_total = 0, none_hit = 0;
    for (int i = 0; i < norigs; i++)
        if (!strcmp(origs[i].key, "none") || !strcmp(origs[i].key, "headers-only")) {
            none_total += origs[i].total;
            none_hit += origs[i].hit;
        }
    printf("%s recall >= 99%%\n", found * 100 >= bounces * 99 ? "PASS" : "FAIL");
    printf("%s content-less (original=none/headers-only) recall >= 95%% (%d/%d)\n",
           none_hit * 100 >= none_total * 95 ? "PASS" : "FAIL", none_hit, none_total);
    printf("%s no false bounces\n", false_total == 0 ? "PASS" : "FAIL");
    printf("%s >= 20000 msgs/s\n", rate >= 20000 ? "PASS" : "FAIL");

    for (size_t i = 0; i < n; i++) {
        xfree(msgs[i].file);
        xfree(msgs[i].label);
        xfree(msgs[i].orig);
        xfree(msgs[i].subtype);
        xfree(msgs[i].data);
    }
    xfree(msgs);
    return 0;
}
