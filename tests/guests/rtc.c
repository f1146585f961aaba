/* rtc: the CMOS clock's date and time. */
#include "rt.h"

static uint32_t bcd(uint8_t v, int binary) { return binary ? v : (uint32_t)((v >> 4) * 10 + (v & 15)); }

int main(uint32_t magic, uint32_t mbi) {
  (void)magic;
  (void)mbi;
  while (cmos_read(0x0a) & 0x80) {
  }
  uint8_t b = cmos_read(0x0b);
  int binary = b & 4;
  uint32_t sec = bcd(cmos_read(0), binary), min = bcd(cmos_read(2), binary);
  uint8_t hr = cmos_read(4);
  uint32_t hour = bcd(hr & 0x7f, binary);
  if (!(b & 2) && (hr & 0x80)) hour = (hour % 12) + 12;
  uint32_t wday = bcd(cmos_read(6), binary), day = bcd(cmos_read(7), binary);
  uint32_t mon = bcd(cmos_read(8), binary), year = bcd(cmos_read(9), binary);
  uint32_t century = bcd(cmos_read(0x32), binary);
  static const char *names[] = {"?", "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  printf("RTC: %u%02u-%02u-%02u %02u:%02u:%02u %s\n", century, year, mon, day, hour, min, sec,
         names[wday <= 7 ? wday : 0]);
  return 0;
}
