/* timer: IRQ0 from the PIT at 100 Hz, counted while the CPU halts. Only
 * the tick counts and a pass/fail verdict on the TSC are printed, so the
 * output does not depend on the host's speed. */
#include "rt.h"

#define HZ 100
#define TICKS 50

static volatile uint32_t ticks;

static void on_tick(struct rt_frame* f) {
  (void)f;
  ++ticks;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  pic_remap();
  set_handler(IRQ_VECTOR(0), on_tick);
  pit_set_hz(HZ);
  pic_unmask(0);
  printf("timer: PIT at %u Hz\n", HZ);
  uint64_t start = rdtsc();
  uint32_t seen = 0;
  while (seen < TICKS) {
    cli();
    if (ticks == seen) sti_hlt();
    sti();
    uint32_t now = ticks;
    while (seen < now) {
      ++seen;
      if (seen % 10 == 0) printf("tick %u\n", seen);
    }
  }
  cli();
  uint64_t elapsed = rdtsc() - start;
  /* 50 ticks at 100 Hz are 0.5 s: any TSC rate between 10 MHz and 100 GHz
   * passes; zero or a TSC that went backwards does not. */
  uint64_t low = (uint64_t)TICKS * 10000000u / HZ, high = (uint64_t)TICKS * 100000000000ull / HZ;
  int plausible = elapsed >= low && elapsed <= high;
  printf("timer: %u ticks, tsc delta %s\n", seen, plausible ? "plausible" : "IMPLAUSIBLE");
  return plausible ? 0 : 1;
}
