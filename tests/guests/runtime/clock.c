/* A tick counter on PIT channel 0, for timeouts in the network guests. */
#include "net.h"

static volatile uint32_t ticks;

static void on_tick(struct rt_frame* f) {
  (void)f;
  ++ticks;
}

void clock_start(void) {
  set_handler(IRQ_VECTOR(0), on_tick);
  pit_set_hz(CLOCK_HZ);
  pic_unmask(0);
}

uint32_t clock_ticks(void) { return ticks; }

uint32_t clock_ms(uint32_t ms) {
  if (ms == 0) return 0;
  return (ms * CLOCK_HZ + 999) / 1000;
}
