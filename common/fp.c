/*
 * fp - SipHash-2-4 fingerprints of key text
 *
 * Written from the SipHash paper's description; byte order is fixed
 * (little-endian reads of the input and key) so every host gets the same
 * value. See fp.h for the key and the promise.
 */
#include "fp.h"

#include <stdio.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t s_load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t fp_siphash24(const unsigned char key[16], const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t k0 = s_load_le64(key);
    uint64_t k1 = s_load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = len - (len % 8);
    uint64_t m;

    for (size_t i = 0; i < whole; i += 8) {
        m = s_load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    /* last block: remaining bytes, length in the top byte */
    m = (uint64_t)(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; i++)
        m |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t fp_bytes(const void *data, size_t len)
{
    return fp_siphash24((const unsigned char *)FP_KEY, data, len);
}

uint64_t fp_text(const char *s)
{
    return fp_bytes(s, strlen(s));
}

char *fp_hex(uint64_t fp, char out[FP_HEX_SIZE])
{
    snprintf(out, FP_HEX_SIZE, "%016llx", (unsigned long long)fp);
    return out;
}
