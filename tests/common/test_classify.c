/* test_classify - the classifier on the project's own fixtures (tests/fixtures/mail). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "fp.h"
#include "mime.h"
#include "xalloc.h"

static char *s_load(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/mail/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static classify_result_t *s_classify_file(const char *name, const char *env_from)
{
    size_t len;
    char *msg = s_load(name, &len);
    classify_input_t in = {.msg = msg, .len = len, .env_from = env_from};
    classify_result_t *r = classify_message(&in);
    xfree(msg);
    return r;
}

static int s_has_reason(const classify_result_t *r, const char *prefix)
{
    for (size_t i = 0; i < classify_result_reason_count(r); i++)
        if (!strncmp(classify_result_reason(r, i), prefix, strlen(prefix)))
            return 1;
    return 0;
}

typedef struct {
    const char *file;             /* fixture under tests/fixtures/mail */
    classify_class_t cls;         /* expected class */
    classify_orig_t orig;         /* expected original */
    const char *subject_key;      /* expected own key */
    const char *orig_subject_key; /* expected original's key, NULL for none */
    const char *reason;           /* a reason prefix that must be present, or NULL */
} s_case_t;

static const s_case_t s_cases[] = {
    {"postfix_dsn_rfc822.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_RFC822, "", "cheap meds #",
     "ct=multipart/report;report-type=delivery-status"},
    {"exim_ndr_inline.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "", "cheap meds #",
     "x-failed-recipients"},
    {"qmail_failure.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "", "cheap meds #", "body=qmail"},
    {"exchange_ndr_headers.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "cheap meds #",
     "cheap meds #", "part=message/delivery-status"},
    {"contentless_bounce.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_NONE, "", NULL, "from=mailer-daemon"},
    {"delay_dsn.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "", "cheap meds #", NULL},
    {"de_unzustellbar.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "cheap meds #", "cheap meds #",
     "subject=unzustellbar"},
    {"fr_non_remis.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_HEADERS, "cheap meds #", "cheap meds #",
     "subject=non-remis"},
    {"es_no_se_puede_entregar.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_NONE, "cheap meds #", NULL,
     "subject=no-se-puede-entregar"},
    {"nl_onbestelbaar.eml", CLASSIFY_BOUNCE, CLASSIFY_ORIG_NONE, "cheap meds #", NULL,
     "from=postmaster"},
    {"vacation_autoreply.eml", CLASSIFY_AUTOREPLY, CLASSIFY_ORIG_NONE, "cheap meds #", NULL,
     "auto-submitted=auto-replied"},
    {"mdn_read_receipt.eml", CLASSIFY_MDN, CLASSIFY_ORIG_NONE, "quarterly report", NULL,
     "ct=multipart/report;report-type=disposition-notification"},
    {"arf_feedback.eml", CLASSIFY_ARF, CLASSIFY_ORIG_NONE, "cheap meds #", NULL,
     "ct=multipart/report;report-type=feedback-report"},
    {"ham_plain.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "lunch on friday?", NULL, NULL},
    {"ham_list.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "piles up in the queue", NULL, NULL},
    {"enc_iso88591_q.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "grüße aus münchen", NULL, NULL},
    {"enc_utf8_b.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "привет из москвы #", NULL, NULL},
    {"enc_utf8_q.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "café crème für alle", NULL, NULL},
    {"enc_koi8r_b.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "привет мир", NULL, NULL},
    {"malformed_mime.eml", CLASSIFY_NORMAL, CLASSIFY_ORIG_NONE, "broken structure", NULL, NULL},
};

static void test_fixture_table(void **state)
{
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(*s_cases); i++) {
        const s_case_t *c = &s_cases[i];
        classify_result_t *r = s_classify_file(c->file, NULL);
        if (classify_result_class(r) != c->cls || classify_result_original(r) != c->orig)
            print_error("%s: class %s original %s\n", c->file,
                        classify_class_name(classify_result_class(r)),
                        classify_orig_name(classify_result_original(r)));
        assert_int_equal(classify_result_class(r), c->cls);
        assert_int_equal(classify_result_original(r), c->orig);
        assert_string_equal(classify_result_subject_key(r), c->subject_key);
        if (c->orig_subject_key) {
            assert_non_null(classify_result_orig_subject_key(r));
            assert_string_equal(classify_result_orig_subject_key(r), c->orig_subject_key);
            assert_int_equal(classify_result_orig_subject_fp(r), fp_text(c->orig_subject_key));
        } else {
            assert_null(classify_result_orig_subject_key(r));
        }
        if (c->reason && !s_has_reason(r, c->reason))
            fail_msg("%s: no reason %s", c->file, c->reason);
        classify_result_destroy(&r);
    }
}

static void test_dsn_fields_and_original_headers(void **state)
{
    classify_result_t *r = s_classify_file("postfix_dsn_rfc822.eml", NULL);
    assert_string_equal(classify_result_subject(r), "Undelivered Mail Returned to Sender");
    assert_string_equal(classify_result_reporting_mta(r), "mx.reflector.example");
    assert_string_equal(classify_result_final_recipient(r), "nobody@reflector.example");
    assert_string_equal(classify_result_action(r), "failed");
    assert_string_equal(classify_result_status(r), "5.1.1");
    assert_non_null(strstr(classify_result_diagnostic_code(r), "550 5.1.1"));
    assert_string_equal(classify_result_orig_subject(r), "Cheap meds 456");
    assert_string_equal(classify_result_orig_message_id(r), "spam.456@victim.example");
    assert_string_equal(classify_result_orig_from(r), "\"Alice\" <alice@victim.example>");
    assert_string_equal(classify_result_orig_to(r), "nobody@reflector.example");
    assert_int_equal(classify_result_subject_fp(r), 0); /* empty key */
    classify_result_destroy(&r);
    assert_null(r);
    classify_result_destroy(&r);
}

static void test_delay_dsn_action(void **state)
{
    classify_result_t *r = s_classify_file("delay_dsn.eml", NULL);
    assert_string_equal(classify_result_action(r), "delayed");
    assert_string_equal(classify_result_status(r), "4.4.1");
    assert_string_equal(classify_result_orig_message_id(r), "spam.55@victim.example");
    classify_result_destroy(&r);
}

static void test_bounce_key_matches_original_key(void **state)
{
    classify_result_t *r = s_classify_file("exchange_ndr_headers.eml", NULL);
    assert_int_equal(classify_result_subject_fp(r), classify_result_orig_subject_fp(r));
    assert_int_not_equal(classify_result_subject_fp(r), 0);
    classify_result_destroy(&r);
}

/* A content-less message from a person is normal, unless the envelope
   says the null sender sent a bounce-worded message. */
static void test_envelope_null_sender_counts(void **state)
{
    static const char msg[] = "From: someone@relay.example\n"
                              "Subject: Undeliverable: Cheap meds 5\n"
                              "\n"
                              "Could not deliver.\n";
    classify_input_t in = {.msg = msg, .len = sizeof(msg) - 1, .env_from = "someone@relay.example"};
    classify_result_t *r = classify_message(&in);
    assert_int_equal(classify_result_class(r), CLASSIFY_NORMAL);
    classify_result_destroy(&r);
    in.env_from = "";
    r = classify_message(&in);
    assert_int_equal(classify_result_class(r), CLASSIFY_BOUNCE);
    assert_true(s_has_reason(r, "sender=<>"));
    classify_result_destroy(&r);
}

/* Words about a failed delivery, from a person's envelope, are a person's mail: a support
 * request "Email not delivered", a courier's "returned to sender". The same words from a
 * null or unknown envelope stay a bounce, as does a person's envelope (a content filter's)
 * with a mailer's own sentence or the original attached. */
static void test_a_persons_words_are_no_bounce(void **state)
{
    (void)state;
    static const char person[] =
        "From: Jane <jane@example.org>\nTo: support@example.net\nSubject: Email not "
        "delivered\n\nHello, my email to my colleague was not delivered to his inbox. "
        "Can you check?\n";
    static const char courier[] =
        "From: Parcels <notify@courier.example>\nSubject: Delivery Notification: your parcel "
        "1234567890\n\nYour parcel was not delivered to your address and has been returned "
        "to sender.\n";
    static const char filter[] =
        "From: AntiVirus_Gateway@example.org\nSubject: Delivery failure notification\n\nYour "
        "message with Subject: hello\ncould not be delivered to the following "
        "recipients:\n\nbob@example.org\n";
    static const char attached[] =
        "From: Filter <filter@example.org>\nSubject: Undeliverable: hello\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nYour "
        "message was refused.\n--b\nContent-Type: message/rfc822\n\nFrom: "
        "someone@example.com\nSubject: hello\nMessage-ID: <x@example.com>\n\nhi\n--b--\n";
    static const struct {
        const char *msg;      /* the message */
        const char *env_from; /* its envelope sender, NULL: unknown */
        classify_class_t cls; /* its class */
    } cases[] = {
        {person, "jane@example.org", CLASSIFY_NORMAL},
        {courier, "bounces+123@courier.example", CLASSIFY_NORMAL},
        {person, "", CLASSIFY_BOUNCE},
        {person, NULL, CLASSIFY_BOUNCE},
        {filter, "AntiVirus_Gateway@example.org", CLASSIFY_BOUNCE},
        {attached, "filter@example.org", CLASSIFY_BOUNCE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        classify_input_t in = {
            .msg = cases[i].msg, .len = strlen(cases[i].msg), .env_from = cases[i].env_from};
        classify_result_t *r = classify_message(&in);
        if (classify_result_class(r) != cases[i].cls)
            fail_msg("case %zu: class %s, wanted %s", i,
                     classify_class_name(classify_result_class(r)),
                     classify_class_name(cases[i].cls));
        classify_result_destroy(&r);
    }
}

/* Normal mail with a bounce's words, or a From: that sounds like a mailer,
 * sent with a person's envelope: a hoster's notice, a courier, a voicemail
 * system, a postmaster answering by hand, a list digest, a forwarded
 * attachment, list posts and a ticket quoting a report. And the bounces that
 * must stay bounces: the null sender with From: postmaster, a mailer's From:
 * relayed with a list's envelope, a quoted-name local part. */
static void test_mail_about_bounces_is_no_bounce(void **state)
{
    (void)state;
    static const char hoster[] =
        "From: \"Hoster.example System Administrator\" <admin@hoster.example>\n"
        "Subject: Scheduled maintenance: mail delivery may be delayed on Sunday\n\n"
        "Incoming mail will be queued and delivered after the work.\n";
    static const char courier[] =
        "From: Post Office <noreply@postoffice.example>\n"
        "Subject: Delivery notification: your parcel AB123456789GB is on its way\n\n"
        "Your parcel will be delivered tomorrow.\n";
    static const char voicemail[] =
        "From: \"Partner Voicemail System\" <unity@pbx.partner.example>\n"
        "Subject: Voice message from +1 555 0100\n\n"
        "Calls from withheld numbers are blocked on this line.\n";
    static const char human_postmaster[] =
        "From: Partner Postmaster <postmaster@partner.example>\n"
        "Subject: Re: Our mails to you are returned as undeliverable\n\n"
        "We fixed the MX record, please try again.\n";
    static const char digest[] =
        "From: list-request@lists.example.org\nSubject: List Digest, Vol 2, Issue 4\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n--o\n"
        "Content-Type: text/plain\n\nToday's Topics:\n 1. Re: Delivery failure to "
        "gmail.com\n\n--o\nContent-Type: multipart/digest; boundary=d\n\n--d\n"
        "Content-Type: message/rfc822\n\nFrom: v@example.net\nSubject: Re: Delivery "
        "failure to gmail.com\nMessage-ID: <d1@example.net>\n\nUse a policy table.\n"
        "--d--\n\n--o--\n";
    static const char forward[] =
        "From: Jane <jane@customer.example>\nSubject: Your newsletter keeps getting blocked\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=f\n\n--f\n"
        "Content-Type: text/plain\n\nSee the attached copy and the delivery failure "
        "reason in its header.\n--f\nContent-Type: message/rfc822\n\nFrom: "
        "news@acme.example\nSubject: Acme news\nMessage-ID: <n1@acme.example>\n\nHello\n"
        "--f--\n";
    static const char list_reply[] =
        "From: Hans <hans@example.de>\n"
        "Subject: [exim] Re: Mail delivery failed: returning message to sender\n"
        "List-Id: <exim-users.lists.example.org>\n\nThe bounce I got:\n\n"
        "> This message was created automatically by mail delivery software.\n>\n"
        "> A message that you sent could not be delivered to one or more of its\n"
        "> recipients.\n";
    static const char ticket[] =
        "From: \"Helpdesk\" <helpdesk@it-partner.example>\n"
        "Subject: [Ticket#2024051410000123] Undelivered Mail Returned to Sender\n\n"
        "Your request has been received. Your message:\n\n"
        "> This is the mail system at host mx1.mailhost.example.\n>\n"
        "> I'm sorry to have to inform you that your message could not\n"
        "> be delivered to one or more recipients.\n";
    static const char list_post[] =
        "From: Tom <tom@example.com>\n"
        "Subject: Why do I get \"Undelivered Mail Returned to Sender\"?\n"
        "List-Id: <users.lists.example.org>\nPrecedence: list\n\nUsers get this:\n\n"
        "  This is the mail system at host mail.example.com.\n"
        "  <x@example.net>: host mx.example.net said: 550 5.7.1 Service unavailable\n";
    static const char null_postmaster[] =
        "From: Postmaster <postmaster@reflector.example>\n"
        "Subject: Undeliverable: Cheap meds 5\n\nYour message to bob@reflector.example "
        "was not delivered.\n";
    static const char relayed[] =
        "From: MAILER-DAEMON@reflector.example (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\nList-Id: <users.lists.example.org>\n"
        "Precedence: bulk\n\nThe original message:\n\nReceived: from a by b\n"
        "Subject: Cheap meds 5\nMessage-ID: <x5@victim.example>\n";
    static const char quoted_name[] =
        "From: <\"System Administrator\"@reflector.example>\n"
        "Subject: Delivery failure\n\nOriginal message follows\n\nReceived: from a by b\n"
        "Subject: Cheap meds 5\nMessage-ID: <x6@victim.example>\n";
    static const char list_paste[] =
        "From: Tom via Users <users@lists.example.org>\n"
        "Subject: [Users] Undelivered Mail Returned to Sender\n"
        "List-Id: <users.lists.example.org>\n\nHi all,\n\nsince Monday I get this for "
        "every mail\nto one customer, any idea?\n\n"
        "This is the mail system at host mail.example.com.\n"
        "<x@example.net>: host mx.example.net said: 550 5.7.1 Service unavailable\n";
    static const char list_indented[] =
        "From: Tom <tom@example.com>\n"
        "Subject: [Users] Undelivered Mail Returned to Sender\n"
        "List-Id: <users.lists.example.org>\n\n"
        "  This is the mail system at host mail.example.com.\n"
        "  <x@example.net>: host mx.example.net said: 550 5.7.1 Service unavailable\n";
    static const char via_person[] =
        "From: \"'Postmaster Team Lead' via Users\" <users@groups.example.com>\n"
        "Subject: [Users] Delivery failure to gmail.com\n"
        "List-Id: <users.groups.example.com>\n\nSee the bounce below.\n\n"
        "Received: from a by b\nSubject: Hello\nMessage-ID: <h1@example.com>\n";
    static const char postmaster_words[] =
        "From: Postmaster <postmaster@partner.example>\n"
        "Subject: Delivery failure to our domain yesterday\n\n"
        "Mail to us was not delivered between 2 and 4 pm, please resend.\n";
    static const struct {
        const char *name;     /* what it is */
        const char *msg;      /* the message */
        const char *env_from; /* its envelope sender, NULL: unknown */
        classify_class_t cls; /* its class */
    } cases[] = {
        {"list paste", list_paste, "users-bounces@lists.example.org", CLASSIFY_NORMAL},
        {"list indented", list_indented, "users-bounces@lists.example.org", CLASSIFY_NORMAL},
        {"via person", via_person, "users+bncBC@groups.example.com", CLASSIFY_NORMAL},
        {"postmaster words", postmaster_words, "it-team@partner.example", CLASSIFY_NORMAL},
        {"hoster", hoster, "admin@hoster.example", CLASSIFY_NORMAL},
        {"hoster, no envelope", hoster, NULL, CLASSIFY_NORMAL},
        {"courier", courier, "bounces+1-c=acme.example@em1.postoffice.example", CLASSIFY_NORMAL},
        {"voicemail", voicemail, "unity@pbx.partner.example", CLASSIFY_NORMAL},
        {"voicemail, no envelope", voicemail, NULL, CLASSIFY_NORMAL},
        {"human postmaster", human_postmaster, "postmaster@partner.example", CLASSIFY_NORMAL},
        {"digest", digest, "list-bounces@lists.example.org", CLASSIFY_NORMAL},
        {"forward", forward, "jane@customer.example", CLASSIFY_NORMAL},
        {"list reply", list_reply, "exim-users-bounces@lists.example.org", CLASSIFY_NORMAL},
        {"ticket", ticket, "helpdesk@it-partner.example", CLASSIFY_NORMAL},
        {"list post", list_post, "users-bounces@lists.example.org", CLASSIFY_NORMAL},
        {"null postmaster", null_postmaster, "", CLASSIFY_BOUNCE},
        {"relayed", relayed, "users-owner@lists.example.org", CLASSIFY_BOUNCE},
        {"quoted name", quoted_name, NULL, CLASSIFY_BOUNCE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        classify_input_t in = {
            .msg = cases[i].msg, .len = strlen(cases[i].msg), .env_from = cases[i].env_from};
        classify_result_t *r = classify_message(&in);
        if (classify_result_class(r) != cases[i].cls)
            fail_msg("%s: class %s, wanted %s", cases[i].name,
                     classify_class_name(classify_result_class(r)),
                     classify_class_name(cases[i].cls));
        classify_result_destroy(&r);
    }
}

/* Bounces a list or forwarder relays with its own envelope sender stay
   bounces: a list that rewrites From: for DMARC ("Mail Delivery System via
   Users", "'Mail Delivery Subsystem' via Users", "MAILER-DAEMON@host via
   Users"), a Postmaster@ address with the original's Subject: quoted in prose
   (Domino, GWAVA), an NDR that kept the list headers of the notice it
   returns. */
static void test_relayed_bounces_are_bounces(void **state)
{
    (void)state;
    static const char postfix_via[] =
        "From: Mail Delivery System via Users <users@lists.example.org>\n"
        "Reply-To: Mail Delivery System <MAILER-DAEMON@mx.relay.example>\n"
        "Subject: [Users] Undelivered Mail Returned to Sender\n"
        "List-Id: Users list <users.lists.example.org>\nPrecedence: list\n\n"
        "This is the mail system at host mx.relay.example.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "<carol@relay.example>: host mx said: 550 5.1.1 User unknown\n";
    static const char groups_via[] =
        "From: \"'Mail Delivery Subsystem' via Users\" <users@groups.example.com>\n"
        "Subject: [Users] Undelivered Mail Returned to Sender\n"
        "List-Id: <users.groups.example.com>\n\n"
        "This is the mail system at host mx.relay.example.\n\n"
        "<carol@relay.example>: host mx said: 550 5.1.1 User unknown\n";
    static const char qmail_via[] =
        "From: MAILER-DAEMON via Users <users@lists.example.org>\n"
        "Subject: [Users] failure notice\nList-Id: <users.lists.example.org>\n\n"
        "Hi. This is the qmail-send program at mx.relay.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<dave@relay.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Received: from a by b\nSubject: Cheap meds 7\nMessage-ID: <x7@victim.example>\n\nbuy\n";
    static const char qmail_via_address[] =
        "From: \"MAILER-DAEMON@mx.relay.example via Users\" <users@lists.example.org>\n"
        "Subject: [Users] failure notice\nList-Id: <users.lists.example.org>\n\n"
        "Hi. This is the qmail-send program at mx.relay.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Received: from a by b\nSubject: Cheap meds 8\nMessage-ID: <x8@victim.example>\n\nbuy\n";
    static const char domino[] =
        "From: Postmaster@corp.example\n"
        "Subject: DELIVERY FAILURE: User erin (erin@corp.example) not listed in Domino "
        "Directory\nList-Id: <talk.lists.example.org>\nPrecedence: bulk\n\n"
        "Your message\n\n  Subject: Cheap meds 9\n\nwas not delivered to:\n\n"
        "  erin@corp.example\n";
    static const char gwava[] =
        "From: Postmaster <postmaster@filter.example>\n"
        "Subject: Blocked Message (RBL block)\n\n"
        "Message send from Your address:\n\nSubject: Cheap meds 10\nFrom: "
        "x@victim.example\n\nDid not reach the recipient. The message was blocked.\n";
    static const char cdo[] =
        "From: <admin@bank.example>\n"
        "Subject: Non-Delivery: Your message to Talk awaits moderator approval\n"
        "List-Id: <talk.lists.example.org>\nPrecedence: bulk\n\n"
        "--- Non-Delivery Report ---\n"
        "The email below could not be delivered to the following user:\n\n"
        "<frank@bank.example>\n";
    static const struct {
        const char *name;     /* what it is */
        const char *msg;      /* the message */
        const char *env_from; /* its envelope sender */
        const char *from;     /* the from= reason it must give, or NULL */
    } cases[] = {
        {"postfix via list", postfix_via, "users-bounces@lists.example.org",
         "from=mail-delivery-system"},
        {"groups via list", groups_via, "users+bncBC@groups.example.com",
         "from=mail-delivery-subsystem"},
        {"qmail via list", qmail_via, "users-bounces@lists.example.org", "from=mailer-daemon"},
        {"qmail via list, address", qmail_via_address, "users-bounces@lists.example.org",
         "from=mailer-daemon"},
        {"domino, forwarded", domino, "talk-bounces@lists.example.org", "from=postmaster"},
        {"gwava, forwarded", gwava, "alias@forwarder.example", "from=postmaster"},
        {"cdo, list headers", cdo, "talk-bounces@lists.example.org", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        classify_input_t in = {
            .msg = cases[i].msg, .len = strlen(cases[i].msg), .env_from = cases[i].env_from};
        classify_result_t *r = classify_message(&in);
        if (classify_result_class(r) != CLASSIFY_BOUNCE)
            fail_msg("%s: class %s, wanted bounce", cases[i].name,
                     classify_class_name(classify_result_class(r)));
        if (cases[i].from && !s_has_reason(r, cases[i].from))
            fail_msg("%s: no %s reason", cases[i].name, cases[i].from);
        classify_result_destroy(&r);
    }
    /* the original quoted in prose is still the original */
    classify_input_t in = {.msg = domino, .len = strlen(domino), .env_from = "a@fwd.example"};
    classify_result_t *r = classify_message(&in);
    assert_int_equal(classify_result_original(r), CLASSIFY_ORIG_HEADERS);
    assert_string_equal(classify_result_orig_subject(r), "Cheap meds 9");
    classify_result_destroy(&r);
}

/* An Exim delay warning: its message id stays out of the key, the original's
   subject is read from "The subject of the message is:". */
static void test_exim_delay_key_and_original(void **state)
{
    (void)state;
    classify_result_t *r = s_classify_file("exim_delay_inline.eml", NULL);
    assert_int_equal(classify_result_class(r), CLASSIFY_BOUNCE);
    assert_string_equal(classify_result_subject_key(r), "warning: message # delayed # hours");
    assert_int_equal(classify_result_original(r), CLASSIFY_ORIG_HEADERS);
    assert_string_equal(classify_result_orig_subject(r), "Cheap meds 4711");
    assert_string_equal(classify_result_orig_subject_key(r), "cheap meds #");
    classify_result_destroy(&r);
}

/* An original quoted inline in a legacy charset (ISO-2022-JP, KOI8-R) reads as
   the same subject as the enclosed one: one key for one wave. */
static void test_inline_original_in_its_charset(void **state)
{
    (void)state;
    classify_result_t *enclosed = s_classify_file("dsn_rfc822_iso2022jp.eml", NULL);
    classify_result_t *inline_jp = s_classify_file("domino_inline_iso2022jp.eml", NULL);
    classify_result_t *inline_ru = s_classify_file("postfix_inline_koi8r.eml", NULL);
    assert_string_equal(classify_result_orig_subject(enclosed), "請求書のお知らせ 55123");
    assert_int_equal(classify_result_class(inline_jp), CLASSIFY_BOUNCE);
    assert_non_null(classify_result_orig_subject(inline_jp));
    assert_string_equal(classify_result_orig_subject(inline_jp), "請求書のお知らせ 55123");
    assert_int_equal(classify_result_orig_subject_fp(inline_jp),
                     classify_result_orig_subject_fp(enclosed));
    /* Domino's subject names the recipient only: no per-recipient key */
    assert_string_equal(classify_result_subject_key(inline_jp), "");
    assert_int_equal(classify_result_class(inline_ru), CLASSIFY_BOUNCE);
    assert_non_null(classify_result_orig_subject(inline_ru));
    assert_string_equal(classify_result_orig_subject(inline_ru), "Счёт на оплату 55123");
    assert_string_equal(classify_result_orig_subject_key(inline_ru), "счёт на оплату #");
    classify_result_destroy(&enclosed);
    classify_result_destroy(&inline_jp);
    classify_result_destroy(&inline_ru);
}

/* A text/rfc822-headers part that starts with a blank line still gives the original. */
static void test_headers_part_after_blank_line(void **state)
{
    (void)state;
    classify_result_t *r = s_classify_file("dsn_headers_leading_blank.eml", NULL);
    assert_int_equal(classify_result_class(r), CLASSIFY_BOUNCE);
    assert_int_equal(classify_result_original(r), CLASSIFY_ORIG_HEADERS);
    assert_non_null(classify_result_orig_subject(r));
    assert_string_equal(classify_result_orig_subject(r), "Cheap meds 812");
    assert_string_equal(classify_result_orig_message_id(r), "blank.812@victim.example");
    classify_result_destroy(&r);
}

static void test_client_network(void **state)
{
    static const struct {
        const char *ip;    /* client address as the MTA gives it */
        const char *canon; /* the address key, NULL when it is no address */
        const char *net;   /* its network key */
    } cases[] = {
        {"192.0.2.77", "192.0.2.77", "192.0.2.0/24"},
        {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
        /* Postfix's {client_addr} of an IPv6 client, and other forms of one address */
        {"IPv6:2001:DB8::1", "2001:db8::1", "2001:db8::/64"},
        {"[192.0.2.77]", "192.0.2.77", "192.0.2.0/24"},
        {"::ffff:192.0.2.77", "192.0.2.77", "192.0.2.0/24"},
        {"not-an-ip", NULL, NULL},
        {"unknown", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        classify_input_t in = {.msg = "Subject: x\n\nbody\n", .len = 17, .client_ip = cases[i].ip};
        classify_result_t *r = classify_message(&in);
        if (cases[i].canon) {
            assert_string_equal(classify_result_client_ip(r), cases[i].canon);
            assert_string_equal(classify_result_client_net(r), cases[i].net);
        } else {
            assert_null(classify_result_client_ip(r));
            assert_null(classify_result_client_net(r));
        }
        classify_result_destroy(&r);
    }
}

static void test_names(void **state)
{
    assert_string_equal(classify_class_name(CLASSIFY_BOUNCE), "bounce");
    assert_string_equal(classify_class_name(CLASSIFY_AUTOREPLY), "autoreply");
    assert_string_equal(classify_class_name(CLASSIFY_MDN), "mdn");
    assert_string_equal(classify_class_name(CLASSIFY_ARF), "arf");
    assert_string_equal(classify_class_name(CLASSIFY_NORMAL), "normal");
    assert_string_equal(classify_class_name((classify_class_t)99), "unknown");
    assert_string_equal(classify_orig_name(CLASSIFY_ORIG_RFC822), "rfc822");
    assert_string_equal(classify_orig_name(CLASSIFY_ORIG_HEADERS), "headers");
    assert_string_equal(classify_orig_name(CLASSIFY_ORIG_NONE), "none");
}

static void test_check_mail_table(void **state)
{
    static const struct {
        const char *file; /* fixture */
        int rc;           /* expected classify_check_mail() */
        const char *why;  /* expected reason when -1 */
    } cases[] = {
        {"empty.eml", -1, "empty"},
        {"binary_garbage.eml", -1, "binary data"},
        {"truncated_headers.eml", -1, "truncated header block"},
        {"ham_plain.eml", 0, NULL},
        {"postfix_dsn_rfc822.eml", 0, NULL},
        {"malformed_mime.eml", 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t len;
        char *msg = s_load(cases[i].file, &len);
        const char *why = NULL;
        assert_int_equal(classify_check_mail(msg, len, &why), cases[i].rc);
        if (cases[i].why)
            assert_string_equal(why, cases[i].why);
        xfree(msg);
    }
    const char *why = NULL;
    assert_int_equal(classify_check_mail("just some words\nand more\n", 25, &why), -1);
    assert_string_equal(why, "no header block");
}

/* Every prefix of a bounce, as the milter's body bound would cut it: no
   crash, and always a valid result with valid UTF-8 strings. */
static void test_every_cut_is_safe(void **state)
{
    size_t len;
    char *msg = s_load("postfix_dsn_rfc822.eml", &len);
    for (size_t cut = 0; cut <= len; cut += 7) {
        char *copy = xmalloc(cut + 1);
        memcpy(copy, msg, cut);
        classify_input_t in = {.msg = copy, .len = cut, .truncated = cut < len};
        classify_result_t *r = classify_message(&in);
        const char *k = classify_result_subject_key(r);
        assert_true(mime_utf8_valid(k, strlen(k)));
        classify_result_destroy(&r);
        xfree(copy);
    }
    xfree(msg);
}

static void test_garbage_is_safe(void **state)
{
    static const char alphabet[] = ":\n -=?ABCQabc\r;multipart/report\"boundary";
    unsigned char buf[4096];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round * 20) % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly header-ish bytes, some high and control bytes */
            unsigned v = (seed >> 16) & 0xff;
            buf[i] =
                v < 200 ? (unsigned char)alphabet[v % (sizeof(alphabet) - 1)] : (unsigned char)v;
        }
        classify_input_t in = {.msg = (const char *)buf, .len = n};
        classify_result_t *r = classify_message(&in);
        assert_non_null(r);
        classify_result_destroy(&r);
    }
    classify_input_t empty = {.msg = NULL, .len = 0};
    classify_result_t *r = classify_message(&empty);
    assert_int_equal(classify_result_class(r), CLASSIFY_NORMAL);
    classify_result_destroy(&r);
}

/* Deeply nested multiparts are refused before GMime recurses into them. */
static void test_deep_nesting_is_safe(void **state)
{
    size_t cap = 400 * 80 + 100, n = 0;
    char *msg = xmalloc(cap);
    n += (size_t)snprintf(msg + n, cap - n, "From: MAILER-DAEMON@x.example\nSubject: x\n");
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(msg + n, cap - n,
                              "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
    classify_input_t in = {.msg = msg, .len = n};
    classify_result_t *r = classify_message(&in);
    assert_non_null(r);
    classify_result_destroy(&r);
    xfree(msg);
}

typedef struct {
    char *msgs[4];   /* fixtures */
    size_t lens[4];  /* their lengths */
    uint64_t fps[4]; /* expected orig_subject_fp */
    int mismatches;  /* results that differed */
} s_thread_arg_t;

static void *s_thread(void *p)
{
    s_thread_arg_t *a = p;
    int bad = 0;
    for (int round = 0; round < 200; round++)
        for (int i = 0; i < 4; i++) {
            classify_input_t in = {.msg = a->msgs[i], .len = a->lens[i]};
            classify_result_t *r = classify_message(&in);
            bad += classify_result_orig_subject_fp(r) != a->fps[i];
            classify_result_destroy(&r);
        }
    __atomic_add_fetch(&a->mismatches, bad, __ATOMIC_RELAXED);
    return NULL;
}

static void test_threads_agree(void **state)
{
    static const char *const files[] = {"postfix_dsn_rfc822.eml", "exim_ndr_inline.eml",
                                        "de_unzustellbar.eml", "exchange_ndr_headers.eml"};
    s_thread_arg_t a = {0};
    for (int i = 0; i < 4; i++) {
        a.msgs[i] = s_load(files[i], &a.lens[i]);
        a.fps[i] = fp_text("cheap meds #");
    }
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_thread, &a), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a.mismatches, 0);
    for (int i = 0; i < 4; i++)
        xfree(a.msgs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_table),
        cmocka_unit_test(test_dsn_fields_and_original_headers),
        cmocka_unit_test(test_delay_dsn_action),
        cmocka_unit_test(test_bounce_key_matches_original_key),
        cmocka_unit_test(test_envelope_null_sender_counts),
        cmocka_unit_test(test_a_persons_words_are_no_bounce),
        cmocka_unit_test(test_mail_about_bounces_is_no_bounce),
        cmocka_unit_test(test_relayed_bounces_are_bounces),
        cmocka_unit_test(test_exim_delay_key_and_original),
        cmocka_unit_test(test_inline_original_in_its_charset),
        cmocka_unit_test(test_headers_part_after_blank_line),
        cmocka_unit_test(test_client_network),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_check_mail_table),
        cmocka_unit_test(test_every_cut_is_safe),
        cmocka_unit_test(test_garbage_is_safe),
        cmocka_unit_test(test_deep_nesting_is_safe),
        cmocka_unit_test(test_threads_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
