/*
 * fp - 64-bit fingerprints of key text, identical on every sensor
 *
 * A key (a normalised subject, say) is counted by the aggregator under its
 * fingerprint, so every sensor of every site must compute the same number for
 * the same text. The hash is SipHash-2-4 (Aumasson and Bernstein, 2012) over
 * the UTF-8 bytes of the text, without a terminating NUL, under the fixed
 * 16-byte key FP_KEY below: the ASCII bytes "backstop-fp-v1" followed by two
 * NUL bytes. The 64-bit result is the little-endian reading of SipHash's
 * output, as in the reference implementation. Changing the key or the hash is
 * a protocol change (PROTOCOL.md names it): bump the "v1".
 *
 * Pure functions, no state: safe from any thread.
 */
#ifndef BS_FP_H
#define BS_FP_H

#include <stddef.h>
#include <stdint.h>

/* The fleet-wide SipHash key: "backstop-fp-v1" plus two NUL bytes. */
#define FP_KEY     "backstop-fp-v1\0\0"
#define FP_KEY_LEN 16

/* Length of fp_hex()'s output including the NUL: 16 hex digits. */
#define FP_HEX_SIZE 17

/* SipHash-2-4 of len bytes at data under a 16-byte key. */
uint64_t fp_siphash24(const unsigned char key[16], const void *data, size_t len);

/* The fingerprint of len bytes of key text under FP_KEY. */
uint64_t fp_bytes(const void *data, size_t len);

/* The fingerprint of a NUL-terminated UTF-8 key text under FP_KEY. */
uint64_t fp_text(const char *s);

/* Writes fp as 16 lowercase hex digits and a NUL into out; returns out. */
char *fp_hex(uint64_t fp, char out[FP_HEX_SIZE]);

/* The SplitMix64 finalizer: spreads every input bit over all 64, for hash tables keyed
 * by numbers that are not uniform (slots, not fingerprints: it has no key). */
static inline uint64_t fp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

#endif
