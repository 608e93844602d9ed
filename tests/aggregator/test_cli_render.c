/* test_cli_render - the tables `backstop` prints from reply documents: columns aligned,
 * relative times against the document's now_ms, long values cut, missing members "-". */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli_render.h"

/* Renders the JSON text doc for cmd; returns the output (free()). */
static char *s_render(Backstop__ControlRequest__Command cmd, const char *doc)
{
    json_error_t jerr;
    json_t *j = json_loads(doc, 0, &jerr);
    if (j == NULL)
        fail_msg("bad test json: %s", jerr.text);
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    assert_int_equal(cli_render(fp, cmd, j), 0);
    fclose(fp);
    json_decref(j);
    return out;
}

/* Fails unless out contains line as one whole line. */
static void s_has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return;
    fail_msg("line \"%s\" not in:\n%s", line, out);
}

#define NOW "1700000000000"

static void test_decision_list_table(void **state)
{
    (void)state;
    char *out =
        s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
                 "{\"now_ms\":" NOW ",\"decisions\":["
                 "{\"id\":\"AB12CD34\",\"scope\":\"subject\",\"value\":\"cheap meds #\","
                 "\"action\":\"reject\",\"reach\":\"fleet\",\"expires_ms\":1700003600000,"
                 "\"origin\":\"rule\",\"origin_who\":\"fleet_subject\",\"mode\":\"enforce\"},"
                 "{\"id\":\"ZX98YW76\",\"scope\":\"client_ip\",\"value\":\"192.0.2.1\","
                 "\"action\":\"tempfail\",\"reach\":\"local\",\"site\":\"acme\","
                 "\"expires_ms\":1700000090000,\"origin\":\"cli\",\"origin_who\":\"alice\","
                 "\"mode\":\"observe\"}]}");
    s_has_line(out, "ID        SCOPE      VALUE         ACTION              REACH      EXPIRES  "
                    "ORIGIN");
    s_has_line(out, "AB12CD34  subject    cheap meds #  reject              fleet      1h00m    "
                    "rule fleet_subject");
    s_has_line(out, "ZX98YW76  client_ip  192.0.2.1     tempfail (observe)  site acme  1m30s    "
                    "cli alice");
    free(out);
}

static void test_empty_lists_say_so(void **state)
{
    (void)state;
    static const struct {
        Backstop__ControlRequest__Command cmd; /* command */
        const char *line;                      /* what it prints */
    } cases[] = {
        {BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST, "No active decisions."},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, "No allowlist entries."},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__SITES, "No sites registered."},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__TOP, "No keys counted in the current windows."},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = s_render(cases[i].cmd, "{\"now_ms\":" NOW "}");
        s_has_line(out, cases[i].line);
        free(out);
    }
}

static void test_show_with_evidence(void **state)
{
    (void)state;
    char *out = s_render(
        BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW,
        "{\"now_ms\":" NOW ",\"decision\":{\"id\":\"AB12CD34\",\"scope\":\"subject\","
        "\"value\":\"cheap meds #\",\"fp\":\"00000000000000ff\",\"action\":\"reject\","
        "\"reach\":\"fleet\",\"created_ms\":1699999990000,\"expires_ms\":1700003590000,"
        "\"origin\":\"rule\",\"origin_who\":\"fleet_subject\",\"seq\":7,\"epoch\":\"00ab\","
        "\"mode\":\"enforce\",\"all_mail\":false,\"evidence\":{\"rule\":\"fleet_subject\","
        "\"events\":420,\"sites\":3,\"window_s\":120,\"first_ms\":1699999900000,"
        "\"last_ms\":1699999990000,\"sample\":\"cheap meds #\",\"shares\":["
        "{\"site\":\"acme\",\"events\":200,\"share\":0.476},"
        "{\"site\":\"globex\",\"events\":120,\"share\":0.286}]}}}");
    s_has_line(out, "Decision AB12CD34");
    s_has_line(out, "  action:      reject (bounces only)");
    s_has_line(out, "  created:     2023-11-14 22:13:10Z (10s ago)");
    s_has_line(out, "  expires:     2023-11-14 23:13:10Z (in 59m50s)");
    s_has_line(out, "  sequence:    7 (epoch 00ab)");
    s_has_line(out, "  events:      420 in 120s from 3 sites");
    s_has_line(out, "    SITE    EVENTS  SHARE");
    s_has_line(out, "    acme       200  47.6%");
    s_has_line(out, "    globex     120  28.6%");
    free(out);
}

static void test_status_block_and_sensors(void **state)
{
    (void)state;
    char *out =
        s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                 "{\"now_ms\":" NOW ",\"uptime_s\":3725,\"epoch\":\"0123456789abcdef\",\"seq\":42,"
                 "\"events_per_s\":12.5,\"events\":{\"received\":1000,\"counted\":990,"
                 "\"dropped\":{\"garbage\":3,\"too_old\":0,\"duplicate\":7}},\"keys\":55,"
                 "\"decisions\":{\"active\":4,\"enforced\":3},\"sensors\":["
                 "{\"site\":\"acme\",\"sensor\":\"mx1\",\"last_seen_ms\":1699999998000,"
                 "\"applied_seq\":42,\"lag\":0,\"stale\":false},"
                 "{\"site\":\"globex\",\"sensor\":\"mx2\",\"last_seen_ms\":1699999900000,"
                 "\"applied_seq\":30,\"lag\":12,\"stale\":true}]}");
    s_has_line(out, "Aggregator: up 1h02m, epoch 0123456789abcdef, seq 42");
    s_has_line(out, "Events:     12.5/s, 1000 received, 990 counted");
    s_has_line(out, "Dropped:    garbage=3 duplicate=7");
    s_has_line(out, "Decisions:  4 active (3 enforced)");
    s_has_line(out, "SITE    SENSOR  LAST SEEN  APPLIED  LAG  STATE");
    s_has_line(out, "acme    mx1     2s ago          42    0  ok");
    s_has_line(out, "globex  mx2     1m40s ago       30   12  STALE");
    s_has_line(out, "Keys:       55 tracked");
    free(out);
    /* a full window: how many key updates it refused, and that it was full */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"events\":{\"received\":1000,"
                   "\"counted\":500,\"dropped\":{\"refused\":500}},\"keys\":20,"
                   "\"window\":{\"keys\":20,\"max_keys\":20,\"keys_refused\":1500,"
                   "\"full\":1500}}");
    s_has_line(out, "Dropped:    refused=500");
    s_has_line(out, "Keys:       20 tracked (max_keys 20); 1500 key updates refused, not counted "
                    "(1500: window full)");
    free(out);
    /* events dedup could not track (its table full): counted, a replay of theirs twice */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"events\":{\"received\":100,"
                   "\"counted\":100,\"untracked\":40,\"dropped\":{}},\"keys\":2}");
    s_has_line(out, "Events:     0.0/s, 100 received, 100 counted (40 without dedup: full)");
    assert_null(strstr(out, "Refused:"));
    free(out);
    /* refused CURVE handshakes: counted here, since the log names a key once a minute */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"handshakes_refused\":31}");
    s_has_line(out, "Refused:    31 CURVE handshakes (unregistered or revoked keys; the log names "
                    "each key once a minute)");
    free(out);
}

static void test_status_peer_and_mirrored_origin(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                         "{\"now_ms\":" NOW ",\"uptime_s\":5,\"epoch\":\"00aa\",\"seq\":3,"
                         "\"decisions\":{\"active\":1,\"enforced\":1},\"sensors\":[],"
                         "\"peer\":{\"decisions\":\"tcp://agg2:5571\",\"state\":\"live\","
                         "\"epoch\":\"00bb\",\"seq\":9,\"applied\":4,\"echoes\":2,\"refused\":1,"
                         "\"resyncs\":0}}");
    s_has_line(out, "Peer:       live tcp://agg2:5571, epoch 00bb, seq 9; 4 changes mirrored, 1 "
                    "refused");
    free(out);
    /* no peer configured: no line */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":null}");
    assert_null(strstr(out, "Peer:"));
    free(out);
    /* a decision whose latest change came from the peer says so in its origin */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
                   "{\"now_ms\":" NOW ",\"decisions\":[{\"id\":\"AB12CD34\",\"scope\":"
                   "\"subject\",\"value\":\"w\",\"action\":\"reject\",\"reach\":\"fleet\","
                   "\"expires_ms\":1700003600000,\"origin\":\"cli\",\"origin_who\":\"bob\","
                   "\"mirrored\":true}]}");
    s_has_line(out, "AB12CD34  subject  w      reject  fleet  1h00m    cli bob, via peer");
    free(out);
}

static void test_status_says_whether_allowlist_and_sites_are_the_peers(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                         "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":{\"decisions\":"
                         "\"tcp://agg2:5571\",\"state\":\"live\",\"epoch\":\"00bb\",\"seq\":9,"
                         "\"applied\":4,\"refused\":1,\"shared\":{\"same\":true,\"fetches\":2,"
                         "\"applied\":3,\"refused\":0}}}");
    s_has_line(out, "            allowlist and sites the same as the peer's; 3 entries taken, 0 "
                    "refused");
    s_has_line(out, "Peer:       live tcp://agg2:5571, epoch 00bb, seq 9; 4 changes mirrored, 1 "
                    "refused");
    free(out);
    /* blocks made apart and made one are counted on the line */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":{\"decisions\":"
                   "\"tcp://agg2:5571\",\"state\":\"live\",\"epoch\":\"00bb\",\"seq\":9,"
                   "\"applied\":4,\"refused\":0,\"merged\":2}}");
    s_has_line(out, "Peer:       live tcp://agg2:5571, epoch 00bb, seq 9; 4 changes mirrored, 0 "
                    "refused, 2 merged");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":{\"decisions\":"
                   "\"tcp://agg2:5571\",\"state\":\"joining\",\"shared\":{\"same\":false,"
                   "\"applied\":0,\"refused\":2}}}");
    s_has_line(out, "            allowlist and sites not yet the same as the peer's; 0 entries "
                    "taken, 2 refused");
    free(out);
    /* the peer gone silent: what status knows of it is as of when it was last heard */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":{\"decisions\":"
                   "\"tcp://agg2:5571\",\"state\":\"joining\",\"epoch\":\"00bb\",\"seq\":9,"
                   "\"applied\":4,\"refused\":0,\"heard_ms\":1699999988000,\"shared\":{"
                   "\"same\":true,\"applied\":3,\"refused\":0}}}");
    s_has_line(out, "Peer:       joining tcp://agg2:5571, epoch 00bb, seq 9; 4 changes mirrored, "
                    "0 refused; last heard 12s ago");
    s_has_line(out, "            allowlist and sites the same as the peer's when it was last "
                    "heard, 12s ago (unreachable since, or resyncing); 3 entries taken, 0 "
                    "refused");
    assert_null(strstr(out, "sites the same as the peer's;"));
    free(out);
    /* never heard from (the peer down since our start) */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"peer\":{\"decisions\":"
                   "\"tcp://agg2:5571\",\"state\":\"joining\",\"epoch\":\"0\",\"seq\":0,"
                   "\"applied\":0,\"refused\":0,\"heard_ms\":null,\"shared\":{"
                   "\"same\":false,\"applied\":0,\"refused\":0}}}");
    s_has_line(out, "Peer:       joining tcp://agg2:5571, epoch 0, seq 0; 0 changes mirrored, "
                    "0 refused; never heard from");
    free(out);
    /* an allowlist change says nothing of the peer: it takes it by itself */
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD,
                   "{\"now_ms\":" NOW ",\"result\":\"created\",\"entry\":{\"id\":3,"
                   "\"type\":\"subject\",\"value\":\"w\"},\"revoked\":[]}");
    s_has_line(out, "Allowlisted subject w (id 3).");
    assert_null(strstr(out, "peer"));
    free(out);
}

/* A failing store is on the status page; so are sensors a reply could not hold. */
static void test_status_says_the_store_fails_and_sensors_left_out(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                         "{\"now_ms\":" NOW ",\"uptime_s\":5,\"store\":{\"errors\":7,"
                         "\"failing_since_ms\":1699999880000,\"unstored\":2},\"sensors_total\":"
                         "3,\"sensors\":[{\"site\":\"a\",\"sensor\":\"s\"}]}");
    s_has_line(out, "Store:      FAILING (first failure 2m00s ago): 7 writes failed; 2 decision "
                    "changes wait to be stored, and are not published until they are (see the "
                    "log)");
    s_has_line(out, "Sensors: 3");
    s_has_line(out, "... and 2 more not listed (more than one reply holds)");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"store\":{\"errors\":0,"
                   "\"failing_since_ms\":null,\"unstored\":0},\"sensors\":[]}");
    assert_null(strstr(out, "Store:"));
    assert_null(strstr(out, "more not listed"));
    free(out);
}

/* A lost data directory is on the status page, with why it was not recreated; one that
 * was recreated says so. */
static void test_status_says_the_store_is_lost_or_was_recreated(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                         "{\"now_ms\":" NOW ",\"uptime_s\":5,\"store\":{\"errors\":0,"
                         "\"failing_since_ms\":null,\"unstored\":0,\"lost_since_ms\":"
                         "1699999880000,\"lost_reason\":\"removed\",\"lost_error\":\"cannot "
                         "create /var/lib/x: Permission denied\",\"recreated\":0},"
                         "\"sensors\":[]}");
    s_has_line(out, "Store:      LOST (2m00s ago): data_dir removed; decisions, allowlist, sites "
                    "and counts are held in memory only; not recreated: cannot create "
                    "/var/lib/x: Permission denied (see the log)");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS,
                   "{\"now_ms\":" NOW ",\"uptime_s\":5,\"store\":{\"errors\":0,"
                   "\"failing_since_ms\":null,\"unstored\":0,\"lost_since_ms\":null,"
                   "\"lost_reason\":null,\"lost_error\":null,\"recreated\":2},\"sensors\":[]}");
    s_has_line(out, "Store:      recreated 2 time(s) after its data directory was lost; it holds "
                    "everything again (see the log)");
    assert_null(strstr(out, "LOST"));
    free(out);
}

/* A site known from its sensors only says it is not registered, and since when if it was
 * removed. */
static void test_sites_say_which_are_not_registered(void **state)
{
    (void)state;
    char *out = s_render(
        BACKSTOP__CONTROL_REQUEST__COMMAND__SITES,
        "{\"now_ms\":" NOW ",\"sites\":[{\"name\":\"acme\",\"registered\":true,\"public_key\":"
        "\"K\",\"created_ms\":1699999000000,\"removed_ms\":null,\"sensors\":[]},"
        "{\"name\":\"globex\",\"registered\":false,\"public_key\":\"\",\"created_ms\":0,"
        "\"removed_ms\":1699999880000,\"sensors\":[{\"last_seen_ms\":1699999990000}]},"
        "{\"name\":\"initech\",\"registered\":false,\"public_key\":\"\",\"created_ms\":0,"
        "\"removed_ms\":null,\"sensors\":[{\"last_seen_ms\":1699999999000}]}]}");
    s_has_line(out, "SITE     PUBLIC KEY                           ADDED       SENSORS  LAST SEEN");
    s_has_line(out, "acme     K                                    16m40s ago        0  -");
    s_has_line(out, "globex   (removed 2m00s ago: not registered)  -                 1  10s ago");
    s_has_line(out, "initech  (not registered)                     -                 1  1s ago");
    free(out);
}

/* A list the reply had to cut says how many it left out; a complete one says nothing. */
static void test_cut_lists_say_how_many_more(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
                         "{\"now_ms\":" NOW ",\"total\":1015,\"truncated\":true,\"decisions\":"
                         "[{\"id\":\"AB12CD34\"}]}");
    s_has_line(out, "... and 1014 more not listed (--limit N lists up to 5000; backstop why VALUE "
                    "finds the one on a key)");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
                   "{\"now_ms\":" NOW ",\"total\":1,\"truncated\":false,\"decisions\":"
                   "[{\"id\":\"AB12CD34\"}]}");
    assert_null(strstr(out, "more not listed"));
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST,
                   "{\"now_ms\":" NOW ",\"total\":3,\"allowlist\":[{\"id\":1}]}");
    s_has_line(out, "... and 2 more not listed (more than one reply holds; backstop why VALUE says "
                    "whether a key is allowlisted)");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD,
                   "{\"now_ms\":" NOW ",\"result\":\"created\",\"entry\":{\"id\":3,"
                   "\"type\":\"net\",\"value\":\"198.18.0.0/16\"},\"revoked_total\":1100,"
                   "\"revoked\":[{\"id\":\"AB12CD34\"},{\"id\":\"AB12CD35\"}]}");
    s_has_line(out, "Revoked 1100 decisions it covers (the first 2 listed):");
    free(out);
}

/* A stored text with control characters (an entry made before they were refused) cannot
 * break a table or reach the terminal as an escape. */
static void test_control_characters_are_masked(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST,
                         "{\"now_ms\":" NOW ",\"allowlist\":[{\"id\":1,\"type\":\"ip\","
                         "\"value\":\"192.0.2.1\",\"who\":\"a\",\"reason\":\"x\\ny\\u001b[2J"
                         "\\u0085z\",\"created_ms\":" NOW "}]}");
    s_has_line(out, "1   ip    192.0.2.1  0s ago  a   x?y?[2J??z");
    assert_null(strchr(out, '\x1b'));
    free(out);
}

/* decisions add says what the decision in force kept; del, which rule blocks again. */
static void test_add_kept_and_del_refires(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
                         "{\"now_ms\":" NOW ",\"result\":\"unchanged\",\"decision\":{\"id\":"
                         "\"AB12CD34\",\"action\":\"reject\",\"scope\":\"client_ip\",\"value\":"
                         "\"192.0.2.5\",\"reach\":\"fleet\",\"expires_ms\":1700007200000},"
                         "\"kept\":{\"expires_ms\":1700007200000,\"action\":\"reject\"}}");
    s_has_line(out, "Kept from the decision in force: action reject (stronger than asked); expiry "
                    "2023-11-15 00:13:20Z (later than asked). decisions del first to replace it.");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
                   "{\"now_ms\":" NOW ",\"result\":\"created\",\"decision\":{\"id\":"
                   "\"AB12CD34\"},\"kept\":{}}");
    assert_null(strstr(out, "Kept"));
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL,
                   "{\"now_ms\":" NOW ",\"revoked\":{\"id\":\"AB12CD34\",\"scope\":"
                   "\"subject\",\"value\":\"w\"},\"refires\":[\"fleet_subject\"]}");
    s_has_line(out, "Note: rule fleet_subject still sees the wave and will block the key again at "
                    "its next event; backstop allow add keeps it unblocked.");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL,
                   "{\"now_ms\":" NOW ",\"revoked\":{\"id\":\"AB12CD34\"},\"refires\":[]}");
    assert_null(strstr(out, "Note"));
    free(out);
}

static void test_missing_members_print_dash(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
                         "{\"now_ms\":" NOW ",\"decisions\":[{\"id\":\"AB12CD34\"}]}");
    s_has_line(out, "AB12CD34  -      -      -       -      -        -");
    free(out);
}

static void test_long_values_are_cut_on_characters(void **state)
{
    (void)state;
    /* 70 two-byte characters: cut to 61 characters and "..." */
    char value[200] = "";
    for (int i = 0; i < 70; i++)
        strcat(value, "\xc3\xa9");
    char doc[512];
    snprintf(doc, sizeof(doc),
             "{\"now_ms\":" NOW ",\"allowlist\":[{\"id\":1,\"type\":\"subject\","
             "\"value\":\"%s\",\"who\":\"a\",\"reason\":\"r\",\"created_ms\":" NOW "}]}",
             value);
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, doc);
    char want[256];
    snprintf(want, sizeof(want), "1   subject  %.*s...  0s ago  a   r", 61 * 2, value);
    s_has_line(out, want);
    free(out);
}

/* CJK characters take two terminal columns: the columns after them line up with the
 * rows of ASCII values, and a long one is cut by width, never inside a character. */
static void test_wide_characters_take_two_columns(void **state)
{
    (void)state;
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST,
                         "{\"now_ms\":" NOW ",\"allowlist\":["
                         "{\"id\":1,\"type\":\"subject\",\"value\":\"\u914d\u4fe1\u4e0d\u80fd\","
                         "\"who\":\"a\",\"reason\":\"r\",\"created_ms\":" NOW "},"
                         "{\"id\":2,\"type\":\"subject\",\"value\":\"undelivered\","
                         "\"who\":\"b\",\"reason\":\"r\",\"created_ms\":" NOW "}]}");
    /* four characters, eight columns: padded to "undelivered"'s eleven with three spaces */
    s_has_line(out,
               "1   subject  \xe9\x85\x8d\xe4\xbf\xa1\xe4\xb8\x8d\xe8\x83\xbd     0s ago  a   r");
    s_has_line(out, "2   subject  undelivered  0s ago  b   r");
    free(out);

    /* 40 wide characters (80 columns): 30 of them and "..." fill the 64 columns */
    char value[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(value, "\xe9\x85\x8d");
    char doc[512];
    snprintf(doc, sizeof(doc),
             "{\"now_ms\":" NOW ",\"allowlist\":[{\"id\":1,\"type\":\"subject\","
             "\"value\":\"%s\",\"who\":\"a\",\"reason\":\"r\",\"created_ms\":" NOW "}]}",
             value);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, doc);
    char want[256];
    snprintf(want, sizeof(want), "1   subject  %.*s...  0s ago  a   r", 30 * 3, value);
    s_has_line(out, want);
    free(out);
}

static void test_why_and_top(void **state)
{
    (void)state;
    char *out = s_render(
        BACKSTOP__CONTROL_REQUEST__COMMAND__WHY,
        "{\"now_ms\":" NOW ",\"query\":\"cheap meds 1\",\"kind\":\"subject\",\"decisions\":[],"
        "\"allowlisted\":[],\"keys\":[{\"scope\":\"subject\",\"value\":\"cheap meds #\","
        "\"fp\":\"00000000000000ff\",\"events\":30,\"span_s\":120,\"rules\":[{\"rule\":"
        "\"fleet_subject\",\"window_s\":120,\"events\":30,\"min_events\":400,\"sites\":1,"
        "\"min_sites\":3,\"top_share\":1.0,\"max_site_share\":0.6,\"verdict\":"
        "\"too few events\"}]}]}");
    s_has_line(out, "Not blocked: no active decision matches.");
    s_has_line(out, "Allowlisted: no");
    s_has_line(out, "Key subject cheap meds # (fp 00000000000000ff): 30 events in the last 120s");
    s_has_line(out, "fleet_subject    120s  30/400    1/3   100%/60%  too few events");
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__TOP,
                   "{\"now_ms\":" NOW ",\"keys\":[{\"scope\":\"client_ip\",\"value\":"
                   "\"192.0.2.1\",\"rule\":\"fleet_reflector_ip\",\"events\":150,\"min_events\":"
                   "200,\"sites\":4,\"min_sites\":3,\"top_share\":0.3,\"progress\":0.75}]}");
    s_has_line(out, "client_ip  192.0.2.1  fleet_reflector_ip  150/200    4/3        30%       "
                    "75%");
    free(out);
}

/* A rule that fires while its decision is not in force (ran out, revoked: rules are
 * evaluated when an event comes) is "met: would fire on the next event", not "fires"
 * next to "Not blocked"; allowlisted, it never will. */
static void test_why_rule_met_without_its_decision(void **state)
{
    (void)state;
#define S_WHY_DOC(decided, allowlisted)                                                            \
    "{\"now_ms\":" NOW ",\"query\":\"w\",\"kind\":\"subject\",\"decisions\":[],"                   \
    "\"allowlisted\":" allowlisted ",\"keys\":[{\"scope\":\"subject\",\"value\":\"w\","            \
    "\"fp\":\"00000000000000ff\",\"events\":40,\"span_s\":10,\"rules\":[{\"rule\":\"r\","          \
    "\"window_s\":10,\"events\":40,\"min_events\":30,\"sites\":1,\"min_sites\":1,"                 \
    "\"top_share\":1.0,\"max_site_share\":1.0,\"verdict\":\"fires\",\"fires\":true,"               \
    "\"decided\":" decided "}]}]}"
    char *out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, S_WHY_DOC("false", "[]"));
    s_has_line(out, "Not blocked: no active decision matches.");
    s_has_line(out, "r        10s   40/30    1/1  100%/100%  met: would fire on the next event");
    assert_null(strstr(out, "  fires"));
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, S_WHY_DOC("true", "[]"));
    s_has_line(out, "r        10s   40/30    1/1  100%/100%  fires");
    free(out);
    out =
        s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__WHY,
                 S_WHY_DOC("false", "[{\"type\":\"subject\",\"value\":\"w\",\"reason\":\"ok\"}]"));
    s_has_line(out, "r        10s   40/30    1/1  100%/100%  met: allowlisted, no decision");
    free(out);
#undef S_WHY_DOC
}

static void test_why_of_an_id_no_longer_in_force(void **state)
{
    (void)state;
    char *out =
        s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__WHY,
                 "{\"now_ms\":" NOW ",\"query\":\"AB12CD34\",\"kind\":\"decision\",\"removed\":"
                 "{\"why\":\"superseded\",\"replaced_by\":\"00000000\"},\"decisions\":[{\"id\":"
                 "\"AB12CD34\",\"scope\":\"subject\",\"value\":\"w\",\"expires_ms\":1700000300000},"
                 "{\"id\":\"00000000\",\"scope\":\"subject\",\"value\":\"w\",\"expires_ms\":"
                 "1700000600000}],\"allowlisted\":[],\"keys\":[]}");
    s_has_line(out,
               "Decision AB12CD34 is no longer in force: the failover peer's decision 00000000 "
               "on the same key took its place.");
    s_has_line(out, "It was:");
    s_has_line(out, "In force now on its key:");
    s_has_line(out, "Decision 00000000");
    /* the one gone would have ended in 5 minutes; the one in force ends in 10 */
    s_has_line(out, "  was to end:  2023-11-14 22:18:20Z (in 5m00s)");
    s_has_line(out, "  expires:     2023-11-14 22:23:20Z (in 10m00s)");
    assert_null(strstr(out, "expires:     2023-11-14 22:18:20Z"));
    assert_null(strstr(out, "Not blocked"));
    free(out);
    out = s_render(BACKSTOP__CONTROL_REQUEST__COMMAND__WHY,
                   "{\"now_ms\":" NOW ",\"query\":\"AB12CD34\",\"kind\":\"decision\","
                   "\"removed\":{\"why\":\"expired\",\"replaced_by\":null},\"decisions\":[{"
                   "\"id\":\"AB12CD34\",\"scope\":\"subject\",\"value\":\"w\",\"expires_ms\":"
                   "1699999880000}],\"allowlisted\":[],\"keys\":[]}");
    s_has_line(out, "Decision AB12CD34 is no longer in force: it expired.");
    s_has_line(out, "  expired:     2023-11-14 22:11:20Z (2m00s ago)");
    s_has_line(out, "Not blocked now: no active decision matches.");
    free(out);
}

static void test_span_format(void **state)
{
    (void)state;
    static const struct {
        int64_t s;        /* seconds */
        const char *text; /* printed */
    } cases[] = {{0, "0s"},       {59, "59s"},       {60, "1m00s"},    {3599, "59m59s"},
                 {3600, "1h00m"}, {86399, "23h59m"}, {86400, "1d00h"}, {-5, "-5s"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        cli_render_span(cases[i].s, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

static void test_not_an_object_refused(void **state)
{
    (void)state;
    json_t *arr = json_array();
    assert_int_equal(cli_render(stdout, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, arr), -1);
    json_decref(arr);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_list_table),
        cmocka_unit_test(test_empty_lists_say_so),
        cmocka_unit_test(test_show_with_evidence),
        cmocka_unit_test(test_status_block_and_sensors),
        cmocka_unit_test(test_status_peer_and_mirrored_origin),
        cmocka_unit_test(test_status_says_whether_allowlist_and_sites_are_the_peers),
        cmocka_unit_test(test_status_says_the_store_fails_and_sensors_left_out),
        cmocka_unit_test(test_status_says_the_store_is_lost_or_was_recreated),
        cmocka_unit_test(test_sites_say_which_are_not_registered),
        cmocka_unit_test(test_cut_lists_say_how_many_more),
        cmocka_unit_test(test_control_characters_are_masked),
        cmocka_unit_test(test_add_kept_and_del_refires),
        cmocka_unit_test(test_missing_members_print_dash),
        cmocka_unit_test(test_long_values_are_cut_on_characters),
        cmocka_unit_test(test_wide_characters_take_two_columns),
        cmocka_unit_test(test_why_and_top),
        cmocka_unit_test(test_why_rule_met_without_its_decision),
        cmocka_unit_test(test_why_of_an_id_no_longer_in_force),
        cmocka_unit_test(test_span_format),
        cmocka_unit_test(test_not_an_object_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
