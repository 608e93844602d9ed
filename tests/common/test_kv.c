/*
 * test_kv - the LevelDB adapter in a fresh mkdtemp directory per test:
 * put/get/del, batches, prefix iteration order and seek, reopen, and paths
 * that cannot be a database failing with one log line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"
#include "msg.h"
#include "xalloc.h"

/* Per-test fixture: a temporary directory and the database path in it. */
typedef struct {
    char dir[64]; /* mkdtemp directory, removed at teardown */
    char *db;     /* dir/db */
    int logfd;    /* log lines captured here */
    char *log;    /* path of the log capture */
} fx_t;

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int s_setup(void **state)
{
    fx_t *fx = xcalloc(1, sizeof(*fx));
    strcpy(fx->dir, "/tmp/test_kv.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->db = xasprintf("%s/db", fx->dir);
    fx->log = xasprintf("%s/log", fx->dir);
    fx->logfd = open(fx->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fx->logfd >= 0);
    msg_set_fd(fx->logfd);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    msg_set_fd(-1);
    close(fx->logfd);
    nftw(fx->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    xfree(fx->db);
    xfree(fx->log);
    xfree(fx);
    return 0;
}

/* Number of captured log lines containing needle. */
static int s_log_lines(const fx_t *fx, const char *needle)
{
    FILE *fp = fopen(fx->log, "r");
    char line[4096];
    int n = 0;
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp))
        if (strstr(line, needle))
            n++;
    fclose(fp);
    return n;
}

static void s_put(kv_t *kv, const char *k, const char *v)
{
    assert_int_equal(kv_put(kv, k, strlen(k), v, strlen(v)), 0);
}

static void s_assert_value(kv_t *kv, const char *k, const char *want)
{
    char *v = (char *)1;
    size_t len = 99;
    int rc = kv_get(kv, k, strlen(k), &v, &len);
    if (want == NULL) {
        assert_int_equal(rc, 0);
        assert_null(v);
        assert_int_equal(len, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(len, strlen(want));
    assert_string_equal(v, want);
    xfree(v);
}

static void test_put_get_del(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    assert_non_null(kv);
    assert_string_equal(kv_path(kv), fx->db);
    s_assert_value(kv, "d/K7P", NULL);
    s_put(kv, "d/K7P", "reject");
    s_assert_value(kv, "d/K7P", "reject");
    s_put(kv, "d/K7P", "tag");
    s_assert_value(kv, "d/K7P", "tag");
    assert_int_equal(kv_del(kv, "d/K7P", 5), 0);
    s_assert_value(kv, "d/K7P", NULL);
    /* deleting what is not there is fine */
    assert_int_equal(kv_del(kv, "d/K7P", 5), 0);
    kv_close(&kv);
    assert_null(kv);
    kv_close(&kv);
}

static void test_binary_keys_and_values(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    static const uint8_t key[] = {'q', 0, 0, 1, 0xff};
    static const uint8_t val[] = {0, 1, 2, 0, 3};
    char *got;
    size_t len;
    assert_int_equal(kv_put(kv, key, sizeof(key), val, sizeof(val)), 0);
    assert_int_equal(kv_get(kv, key, sizeof(key), &got, &len), 1);
    assert_int_equal(len, sizeof(val));
    assert_memory_equal(got, val, sizeof(val));
    assert_int_equal(got[len], '\0');
    xfree(got);
    /* a key that is a prefix of another is a different key */
    assert_int_equal(kv_get(kv, key, sizeof(key) - 1, &got, &len), 0);
    /* empty values are values */
    assert_int_equal(kv_put(kv, "e", 1, NULL, 0), 0);
    assert_int_equal(kv_get(kv, "e", 1, &got, NULL), 1);
    assert_string_equal(got, "");
    xfree(got);
    kv_close(&kv);
}

static void test_batch_applies_all_at_write(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    s_put(kv, "c/old", "1");
    kv_batch_t *b = kv_batch_new();
    kv_batch_put(b, "c/a", 3, "10", 2);
    kv_batch_put(b, "c/b", 3, "20", 2);
    kv_batch_del(b, "c/old", 5);
    assert_int_equal(kv_batch_count(b), 3);
    /* nothing is visible before the write */
    s_assert_value(kv, "c/a", NULL);
    s_assert_value(kv, "c/old", "1");
    assert_int_equal(kv_batch_write(kv, b, 1), 0);
    s_assert_value(kv, "c/a", "10");
    s_assert_value(kv, "c/b", "20");
    s_assert_value(kv, "c/old", NULL);
    /* cleared and reused: only the new operations apply */
    kv_batch_clear(b);
    assert_int_equal(kv_batch_count(b), 0);
    kv_batch_put(b, "c/a", 3, "11", 2);
    assert_int_equal(kv_batch_write(kv, b, 0), 0);
    s_assert_value(kv, "c/a", "11");
    s_assert_value(kv, "c/b", "20");
    kv_batch_destroy(&b);
    assert_null(b);
    kv_batch_destroy(&b);
    kv_close(&kv);
}

static void test_batch_later_operation_wins(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    kv_batch_t *b = kv_batch_new();
    kv_batch_put(b, "k", 1, "1", 1);
    kv_batch_del(b, "k", 1);
    kv_batch_put(b, "j", 1, "1", 1);
    kv_batch_put(b, "j", 1, "2", 1);
    assert_int_equal(kv_batch_write(kv, b, 0), 0);
    s_assert_value(kv, "k", NULL);
    s_assert_value(kv, "j", "2");
    kv_batch_destroy(&b);
    kv_close(&kv);
}

/* Collects the keys an iterator yields, joined by spaces. */
static char *s_keys(kv_iter_t *it)
{
    char *out = xstrdup("");
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        (void)kv_iter_value(it, &vlen);
        char *next = xasprintf("%s%s%.*s", out, *out ? " " : "", (int)klen, k);
        xfree(out);
        out = next;
    }
    assert_int_equal(rc, 0);
    /* stays at the end */
    assert_int_equal(kv_iter_next(it), 0);
    return out;
}

static void test_prefix_iteration_order(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    const char *keys[] = {"a/2", "b/1", "a/10", "a", "a/1", "a0", "ab/1"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        s_put(kv, keys[i], "v");
    static const struct {
        const char *prefix;
        const char *want;
    } cases[] = {
        {"a/", "a/1 a/10 a/2"},
        {"a", "a a/1 a/10 a/2 a0 ab/1"},
        {"b/", "b/1"},
        {"c/", ""},
        {"", "a a/1 a/10 a/2 a0 ab/1 b/1"},
        {"a/10", "a/10"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kv_iter_t *it = kv_iter_new(kv, cases[i].prefix, strlen(cases[i].prefix));
        char *got = s_keys(it);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("prefix '%s': got '%s', want '%s'", cases[i].prefix, got, cases[i].want);
        xfree(got);
        kv_iter_destroy(&it);
        assert_null(it);
        kv_iter_destroy(&it);
    }
    kv_close(&kv);
}

static void test_iteration_sees_values(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    s_put(kv, "s/site1", "alpha");
    s_put(kv, "s/site10", "beta");
    kv_iter_t *it = kv_iter_new(kv, "s/", 2);
    size_t klen, vlen;
    assert_int_equal(kv_iter_next(it), 1);
    assert_memory_equal(kv_iter_value(it, &vlen), "alpha", 5);
    assert_int_equal(vlen, 5);
    assert_int_equal(kv_iter_next(it), 1);
    assert_memory_equal(kv_iter_key(it, &klen), "s/site10", 8);
    assert_memory_equal(kv_iter_value(it, &vlen), "beta", 4);
    assert_int_equal(kv_iter_next(it), 0);
    kv_iter_destroy(&it);
    kv_close(&kv);
}

/* The sequence log: "q/" + big-endian seq; "changes since N" is a seek. */
static void test_seek_in_sequence_log(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    uint8_t key[10] = {'q', '/'};
    const uint64_t seqs[] = {1, 2, 255, 256, 70000, 1ULL << 40};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        kv_u64_put(key + 2, seqs[i]);
        assert_int_equal(kv_put(kv, key, sizeof(key), "u", 1), 0);
    }
    s_put(kv, "r/after", "x");
    static const struct {
        uint64_t since;
        size_t first; /* index into seqs of the first entry after since */
    } cases[] = {{0, 0}, {1, 1}, {2, 2}, {255, 3}, {300, 4}, {70000, 5}, {1ULL << 40, 6}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        kv_iter_t *it = kv_iter_new(kv, "q/", 2);
        kv_u64_put(key + 2, cases[c].since + 1);
        kv_iter_seek(it, key, sizeof(key));
        size_t i = cases[c].first, klen;
        while (kv_iter_next(it) == 1) {
            const uint8_t *k = kv_iter_key(it, &klen);
            assert_int_equal(klen, sizeof(key));
            assert_true(i < sizeof(seqs) / sizeof(seqs[0]));
            assert_int_equal(kv_u64_get(k + 2), seqs[i]);
            i++;
        }
        assert_int_equal(i, sizeof(seqs) / sizeof(seqs[0]));
        kv_iter_destroy(&it);
    }
    /* a seek before the prefix starts at the prefix */
    kv_iter_t *it = kv_iter_new(kv, "q/", 2);
    kv_iter_seek(it, "a", 1);
    size_t klen;
    assert_int_equal(kv_iter_next(it), 1);
    assert_int_equal(kv_u64_get((const uint8_t *)kv_iter_key(it, &klen) + 2), 1);
    kv_iter_destroy(&it);
    kv_close(&kv);
}

/* kv_reopen() in place, with the aggregator's write-mostly options: what was written
 * before is there after, and the handle goes on writing and reading. */
/* Table files of the database at dir that this process has mapped (LevelDB maps the ones
 * it reads). */
static int s_mapped_tables(const char *dir)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, dir) != NULL && strstr(line, ".ldb") != NULL;
    fclose(f);
    return n;
}

static void test_kv_reopen_in_place(void **state)
{
    fx_t *fx = *state;
    kv_options_t opts = {
        .write_buffer_size = 64 * 1024, .block_size = 64 * 1024, .write_mostly = 1};
    kv_t *kv = kv_open(fx->db, 1, &opts);
    assert_non_null(kv);
    char key[32], val[128];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "w/%06d", i);
        snprintf(val, sizeof(val), "blob-%d", i);
        s_put(kv, key, val);
    }
    /* more tables than the log recovered at a reopen can make: a megabyte in 64 KiB */
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "x/%06d", i);
        snprintf(val, sizeof(val), "%0100d", i);
        s_put(kv, key, val);
    }
    /* what reopening is for: the tables a read of everything mapped are let go */
    kv_iter_t *all = kv_iter_new(kv, "", 0);
    while (kv_iter_next(all) == 1)
        ;
    kv_iter_destroy(&all);
    int before = s_mapped_tables(fx->db);
    assert_int_equal(kv_reopen(kv), 0);
    int after = s_mapped_tables(fx->db);
    if (before < 4 || after >= before)
        fail_msg("mapped tables: %d before the reopen, %d after", before, after);
    s_assert_value(kv, "w/000000", "blob-0");
    s_assert_value(kv, "w/002999", "blob-2999");
    s_put(kv, "w/after", "yes");
    assert_int_equal(kv_reopen(kv), 0);
    s_assert_value(kv, "w/after", "yes");
    kv_iter_t *it = kv_iter_new(kv, "w/", 2);
    int n = 0;
    while (kv_iter_next(it) == 1)
        n++;
    kv_iter_destroy(&it);
    assert_int_equal(n, 3001);
    kv_close(&kv);
}

/* A write that fails half way into LevelDB's log (the file size limit here, a full disk in
 * life) must not take later writes with it: LevelDB would append them out of step with the
 * torn record and drop them silently when it reads the log back. The handle opens the
 * database again before its next write. */
static void test_writes_after_a_failed_write_survive_a_reopen(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    assert_non_null(kv);
    s_put(kv, "k/before", "yes");
    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead */
    small = old;
    small.rlim_cur = 100000; /* inside a 32 KiB log block: the record is torn there */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char *big = xmalloc(256 * 1024);
    memset(big, 'b', 256 * 1024);
    kv_batch_t *b = kv_batch_new();
    kv_batch_put(b, "k/big", 5, big, 256 * 1024);
    int rc = kv_batch_write(kv, b, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    kv_batch_destroy(&b);
    xfree(big);
    assert_int_equal(rc, -1);
    /* the disk has room again: these writes say they are done (some 200 KiB of log, over
     * many of LevelDB's 32 KiB log blocks), and must be */
    char val[128];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 1500; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k/after%04d", i);
        s_put(kv, key, val);
    }
    kv_close(&kv);
    kv = kv_open(fx->db, 0, NULL);
    assert_non_null(kv);
    s_assert_value(kv, "k/before", "yes");
    kv_iter_t *it = kv_iter_new(kv, "k/after", 7);
    int n = 0;
    while (kv_iter_next(it) == 1)
        n++;
    kv_iter_destroy(&it);
    assert_int_equal(n, 1500);
    kv_close(&kv);
}

static void test_reopen_keeps_data(void **state)
{
    fx_t *fx = *state;
    kv_options_t opts = {
        .write_buffer_size = 64 * 1024, .cache_size = 1024 * 1024, .max_open_files = 64, .sync = 1};
    kv_t *kv = kv_open(fx->db, 1, &opts);
    assert_non_null(kv);
    char key[32], val[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "n/%06d", i);
        snprintf(val, sizeof(val), "value-%d", i * 7);
        if (i < 10)
            s_put(kv, key, val);
        else {
            kv_batch_t *b = kv_batch_new();
            kv_batch_put(b, key, strlen(key), val, strlen(val));
            assert_int_equal(kv_batch_write(kv, b, 0), 0);
            kv_batch_destroy(&b);
        }
    }
    assert_int_equal(kv_del(kv, "n/000003", 8), 0);
    kv_close(&kv);

    kv = kv_open(fx->db, 0, NULL);
    assert_non_null(kv);
    s_assert_value(kv, "n/000000", "value-0");
    s_assert_value(kv, "n/000003", NULL);
    s_assert_value(kv, "n/004999", "value-34993");
    kv_iter_t *it = kv_iter_new(kv, "n/", 2);
    int n = 0;
    while (kv_iter_next(it) == 1)
        n++;
    assert_int_equal(n, 4999);
    kv_iter_destroy(&it);
    kv_close(&kv);
}

static void test_missing_database_without_create_fails(void **state)
{
    fx_t *fx = *state;
    assert_null(kv_open(fx->db, 0, NULL));
    assert_int_equal(s_log_lines(fx, "kv: op=open"), 1);
    assert_int_equal(access(fx->db, F_OK), -1);
}

static void test_non_directory_path_fails_cleanly(void **state)
{
    fx_t *fx = *state;
    int fd = open(fx->db, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a db\n", 9), 9);
    close(fd);
    errno = 0;
    assert_null(kv_open(fx->db, 1, NULL));
    assert_int_not_equal(errno, EAGAIN); /* not "another process holds it" */
    assert_null(kv_open(fx->db, 0, NULL));
    assert_int_equal(s_log_lines(fx, "kv: op=open"), 2);
    /* nested under a file: cannot be created either, and errno says why */
    char *below = xasprintf("%s/sub", fx->db);
    errno = 0;
    assert_null(kv_open(below, 1, NULL));
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(s_log_lines(fx, "kv: op=open"), 3);
    xfree(below);
}

static void test_second_open_of_same_path_fails(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    assert_non_null(kv);
    errno = 0;
    assert_null(kv_open(fx->db, 1, NULL));
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(s_log_lines(fx, "kv: op=open"), 1);
    /* another process: its lock is refused the same way */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        errno = 0;
        kv_t *other = kv_open(fx->db, 1, NULL);
        _exit(other == NULL && errno == EAGAIN ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    kv_close(&kv);
    kv = kv_open(fx->db, 1, NULL);
    assert_non_null(kv);
    kv_close(&kv);
}

/* A damaged database is EIO, not EAGAIN: the aggregator's fatal line named "another
 * aggregator running?" for every failed open (a full disk, a damaged CURRENT). */
static void test_damaged_database_fails_with_eio(void **state)
{
    fx_t *fx = *state;
    kv_t *kv = kv_open(fx->db, 1, NULL);
    assert_non_null(kv);
    kv_close(&kv);
    char *current = xasprintf("%s/CURRENT", fx->db);
    FILE *fp = fopen(current, "w");
    assert_non_null(fp);
    fputs("garbage", fp); /* no newline: "Corruption: CURRENT file does not end with newline" */
    fclose(fp);
    errno = 0;
    assert_null(kv_open(fx->db, 1, NULL));
    assert_int_equal(errno, EIO);
    assert_int_equal(s_log_lines(fx, "kv: op=open"), 1);
    xfree(current);
}

/* The newest log file of the closed database at db, or NULL. */
static char *s_log_file(const char *db)
{
    DIR *d = opendir(db);
    assert_non_null(d);
    struct dirent *de;
    char *best = NULL;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".log") == 0 &&
            (best == NULL || strcmp(de->d_name, best) > 0)) {
            xfree(best);
            best = xstrdup(de->d_name);
        }
    }
    closedir(d);
    if (best == NULL)
        return NULL;
    char *path = xasprintf("%s/%s", db, best);
    xfree(best);
    return path;
}

/* Writes 2000 records of 100 bytes to a new database at db, each synced (so all are in
 * its log file), closes it and returns the log file's path and size. */
static char *s_fill_log(const char *db, off_t *size_p)
{
    kv_options_t opts = {.sync = 1};
    kv_t *kv = kv_open(db, 1, &opts);
    assert_non_null(kv);
    char key[32], val[101];
    memset(val, 'v', 100);
    val[100] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "r/%06d", i);
        s_put(kv, key, val);
    }
    kv_close(&kv);
    char *log = s_log_file(db);
    assert_non_null(log);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_true(st.st_size > 200000);
    *size_p = st.st_size;
    return log;
}

/* Records of the database at db, opened again. */
static int s_count_records(const char *db)
{
    kv_t *kv = kv_open(db, 0, NULL);
    assert_non_null(kv);
    kv_iter_t *it = kv_iter_new(kv, "r/", 2);
    int n = 0;
    while (kv_iter_next(it) == 1)
        n++;
    kv_iter_destroy(&it);
    kv_close(&kv);
    return n;
}

/* Bytes damaged in the middle of a log file make LevelDB drop records after them at the
 * next open; it says so only in its LOG file, and the open now says so in ours. A
 * crash's torn tail is no damage: its record is dropped without a word. */
static void test_open_reports_records_a_damaged_log_lost(void **state)
{
    fx_t *fx = *state;
    off_t size;
    char *log = s_fill_log(fx->db, &size);
    int fd = open(log, O_WRONLY);
    assert_true(fd >= 0);
    char junk[200];
    memset(junk, 0x5A, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), size / 2), (ssize_t)sizeof(junk));
    close(fd);
    int n = s_count_records(fx->db);
    assert_true(n > 0 && n < 2000);
    /* one line a damaged place LevelDB met (here a bad length, then the fragment after) */
    int lines = s_log_lines(fx, "records lost, LevelDB found a damaged log: ");
    assert_true(lines >= 1);
    assert_int_equal(s_log_lines(fx, ".log: dropping "), lines);
    xfree(log);

    /* a torn tail: the last record cut short */
    char *db2 = xasprintf("%s/db2", fx->dir);
    log = s_fill_log(db2, &size);
    assert_int_equal(truncate(log, size - 50), 0);
    assert_int_equal(s_count_records(db2), 1999);
    assert_int_equal(s_log_lines(fx, "records lost"), lines); /* the first database's only */
    xfree(log);
    xfree(db2);
}

static void test_u64_keys_sort_numerically(void **state)
{
    static const uint64_t v[] = {0, 1, 255, 256, 65535, 1ULL << 32, UINT64_MAX - 1, UINT64_MAX};
    uint8_t a[8], b[8];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        kv_u64_put(a, v[i]);
        assert_int_equal(kv_u64_get(a), v[i]);
        if (i + 1 < sizeof(v) / sizeof(v[0])) {
            kv_u64_put(b, v[i + 1]);
            assert_true(memcmp(a, b, 8) < 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_del, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_applies_all_at_write, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_later_operation_wins, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_prefix_iteration_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_iteration_sees_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_seek_in_sequence_log, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_kv_reopen_in_place, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_writes_after_a_failed_write_survive_a_reopen, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_database_without_create_fails, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_non_directory_path_fails_cleanly, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_same_path_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_open_reports_records_a_damaged_log_lost, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_database_fails_with_eio, s_setup, s_teardown),
        cmocka_unit_test(test_u64_keys_sort_numerically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
