/* Little-endian field access for the protocol codecs, whatever the host's
 * byte order. */
#ifndef OX_WIRE_H
#define OX_WIRE_H

#include <stdint.h>
#include <string.h>

static inline void ox_put_u8(uint8_t *p, uint8_t v) { p[0] = v; }
static inline void ox_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void ox_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ox_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ox_put_i32(uint8_t *p, int32_t v) { ox_put_u32(p, (uint32_t)v); }
static inline uint32_t ox_f32_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}
static inline float ox_f32_from_bits(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
static inline void ox_put_f32(uint8_t *p, float v) { ox_put_u32(p, ox_f32_bits(v)); }

static inline uint8_t ox_get_u8(const uint8_t *p) { return p[0]; }
static inline uint16_t ox_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t ox_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t ox_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline int32_t ox_get_i32(const uint8_t *p) { return (int32_t)ox_get_u32(p); }
static inline float ox_get_f32(const uint8_t *p) { return ox_f32_from_bits(ox_get_u32(p)); }

#endif
