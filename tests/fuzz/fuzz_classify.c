/*
 * fuzz_classify - libFuzzer target: classify_message() on any bytes
 *
 * The input is a raw message as the milter hands it to the classifier. The
 * first byte picks the envelope: bit 0 sets the null sender (a bounce's
 * envelope), bit 1 marks the message as cut at the body bound, bit 2 gives a
 * client address. Every accessor of the result is read, so a string the
 * classifier left unterminated or dangling is caught by AddressSanitizer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t how = data[0];
    const char *rcpts[] = {"postmaster@example.org"};
    classify_input_t in = {
        .msg = (const char *)data + 1,
        .len = size - 1,
        .truncated = (how & 2) != 0,
        .client_ip = (how & 4) ? "192.0.2.25" : NULL,
        .helo = (how & 4) ? "mx.example.net" : NULL,
        .env_from = (how & 1) ? "" : "sender@example.com",
        .rcpts = rcpts,
        .nrcpts = 1,
    };
    classify_result_t *r = classify_message(&in);
    size_t sink = classify_result_class(r) + classify_result_original(r);
    const char *(*texts[])(const classify_result_t *) = {
        classify_result_subject,         classify_result_subject_key,
        classify_result_orig_subject,    classify_result_orig_subject_key,
        classify_result_orig_message_id, classify_result_orig_from,
        classify_result_orig_to,         classify_result_reporting_mta,
        classify_result_final_recipient, classify_result_action,
        classify_result_status,          classify_result_diagnostic_code,
        classify_result_client_ip,       classify_result_client_net,
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *s = texts[i](r);
        if (s)
            sink += strlen(s);
    }
    for (size_t i = 0; i < classify_result_reason_count(r); i++)
        sink += strlen(classify_result_reason(r, i));
    sink += (size_t)(classify_result_subject_fp(r) ^ classify_result_orig_subject_fp(r));
    classify_result_destroy(&r);
    const char *why = NULL;
    sink += (size_t)classify_check_mail((const char *)data, size, &why);
    if (why)
        sink += strlen(why);
    s_sink = sink;
    return 0;
}
