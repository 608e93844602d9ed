/* test_subject - decoding to UTF-8 and normalising subjects into one key per wave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mime.h"
#include "subject.h"
#include "xalloc.h"

typedef struct {
    const char *in;     /* input (NULL allowed) */
    const char *expect; /* expected output */
} s_case_t;

static const s_case_t s_decode_cases[] = {
    {NULL, ""},
    {"Hello  world ", "Hello world"},
    {"=?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=", "Grüße aus München"},
    {"=?UTF-8?B?0J/RgNC40LLQtdGC?=", "Привет"},
    {"=?utf-8?q?Caf=C3=A9?=", "Café"},
    {"=?KOI8-R?B?8NLJ18XU?=", "Привет"},
    {"=?UTF-8?Q?Caf=C3=A9?=\r\n =?UTF-8?Q?_cr=C3=A8me?=", "Café crème"},
    {"Gr\xfc\xdf"
     "e",
     "Grüße"},
    {"Grüße", "Grüße"},
    {"a\x01"
     "b\tc",
     "a b c"},
    {"Undeliverable: =?UTF-8?B?0J/RgNC40LLQtdGC?= 1", "Undeliverable: Привет 1"},
};

static void test_decode_table(void **state)
{
    for (size_t i = 0; i < sizeof(s_decode_cases) / sizeof(*s_decode_cases); i++) {
        char *out = subject_decode(s_decode_cases[i].in);
        assert_string_equal(out, s_decode_cases[i].expect);
        xfree(out);
    }
}

static void test_decode_is_always_valid_utf8(void **state)
{
    static const char *const bad[] = {
        "=?X-NO-SUCH-CHARSET?Q?abc=FF?=",
        "\xff\xfe\xfd",
        "=?UTF-8?B?////?=",
        "=?UTF-8?Q?=C3?=",
        "=?",
        "=?UTF-8?",
        "\xc3",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char *out = subject_decode(bad[i]);
        assert_non_null(out);
        assert_true(mime_utf8_valid(out, strlen(out)));
        xfree(out);
    }
}

static const s_case_t s_key_cases[] = {
    {"Undeliverable: Cheap meds 123", "cheap meds #"},
    {"Cheap meds 456", "cheap meds #"},
    {"Undelivered Mail Returned to Sender", ""},
    {"Returned mail: see transcript for details", ""},
    {"Delivery Status Notification (Failure)", ""},
    {"Mail delivery failed: returning message to sender", ""},
    {"failure notice", ""},
    {"Unzustellbar: Cheap meds 1", "cheap meds #"},
    {"Non remis : Cheap meds 2", "cheap meds #"},
    {"No se puede entregar: Cheap meds 3", "cheap meds #"},
    {"Onbestelbaar: Cheap meds 4", "cheap meds #"},
    {"Non recapitabile: Cheap meds 5", "cheap meds #"},
    {"RE: FW: AW: WG: TR: Cheap meds", "cheap meds"},
    {"Re[2]: Fwd: Cheap meds", "cheap meds"},
    {"Undeliverable: RE: [SPAM] Cheap meds 7", "cheap meds #"},
    {"Out of Office: Cheap meds 8", "cheap meds #"},
    {"  Cheap   MEDS\t9 ", "cheap meds #"},
    {"Hello john.doe@example.com", "hello @"},
    {"Order 12.50 USD ref a1b2c3d4e5f6", "order # usd ref #"},
    {"Invoice deadbeefcafebabe", "invoice #"},
    {"V1agra now", "v#agra now"},
    {"ПРИВЕТ Мир", "привет мир"},
    {"ÉTÉ À PARIS", "été à paris"},
    {"Delivery Report (failure) for a@b.example", ""},
    {"Message delayed (a@b.example)", ""},
    {"Delivery Status Notification (Delay) Cheap meds 3", "cheap meds #"},
    {"Re: to whom it may concern", "to whom it may concern"},
    {"$$$ 100% !!!", ""},
    /* ids that change per message: an Exim message id, a UUID; words with digits stay */
    {"Warning: message 1qXyZa-0004Ab-Cd delayed 24 hours", "warning: message # delayed # hours"},
    {"Warning: message 1rAbCd-000AbC-DeFg delayed 48 hours", "warning: message # delayed # hours"},
    {"Order 3f2b1c9d-8e7a-4b6c-9d0e-1f2a3b4c5d6e shipped", "order # shipped"},
    {"Covid-19 news for the e-mail team", "covid-# news for the e-mail team"},
    {"Linux 4.12-rc5 released", "linux #-rc# released"},
    /* Lotus Domino names the recipient, nothing of the original */
    {"DELIVERY FAILURE: User jschmidt (jschmidt@muellerbau.example) not listed in Domino "
     "Directory",
     ""},
    {"Delivery failure: Cheap meds 6", "cheap meds #"},
    /* Exchange's localised NDR prefixes */
    {"配信不能: Cheap meds 1", "cheap meds #"},
    {"无法投递: Cheap meds 1", "cheap meds #"},
    {"無法傳遞: Cheap meds 1", "cheap meds #"},
    {"배달되지 않음: Cheap meds 1", "cheap meds #"},
    {"Teslim edilemiyor: Cheap meds 1", "cheap meds #"},
    {"Kézbesíthetetlen: Cheap meds 1", "cheap meds #"},
    {"Ei voida toimittaa: Cheap meds 1", "cheap meds #"},
    {"Nie można dostarczyć: Cheap meds 1", "cheap meds #"},
    {"Δεν είναι δυνατή η παράδοση: Cheap meds 1", "cheap meds #"},
    {"", ""},
    {NULL, ""},
};

static void test_key_table(void **state)
{
    for (size_t i = 0; i < sizeof(s_key_cases) / sizeof(*s_key_cases); i++) {
        char *out = subject_key(s_key_cases[i].in);
        if (strcmp(out, s_key_cases[i].expect) != 0)
            print_error("%s: key \"%s\"\n", s_key_cases[i].in ? s_key_cases[i].in : "(null)", out);
        assert_string_equal(out, s_key_cases[i].expect);
        xfree(out);
    }
}

static void test_bounce_and_original_share_a_key(void **state)
{
    char *a = subject_key("Undeliverable: Cheap meds 123");
    char *b = subject_key("Cheap meds 456");
    char *c = subject_key("Unzustellbar: CHEAP  meds 789");
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    xfree(a);
    xfree(b);
    xfree(c);
}

static const struct {
    const char *subject; /* decoded subject */
    int bounce;          /* subject_is_bounce */
    int autoreply;       /* subject_is_autoreply */
    int reply;           /* subject_is_reply */
} s_flag_cases[] = {
    {"Undeliverable: x", 1, 0, 0},
    {"Returned mail: see transcript for details", 1, 0, 0},
    {"Delivery Status Notification (Failure)", 1, 0, 0},
    {"Unzustellbar: x", 1, 0, 0},
    {"Lunch on Friday", 0, 0, 0},
    {"Redelivered goods", 0, 0, 0},
    {"Automatic reply: x", 0, 1, 0},
    {"Out of Office", 0, 1, 0},
    {"Auto: x", 0, 1, 0},
    {"Automobile news", 0, 0, 0},
    {"Re: Undeliverable mail", 1, 0, 1},
    {"AW: Termin", 0, 0, 1},
    /* a list's or a ticket system's tag before the reply prefix */
    {"[exim] Re: Mail delivery failed: returning message to sender", 1, 0, 1},
    {"[SPAM] [list] Fwd: Cheap meds", 0, 0, 1},
    {"[Ticket#2024051410000123] Undelivered Mail Returned to Sender", 1, 0, 0},
    {"[Ticket#2024051410000123] Re: Undelivered Mail Returned to Sender", 1, 0, 1},
    /* Exchange's localised NDR subjects, every one that subject_key() strips */
    {"配信不能: x", 1, 0, 0},
    {"无法投递: x", 1, 0, 0},
    {"無法傳遞: x", 1, 0, 0},
    {"배달되지 않음: x", 1, 0, 0},
    {"Teslim edilemiyor: x", 1, 0, 0},
    {"Kézbesíthetetlen: x", 1, 0, 0},
    {"Ei voida toimittaa: x", 1, 0, 0},
    {"Nie można dostarczyć: x", 1, 0, 0},
    {"Δεν είναι δυνατή η παράδοση: x", 1, 0, 0},
    {"Не удается доставить: x", 1, 0, 0},
    {"Não é possível entregar: x", 1, 0, 0},
    {"Kan ikke leveres: x", 1, 0, 0},
    {"Ej levererbart: x", 1, 0, 0},
};

static void test_flag_table(void **state)
{
    for (size_t i = 0; i < sizeof(s_flag_cases) / sizeof(*s_flag_cases); i++) {
        if (subject_is_bounce(s_flag_cases[i].subject) != s_flag_cases[i].bounce ||
            subject_is_reply(s_flag_cases[i].subject) != s_flag_cases[i].reply)
            print_error("%s: bounce %d reply %d\n", s_flag_cases[i].subject,
                        subject_is_bounce(s_flag_cases[i].subject),
                        subject_is_reply(s_flag_cases[i].subject));
        assert_int_equal(subject_is_bounce(s_flag_cases[i].subject), s_flag_cases[i].bounce);
        assert_int_equal(subject_is_autoreply(s_flag_cases[i].subject), s_flag_cases[i].autoreply);
        assert_int_equal(subject_is_reply(s_flag_cases[i].subject), s_flag_cases[i].reply);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table), cmocka_unit_test(test_decode_is_always_valid_utf8),
        cmocka_unit_test(test_key_table),    cmocka_unit_test(test_bounce_and_original_share_a_key),
        cmocka_unit_test(test_flag_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
