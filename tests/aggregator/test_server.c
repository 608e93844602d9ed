/*
 * test_server - server_check_config(), the start's own checks that "-n" runs
 * too: a missing, malformed or public-only server_key_file, a non-loopback
 * endpoint in plain mode, an unknown control_group or user are refused with
 * the FILE:LINE of the key and the status the start exits with; what the
 * start accepts passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>

#include "agg_config.h"
#include "server.h"
#include "xalloc.h"
#include "zsock.h"

/* A temp dir per test, for the config and key files. */
typedef struct {
    char dir[64]; /* mkdtemp */
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_server.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    char *cmd = xasprintf("rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    xfree(fx);
    return 0;
}

/* Writes dir/name with text; returns its path (caller frees). */
static char *s_write(const s_fx_t *fx, const char *name, const char *text, mode_t mode)
{
    char *path = xasprintf("%s/%s", fx->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* Loads a config of the base lines (1 and 2) and then extra, runs the check; its status,
 * errors in err, the config's path in *path_p (caller frees). */
static int s_check(const s_fx_t *fx, const char *extra, char *err, size_t errlen, char **path_p)
{
    char *text = xasprintf("control_endpoint = ipc://%s/ctl.sock\ndata_dir = %s/db\n%s", fx->dir,
                           fx->dir, extra);
    char *path = s_write(fx, "agg.conf", text, 0644);
    xfree(text);
    agg_config_t *cfg = agg_config_load(path, err, errlen);
    if (cfg == NULL)
        fail_msg("config refused before the check: %s", err);
    int rc = server_check_config(cfg, err, errlen);
    agg_config_destroy(&cfg);
    *path_p = path;
    return rc;
}

/* Asserts extra is refused with status want and "conf:line: what". */
static void s_refused(const s_fx_t *fx, const char *extra, int want, int line, const char *what)
{
    char err[4096], *path = NULL;
    int rc = s_check(fx, extra, err, sizeof(err), &path);
    if (rc != want)
        fail_msg("status %d, want %d: %s", rc, want, err);
    char *at = xasprintf("%s:%d: ", path, line);
    char *p = strstr(err, at);
    if (p == NULL || strstr(p, what) == NULL)
        fail_msg("want \"%s...%s\" in: %s", at, what, err);
    xfree(at);
    xfree(path);
}

static void test_plain_loopback_config_passes(void **state)
{
    s_fx_t *fx = *state;
    char err[4096], *path = NULL;
    assert_int_equal(
        s_check(fx, "event_endpoint = tcp://127.0.0.1:1\nuser = root\n", err, sizeof(err), &path),
        EX_OK);
    assert_string_equal(err, "");
    xfree(path);
}

static void test_plain_mode_refuses_a_wildcard_endpoint(void **state)
{
    s_fx_t *fx = *state;
    s_refused(fx, "\nevent_endpoint = tcp://*:47570\n", EX_CONFIG, 4,
              "event_endpoint tcp://*:47570 is not loopback: plain mode (no server_key_file) "
              "may bind loopback only");
    s_refused(fx, "snapshot_endpoint = tcp://192.0.2.1:5572\n", EX_CONFIG, 3,
              "snapshot_endpoint tcp://192.0.2.1:5572 is not loopback");
}

static void test_missing_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *extra = xasprintf("server_key_file = %s/absent.key\n", fx->dir);
    s_refused(fx, extra, EX_CONFIG, 3, "absent.key: cannot load its key pair");
    xfree(extra);
}

static void test_key_file_that_is_no_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *extra = xasprintf("server_key_file = %s\n", fx->dir);
    s_refused(fx, extra, EX_CONFIG, 3, "cannot load its key pair");
    xfree(extra);
}

static void test_malformed_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *key = s_write(fx, "bad.key", "public = short\nsecret = short\n", 0600);
    char *extra = xasprintf("server_key_file = %s\n", key);
    s_refused(fx, extra, EX_CONFIG, 3, "bad.key: cannot load its key pair");
    xfree(extra);
    xfree(key);
}

static void test_public_only_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    if (!zsock_has_curve())
        skip();
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    char *key = xasprintf("%s/pub.key", fx->dir);
    assert_int_equal(zsock_keys_save(key, &keys, 0), 0);
    char *extra = xasprintf("server_key_file = %s\n", key);
    s_refused(fx, extra, EX_CONFIG, 3, "has no secret key");
    xfree(extra);
    xfree(key);
}

static void test_curve_mode_may_bind_any_address(void **state)
{
    s_fx_t *fx = *state;
    if (!zsock_has_curve())
        skip();
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    char *key = xasprintf("%s/server.key", fx->dir);
    assert_int_equal(zsock_keys_save(key, &keys, 1), 0);
    char *extra = xasprintf("server_key_file = %s\nevent_endpoint = tcp://*:47570\n", key);
    char err[4096], *path = NULL;
    assert_int_equal(s_check(fx, extra, err, sizeof(err), &path), EX_OK);
    xfree(path);
    xfree(extra);
    xfree(key);
}

static void test_unknown_control_group_is_refused(void **state)
{
    s_fx_t *fx = *state;
    s_refused(fx, "control_group = nosuchgroup-backstop\n", EX_CONFIG, 3,
              "control_group nosuchgroup-backstop: no such group");
}

static void test_unknown_user_is_refused_as_the_start_does(void **state)
{
    s_fx_t *fx = *state;
    /* the start has always exited EX_NOUSER for it; -n says EX_CONFIG (main) */
    s_refused(fx, "user = nosuchuser-backstop\n", EX_NOUSER, 3,
              "user nosuchuser-backstop: no such user");
}

static void test_every_problem_is_listed_first_status_wins(void **state)
{
    s_fx_t *fx = *state;
    char err[4096], *path = NULL;
    int rc = s_check(fx, "user = nosuchuser-backstop\ncontrol_group = nosuchgroup-backstop\n", err,
                     sizeof(err), &path);
    assert_int_equal(rc, EX_CONFIG);
    assert_non_null(strstr(err, "no such user"));
    assert_non_null(strstr(err, "no such group"));
    xfree(path);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_plain_loopback_config_passes),
        T(test_plain_mode_refuses_a_wildcard_endpoint),
        T(test_missing_key_file_is_refused),
        T(test_key_file_that_is_no_file_is_refused),
        T(test_malformed_key_file_is_refused),
        T(test_public_only_key_file_is_refused),
        T(test_curve_mode_may_bind_any_address),
        T(test_unknown_control_group_is_refused),
        T(test_unknown_user_is_refused_as_the_start_does),
        T(test_every_problem_is_listed_first_status_wins),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
