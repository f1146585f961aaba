/* rtc: the CMOS clock's date, time and weekday, read the way a BIOS does:
 * wait for the update-in-progress bit to clear, read, and read again until
 * two reads agree; decode BCD or binary and 12/24-hour per register B. */
#include "rt.h"

struct rtc_time {
  uint8_t sec, min, hour, wday, mday, mon, year, century;
};

static void read_raw(struct rtc_time* t) {
  while (cmos_read(0x0a) & 0x80) {
  }
  t->sec = cmos_read(0x00);
  t->min = cmos_read(0x02);
  t->hour = cmos_read(0x04);
  t->wday = cmos_read(0x06);
  t->mday = cmos_read(0x07);
  t->mon = cmos_read(0x08);
  t->year = cmos_read(0x09);
  t->century = cmos_read(0x32);
}

static int same(const struct rtc_time* a, const struct rtc_time* b) {
  return a->sec == b->sec && a->min == b->min && a->hour == b->hour && a->wday == b->wday &&
         a->mday == b->mday && a->mon == b->mon && a->year == b->year && a->century == b->century;
}

static uint32_t decode(uint8_t v, int binary) { return binary ? v : (uint32_t)((v >> 4) * 10 + (v & 15)); }

/* Day of the week, 0 = Sunday (Sakamoto's method). */
static uint32_t weekday_of(uint32_t y, uint32_t m, uint32_t d) {
  static const uint8_t offsets[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  if (m < 3) y -= 1;
  return (y + y / 4 - y / 100 + y / 400 + offsets[(m - 1) % 12] + d) % 7;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  struct rtc_time a, b;
  read_raw(&b);
  do {
    a = b;
    read_raw(&b);
  } while (!same(&a, &b));

  uint8_t reg_b = cmos_read(0x0b);
  int binary = reg_b & 0x04, hours24 = reg_b & 0x02;
  uint32_t hour = decode(a.hour & 0x7f, binary);
  if (!hours24) {
    /* 12-hour clock: 12 AM is 0, bit 7 marks PM. */
    if (hour == 12) hour = 0;
    if (a.hour & 0x80) hour += 12;
  }
  uint32_t year = decode(a.century, binary) * 100 + decode(a.year, binary);
  uint32_t mon = decode(a.mon, binary), day = decode(a.mday, binary);
  uint32_t wday = decode(a.wday, binary); /* 1 = Sunday */
  static const char* const names[8] = {"?",         "Sunday",   "Monday", "Tuesday",
                                       "Wednesday", "Thursday", "Friday", "Saturday"};
  printf("RTC: %04u-%02u-%02u %02u:%02u:%02u %s\n", year, mon, day, hour, decode(a.min, binary),
         decode(a.sec, binary), names[wday <= 7 ? wday : 0]);
  int wday_ok = mon >= 1 && mon <= 12 && wday >= 1 && wday <= 7 && weekday_of(year, mon, day) == wday - 1;
  printf("RTC: weekday register %s the date\n", wday_ok ? "matches" : "DOES NOT MATCH");
  return wday_ok ? 0 : 1;
}
