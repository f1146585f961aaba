/* The byte pattern and the hash that the network test guests and the host
 * side of their tests (tests/unit/loopback_servers.h) share, so both ends
 * agree on what a stream should hold without either keeping it: FNV-1a 64
 * over the bytes in order, and a pattern computable at any offset.
 *
 * Plain C99 with <stdint.h> only: it is included by the freestanding
 * guests and by C++ tests alike. */
#ifndef REEL_GUEST_STREAM_HASH_H
#define REEL_GUEST_STREAM_HASH_H

#include <stdint.h>

#define REEL_FNV64_OFFSET 0xcbf29ce484222325ull
#define REEL_FNV64_PRIME 0x100000001b3ull

static inline uint64_t reel_fnv64_update(uint64_t h, const uint8_t* p, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= REEL_FNV64_PRIME;
  }
  return h;
}

/* Byte `i` of the stream for `seed`: each aligned 4-byte word is a mixed
 * function of its index and the seed, so a shifted or repeated block never
 * matches where it should not. */
static inline uint8_t reel_pattern_byte(uint32_t seed, uint32_t i) {
  uint32_t x = ((i >> 2) ^ (seed * 0x85ebca6bu)) * 0x9e3779b1u;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  x ^= x >> 12;
  return (uint8_t)(x >> (8 * (i & 3)));
}

#endif
