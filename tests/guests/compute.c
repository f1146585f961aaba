/* compute: a fixed integer workload for benchmarks and CPU checks. The
 * iteration count comes from "iterations=N" on the command line. */
#include "rt.h"

static uint32_t rng_state = 12345;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

static uint8_t buffer[65536];
static uint8_t copy[65536];
static uint32_t numbers[4096];
static uint8_t sieve[65536];
static int32_t ma[24][24], mb[24][24], mc[24][24];

static uint32_t crc32(const uint8_t *p, uint32_t n) {
  uint32_t crc = 0xffffffffu;
  for (uint32_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static uint32_t primes(void) {
  uint32_t count = 0;
  for (uint32_t i = 0; i < sizeof sieve; ++i) sieve[i] = 1;
  for (uint32_t i = 2; i < sizeof sieve; ++i) {
    if (!sieve[i]) continue;
    ++count;
    for (uint32_t j = i * 2; j < sizeof sieve; j += i) sieve[j] = 0;
  }
  return count;
}

static uint32_t sort_check(void) {
  for (uint32_t i = 0; i < 4096; ++i) numbers[i] = rng();
  /* Shell sort: data-dependent branches and memory traffic. */
  for (uint32_t gap = 2048; gap; gap /= 2) {
    for (uint32_t i = gap; i < 4096; ++i) {
      uint32_t v = numbers[i], j = i;
      while (j >= gap && numbers[j - gap] > v) {
        numbers[j] = numbers[j - gap];
        j -= gap;
      }
      numbers[j] = v;
    }
  }
  uint32_t h = 0;
  for (uint32_t i = 0; i < 4096; ++i) h = h * 31 + numbers[i];
  return h;
}

static uint32_t matmul(void) {
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 24; ++j) {
      ma[i][j] = (int32_t)(rng() & 0xff) - 128;
      mb[i][j] = (int32_t)(rng() & 0xff) - 128;
    }
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 24; ++j) {
      int32_t s = 0;
      for (int k = 0; k < 24; ++k) s += ma[i][k] * mb[k][j];
      mc[i][j] = s;
    }
  uint32_t h = 0;
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 24; ++j) h = (h ^ (uint32_t)mc[i][j]) * 16777619u;
  return h;
}

static uint32_t strings(void) {
  __asm__ volatile("cld; rep movsl" : : "S"(buffer), "D"(copy), "c"(sizeof buffer / 4) : "memory");
  __asm__ volatile("rep stosb" : : "D"(buffer + 1024), "a"(0x5a), "c"(4096) : "memory");
  uint32_t diff = 0;
  for (uint32_t i = 0; i < sizeof buffer; ++i) diff += buffer[i] != copy[i];
  return diff;
}

int main(uint32_t magic, uint32_t mbi) {
  (void)magic;
  const char *arg = cmdline_arg(mbi, "iterations=");
  uint32_t iterations = arg ? parse_u32(arg) : 10;
  for (uint32_t i = 0; i < sizeof buffer; ++i) buffer[i] = (uint8_t)rng();
  uint32_t total = 0;
  for (uint32_t it = 0; it < iterations; ++it) {
    uint32_t c = crc32(buffer, 16384), p = primes(), s = sort_check(), m = matmul(), d = strings();
    if (it == 0 || it + 1 == iterations) printf("iteration %u: crc %08x primes %u sort %08x matmul %08x strings %u\n", it, c, p, s, m, d);
    total = (total * 33) ^ c ^ p ^ s ^ m ^ d;
  }
  printf("compute: %u iterations, checksum %08x\n", iterations, total);
  return 0;
}
