/* PIC 8259 pair, PIT 8254, CMOS, isa-debug-exit, and rt_start. */
#include "rt.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1

void pic_remap(void) {
  outb(PIC1_CMD, 0x11); /* ICW1: edge triggered, cascade, ICW4 follows */
  outb(PIC2_CMD, 0x11);
  outb(PIC1_DATA, IRQ_VECTOR(0)); /* ICW2: vector base */
  outb(PIC2_DATA, IRQ_VECTOR(8));
  outb(PIC1_DATA, 0x04); /* ICW3: slave on IRQ 2 */
  outb(PIC2_DATA, 0x02); /* ICW3: slave identity */
  outb(PIC1_DATA, 0x01); /* ICW4: 8086 mode, normal EOI */
  outb(PIC2_DATA, 0x01);
  outb(PIC1_DATA, 0xfb); /* everything masked but the cascade */
  outb(PIC2_DATA, 0xff);
}

void pic_mask(int irq) {
  uint16_t port = irq < 8 ? PIC1_DATA : PIC2_DATA;
  outb(port, (uint8_t)(inb(port) | (1u << (irq & 7))));
}

void pic_unmask(int irq) {
  uint16_t port = irq < 8 ? PIC1_DATA : PIC2_DATA;
  outb(port, (uint8_t)(inb(port) & ~(1u << (irq & 7))));
}

void pic_eoi(int irq) {
  if (irq >= 8) outb(PIC2_CMD, 0x20);
  outb(PIC1_CMD, 0x20);
}

void pit_set_hz(uint32_t hz) {
  uint32_t divisor = 1193182u / hz;
  outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator) */
  outb(0x40, (uint8_t)divisor);
  outb(0x40, (uint8_t)(divisor >> 8));
}

uint8_t cmos_read(uint8_t reg) {
  outb(0x70, reg); /* bit 7 clear: NMI stays enabled, as the BIOS left it */
  return inb(0x71);
}

void rt_exit(int code) {
  outb(0xf4, (uint8_t)code);
  /* No debug-exit device: stop for good. */
  for (;;) {
    cli();
    hlt();
  }
}

static const char* boot_cmdline = "";

const char* cmdline(void) { return boot_cmdline; }

const char* cmdline_arg(const char* key) {
  const char* p = boot_cmdline;
  while (*p) {
    while (*p == ' ') ++p;
    if (str_starts(p, key)) return p + str_len(key);
    while (*p && *p != ' ') ++p;
  }
  return 0;
}

void rt_load_descriptor_tables(void);
void rt_start(uint32_t magic, uint32_t mbi_address);

void rt_start(uint32_t magic, uint32_t mbi_address) {
  const struct multiboot_info* mbi = (const struct multiboot_info*)mbi_address;
  rt_load_descriptor_tables();
  serial_init();
  if (magic == MULTIBOOT_BOOTLOADER_MAGIC && (mbi->flags & MBI_FLAG_CMDLINE) && mbi->cmdline)
    boot_cmdline = (const char*)mbi->cmdline;
  rt_exit(main(magic, mbi));
}
