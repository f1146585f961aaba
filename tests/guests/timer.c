/* timer: IRQ0 from the PIT at 100 Hz, counted while the CPU halts. */
#include "rt.h"

static volatile uint32_t ticks;

static void on_tick(struct frame *f) {
  (void)f;
  ++ticks;
  pic_eoi(0);
}

int main(uint32_t magic, uint32_t mbi) {
  (void)magic;
  (void)mbi;
  pic_remap();
  set_handler(32, on_tick);
  pit_set_hz(100);
  pic_unmask(0);
  printf("timer: PIT at 100 Hz\n");
  uint64_t start = rdtsc();
  sti();
  uint32_t seen = 0;
  while (seen < 50) {
    hlt();
    if (ticks != seen) {
      seen = ticks;
      if (seen % 10 == 0) printf("tick %u\n", seen);
    }
  }
  cli();
  uint64_t elapsed = rdtsc() - start;
  /* 50 ticks at 100 Hz is 0.5 s; any TSC rate from 10 MHz to 100 GHz passes. */
  uint32_t hi = (uint32_t)(elapsed >> 32), lo = (uint32_t)elapsed;
  int plausible = hi > 0 || lo > 5000000u;
  printf("timer: %u ticks, tsc delta %s\n", seen, plausible ? "plausible" : "IMPLAUSIBLE");
  return plausible ? 0 : 1;
}
