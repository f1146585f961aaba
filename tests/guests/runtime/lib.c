/* String helpers and 64-bit division, so no guest needs libgcc. */
#include "rt.h"

uint32_t str_len(const char* s) {
  uint32_t n = 0;
  while (s[n]) ++n;
  return n;
}

int str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

int str_starts(const char* s, const char* prefix) {
  while (*prefix) {
    if (*s++ != *prefix++) return 0;
  }
  return 1;
}

uint32_t parse_u32(const char* s) {
  uint32_t v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint32_t)(*s++ - '0');
  return v;
}

void mem_set(void* dst, int value, uint32_t n) {
  __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(value) : "memory");
}

uint64_t udiv64(uint64_t n, uint32_t d, uint32_t* remainder) {
  /* Two 64/32 DIVs: the high half first, whose remainder (< d) keeps the
   * second quotient within 32 bits. */
  uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n;
  uint32_t q_hi = hi / d, r = hi % d, q_lo;
  __asm__("divl %4" : "=a"(q_lo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
  if (remainder) *remainder = r;
  return ((uint64_t)q_hi << 32) | q_lo;
}

/* GCC may emit calls to these four even in freestanding code (struct
 * copies, large initialisers), so the runtime defines them. */
void* memset(void* dst, int value, uint32_t n);
void* memcpy(void* dst, const void* src, uint32_t n);
void* memmove(void* dst, const void* src, uint32_t n);
int memcmp(const void* a, const void* b, uint32_t n);

void* memset(void* dst, int value, uint32_t n) {
  mem_set(dst, value, n);
  return dst;
}

void* memcpy(void* dst, const void* src, uint32_t n) {
  void* d = dst;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
  return dst;
}

void* memmove(void* dst, const void* src, uint32_t n) {
  uint8_t* d = dst;
  const uint8_t* s = src;
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}

int memcmp(const void* a, const void* b, uint32_t n) {
  const uint8_t *x = a, *y = b;
  for (uint32_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
