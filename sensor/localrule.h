/*
 * localrule - the seed's per-site rule: x matching bounces with one subject
 *             key within a period block that subject here
 *
 * The sensor feeds every bounce that matched a content rule (or every bounce,
 * when no rule file is configured) with its subject key's fingerprint and the
 * time; localrule_note() says when the key has been seen threshold times
 * within the period, i.e. when the caller should block it at this site for
 * the block period. It keeps saying so while the wave continues, so the
 * caller extends its decision instead of letting it lapse mid-storm.
 *
 * Pure logic: no I/O, the time is an argument, not thread-safe (the caller
 * holds a lock). Memory is bounded: at most max_keys keys, each with at most
 * threshold timestamps; keys idle for a period are forgotten as notes come (a
 * few a note), and a full table forgets the least recently noted key.
 */
#ifndef BS_LOCALRULE_H
#define BS_LOCALRULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct localrule localrule_t;

/* A rule firing at threshold events within period_ms, tracking at most max_keys keys. */
localrule_t *localrule_new(uint32_t threshold, int64_t period_ms, size_t max_keys);

/* Frees the rule; sets *self_p = NULL; safe twice. */
void localrule_destroy(localrule_t **self_p);

/* Notes one matching bounce with key fp at now_ms; true when the key reached the threshold
 * within the period (this event included). */
bool localrule_note(localrule_t *self, uint64_t fp, int64_t now_ms);

/* Events with key fp within the period ending at now_ms. */
uint32_t localrule_count(const localrule_t *self, uint64_t fp, int64_t now_ms);

/* Keys tracked now. */
size_t localrule_keys(const localrule_t *self);

/* A short decision id for a local block of key fp: "L" and 7 letters/digits, stable per key. */
void localrule_decision_id(uint64_t fp, char out[9]);

#endif
