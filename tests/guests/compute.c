/* compute: a fixed integer workload for benchmarks and CPU checks: CRC32,
 * a sieve of Eratosthenes, a shell sort of PRNG data, an integer matrix
 * multiply and string instructions (rep movs/stos/scas/cmps). The iteration
 * count comes from "iterations=N" on the command line; the default runs
 * about 2e8 instructions. Output depends on N only. */
#include "rt.h"

#define DEFAULT_ITERATIONS 36

static uint32_t rng_state;
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

static uint32_t crc32(const uint8_t* p, uint32_t n) {
  uint32_t crc = 0xffffffffu;
  for (uint32_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static uint32_t primes(void) {
  uint32_t count = 0;
  mem_set(sieve, 1, sizeof sieve);
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
  for (uint32_t i = 1; i < 4096; ++i) {
    if (numbers[i - 1] > numbers[i]) return 0; /* not sorted: a CPU bug */
  }
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
  uint32_t h = 2166136261u;
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 24; ++j) h = (h ^ (uint32_t)mc[i][j]) * 16777619u;
  return h;
}

static uint32_t strings(void) {
  const uint8_t* src = buffer;
  uint8_t* dst = copy;
  uint32_t n = sizeof buffer / 4;
  __asm__ volatile("cld; rep movsl" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
  dst = buffer + 1024;
  n = 4096;
  __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(0x5a) : "memory");
  /* repe cmpsb: the first difference between buffer and copy. */
  src = buffer;
  dst = copy;
  n = sizeof buffer;
  __asm__ volatile("repe cmpsb" : "+S"(src), "+D"(dst), "+c"(n) : : "memory", "cc");
  uint32_t first_diff = (uint32_t)(src - buffer);
  /* repne scasb: the first 0x5a byte in copy. */
  dst = copy;
  n = sizeof copy;
  __asm__ volatile("repne scasb" : "+D"(dst), "+c"(n) : "a"(0x5a) : "memory", "cc");
  uint32_t first_5a = (uint32_t)(dst - copy);
  uint32_t diff = 0;
  for (uint32_t i = 0; i < sizeof buffer; ++i) diff += buffer[i] != copy[i];
  return diff * 65536u + first_diff * 3u + first_5a;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  const char* arg = cmdline_arg("iterations=");
  uint32_t iterations = arg ? parse_u32(arg) : DEFAULT_ITERATIONS;
  printf("compute: %u iterations\n", iterations);
  rng_state = 12345;
  for (uint32_t i = 0; i < sizeof buffer; ++i) buffer[i] = (uint8_t)rng();
  uint32_t sums[5] = {0, 0, 0, 0, 0};
  uint64_t work = 0;
  uint32_t total = 0;
  for (uint32_t it = 0; it < iterations; ++it) {
    uint32_t r[5] = {crc32(buffer, 16384), primes(), sort_check(), matmul(), strings()};
    for (int k = 0; k < 5; ++k) {
      sums[k] = (sums[k] * 33) ^ r[k];
      total = (total * 33) ^ r[k];
    }
    work += 16384 + sizeof sieve + 4096 + 24 * 24 * 24 + sizeof buffer;
  }
  printf("crc32:   %08x\n", sums[0]);
  printf("sieve:   %08x\n", sums[1]);
  printf("sort:    %08x\n", sums[2]);
  printf("matmul:  %08x\n", sums[3]);
  printf("strings: %08x\n", sums[4]);
  printf("compute: %llu work units\n", work);
  printf("compute: %u iterations, checksum %08x\n", iterations, total);
  return 0;
}
