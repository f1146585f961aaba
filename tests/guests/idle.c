/* idle: a mostly idle, timer-driven guest for long recordings. The PIT
 * interrupts at hz= (default 100); after each tick the guest does a little
 * work (work= rounds of a xorshift mix over a 4 KiB buffer, default 100)
 * and halts again, until seconds= (default 10) of ticks have passed. Under
 * reel a halted CPU jumps to the next timer deadline, so an hour of virtual
 * time costs only the instructions of the ticks. It prints a progress line
 * every report= seconds (default 600; 0: none), then the uptime counted in
 * ticks, the CMOS clock at start and end (its elapsed seconds must match),
 * and a checksum of the work. Output depends on the arguments only. */
#include "rt.h"

static volatile uint32_t ticks;

static void on_tick(struct rt_frame* f) {
  (void)f;
  ++ticks;
}

static uint32_t arg_or(const char* key, uint32_t fallback) {
  const char* v = cmdline_arg(key);
  return v ? parse_u32(v) : fallback;
}

/* Seconds since midnight from the CMOS clock, read like rtc.c does (UIP
 * clear, two equal reads), BCD or binary per register B, 24-hour assumed
 * unless register B says 12-hour. */
static uint32_t bcd(uint8_t v, int binary) { return binary ? v : (uint32_t)((v >> 4) * 10 + (v & 15)); }

static uint32_t rtc_seconds_of_day(uint32_t* day) {
  uint8_t s, m, h, d, s2, m2, h2, d2;
  do {
    while (cmos_read(0x0a) & 0x80) {
    }
    s = cmos_read(0x00);
    m = cmos_read(0x02);
    h = cmos_read(0x04);
    d = cmos_read(0x07);
    while (cmos_read(0x0a) & 0x80) {
    }
    s2 = cmos_read(0x00);
    m2 = cmos_read(0x02);
    h2 = cmos_read(0x04);
    d2 = cmos_read(0x07);
  } while (s != s2 || m != m2 || h != h2 || d != d2);
  uint8_t reg_b = cmos_read(0x0b);
  int binary = reg_b & 0x04;
  uint32_t hour = bcd(h & 0x7f, binary);
  if (!(reg_b & 0x02)) {
    if (hour == 12) hour = 0;
    if (h & 0x80) hour += 12;
  }
  *day = bcd(d, binary);
  return hour * 3600 + bcd(m, binary) * 60 + bcd(s, binary);
}

static void print_hms(uint32_t s) { printf("%02u:%02u:%02u", s / 3600, s / 60 % 60, s % 60); }

static uint32_t buffer[1024];

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  uint32_t hz = arg_or("hz=", 100), seconds = arg_or("seconds=", 10), work = arg_or("work=", 100),
           report = arg_or("report=", 600);
  if (hz < 19) hz = 19; /* the PIT's 16-bit divisor bounds the slowest rate */
  if (hz > 10000) hz = 10000;
  uint64_t total64 = (uint64_t)hz * seconds;
  uint32_t total = total64 > 0xffffffffu ? 0xffffffffu : (uint32_t)total64;

  uint32_t day0, day1;
  uint32_t rtc0 = rtc_seconds_of_day(&day0);
  pic_remap();
  set_handler(IRQ_VECTOR(0), on_tick);
  pit_set_hz(hz);
  pic_unmask(0);
  printf("idle: PIT at %u Hz, %u s (%u ticks), %u work rounds per tick\n", hz, seconds, total, work);
  printf("idle: rtc at start ");
  print_hms(rtc0);
  printf("\n");

  for (uint32_t i = 0; i < 1024; ++i) buffer[i] = i * 2654435761u;
  uint32_t x = 0x12345678u, sum = 0, seen = 0;
  while (seen < total) {
    cli();
    if (ticks == seen) sti_hlt();
    sti();
    uint32_t now = ticks;
    while (seen < now && seen < total) {
      ++seen;
      for (uint32_t r = 0; r < work; ++r) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint32_t* p = &buffer[x & 1023];
        *p = (*p + x) ^ sum;
        sum = sum * 31 + *p;
      }
      if (report && seen % (report * hz) == 0) printf("idle: %u s, sum %08x\n", seen / hz, sum);
    }
  }
  cli();
  uint32_t rtc1 = rtc_seconds_of_day(&day1);
  uint32_t rtc_elapsed = (rtc1 + (day1 != day0 ? 86400 : 0)) - rtc0;
  printf("idle: %u ticks = %u s of uptime, rtc at end ", seen, seen / hz);
  print_hms(rtc1);
  printf(" (%u s later)\n", rtc_elapsed);
  printf("idle: checksum %08x\n", sum);
  /* The RTC and the tick count must agree to within a second or two (the
   * RTC reads land anywhere inside a second). */
  uint32_t up = seen / hz;
  int ok = rtc_elapsed + 2 >= up && rtc_elapsed <= up + 2;
  printf("idle: %s\n", ok ? "ok" : "FAIL rtc and ticks disagree");
  return ok ? 0 : 1;
}
