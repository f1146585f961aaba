/* reboot: resets the machine the way an OS does, and counts boots in CMOS
 * NVRAM (byte 0x6e, which a reset keeps and neither QEMU nor SeaBIOS uses). `method=` picks the reset line:
 * kbd (8042 command 0xFE on port 0x64), kbdport (8042 command 0xD1 writing
 * the output port with bit 0 clear), cf9 (PIIX3 reset control, 0x02 then
 * 0x06), port92 (fast reset, bit 0 of port 0x92) or triple (an IDT with no
 * entries, then INT3). `boots=N` (default 2): after the Nth boot it exits
 * through isa-debug-exit with code 0. Each boot prints "boot <n>". Under
 * -no-reboot the first reset ends the run instead. */
#include "rt.h"

static void cmos_write(uint8_t reg, uint8_t value) {
  outb(0x70, reg);
  outb(0x71, value);
}

static void kbd_wait_input_empty(void) {
  for (int i = 0; i < 100000 && (inb(0x64) & 0x02); ++i) {
  }
}

/* The value of `key=` up to the next space, or 0 when absent. */
static const char* arg(const char* key, char* buf, uint32_t size) {
  const char* v = cmdline_arg(key);
  if (!v) return 0;
  uint32_t i = 0;
  while (v[i] && v[i] != ' ' && i + 1 < size) {
    buf[i] = v[i];
    ++i;
  }
  buf[i] = 0;
  return buf;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  char method_buf[16], boots_buf[12];
  const char* method = arg("method=", method_buf, sizeof method_buf);
  const char* boots_arg = arg("boots=", boots_buf, sizeof boots_buf);
  uint32_t boots = boots_arg ? parse_u32(boots_arg) : 2;
  uint8_t n = cmos_read(0x6e);
  printf("boot %u\n", (unsigned)n);
  if (n + 1u >= boots) {
    cmos_write(0x6e, 0);
    rt_exit(0);
  }
  cmos_write(0x6e, (uint8_t)(n + 1));
  if (!method || str_eq(method, "kbd")) {
    kbd_wait_input_empty();
    outb(0x64, 0xfe);
  } else if (str_eq(method, "kbdport")) {
    kbd_wait_input_empty();
    outb(0x64, 0xd1);
    kbd_wait_input_empty();
    outb(0x60, 0x02); /* A20 on, reset line low */
  } else if (str_eq(method, "cf9")) {
    outb(0xcf9, 0x02);
    outb(0xcf9, 0x06);
  } else if (str_eq(method, "port92")) {
    outb(0x92, inb(0x92) & ~1);
    outb(0x92, inb(0x92) | 1);
  } else if (str_eq(method, "triple")) {
    static const struct {
      uint16_t limit;
      uint32_t base;
    } __attribute__((packed)) empty_idt = {0, 0};
    __asm__ volatile("lidt %0; int3" : : "m"(empty_idt));
  }
  printf("reset did not happen\n");
  rt_exit(3);
}
