/* Big-endian (network order) loads and stores for the wire codecs. p must
 * hold the bytes; the caller has checked the length. */
#ifndef UM_UTIL_BYTES_H
#define UM_UTIL_BYTES_H

#include <stdint.h>

static inline uint16_t um_ld16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t um_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t um_ld64(const uint8_t *p)
{
    return (uint64_t)um_ld32(p) << 32 | um_ld32(p + 4);
}

static inline void um_st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void um_st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void um_st64(uint8_t *p, uint64_t v)
{
    um_st32(p, (uint32_t)(v >> 32));
    um_st32(p + 4, (uint32_t)v);
}

#endif
