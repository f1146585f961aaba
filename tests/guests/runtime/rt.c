#include "rt.h"

#define COM1 0x3f8

void serial_init(void) {
  outb(COM1 + 1, 0x00); /* no interrupts yet */
  outb(COM1 + 3, 0x80); /* DLAB */
  outb(COM1 + 0, 0x01); /* 115200 baud */
  outb(COM1 + 1, 0x00);
  outb(COM1 + 3, 0x03); /* 8N1 */
  outb(COM1 + 2, 0xc7); /* FIFO on, cleared, 14-byte trigger */
  outb(COM1 + 4, 0x0b); /* DTR, RTS, OUT2 (IRQ gate) */
}

void serial_putc(char c) {
  while (!(inb(COM1 + 5) & 0x20)) {
  }
  outb(COM1, (uint8_t)c);
}

int serial_try_getc(void) {
  if (!(inb(COM1 + 5) & 0x01)) return -1;
  return inb(COM1);
}

void puts_raw(const char *s) {
  while (*s) {
    if (*s == '\n') serial_putc('\r');
    serial_putc(*s++);
  }
}

static void put_unsigned(uint32_t v, unsigned base, int width, char pad) {
  char buf[16];
  int n = 0;
  do {
    unsigned d = v % base;
    buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v);
  while (n < width) buf[n++] = pad;
  while (n) serial_putc(buf[--n]);
}

void vprintf(const char *fmt, va_list ap) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      if (*fmt == '\n') serial_putc('\r');
      serial_putc(*fmt);
      continue;
    }
    ++fmt;
    char pad = ' ';
    int width = 0;
    if (*fmt == '0') {
      pad = '0';
      ++fmt;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int is_long_long = 0;
    while (*fmt == 'l') {
      is_long_long += 1;
      ++fmt;
    }
    switch (*fmt) {
      case 'd': {
        int v = va_arg(ap, int);
        if (v < 0) {
          serial_putc('-');
          put_unsigned((uint32_t)(-(int64_t)v), 10, width, pad);
        } else {
          put_unsigned((uint32_t)v, 10, width, pad);
        }
        break;
      }
      case 'u': put_unsigned(va_arg(ap, uint32_t), 10, width, pad); break;
      case 'x':
        if (is_long_long >= 2) {
          uint64_t v = va_arg(ap, uint64_t);
          if (v >> 32) {
            put_unsigned((uint32_t)(v >> 32), 16, width > 8 ? width - 8 : 0, pad);
            put_unsigned((uint32_t)v, 16, 8, '0');
          } else {
            put_unsigned((uint32_t)v, 16, width, pad);
          }
        } else {
          put_unsigned(va_arg(ap, uint32_t), 16, width, pad);
        }
        break;
      case 's': {
        const char *s = va_arg(ap, const char *);
        puts_raw(s ? s : "(null)");
        break;
      }
      case 'c': serial_putc((char)va_arg(ap, int)); break;
      case '%': serial_putc('%'); break;
      default: serial_putc('?'); break;
    }
  }
}

void printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}

/* ---- descriptor tables ---- */

static uint64_t gdt[16];
static uint64_t idt[256];
static handler_fn handlers[256];
extern uint32_t isr_stub_table[];

void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
  uint64_t d = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)access << 40) |
               ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)(flags & 0xf) << 52) |
               ((uint64_t)(base >> 24) << 56);
  gdt[index] = d;
}

static void load_tables(void) {
  gdt_set(0, 0, 0, 0, 0);
  gdt_set(1, 0, 0xfffff, 0x9a, 0xc); /* 0x08 code */
  gdt_set(2, 0, 0xfffff, 0x92, 0xc); /* 0x10 data */
  struct __attribute__((packed)) {
    uint16_t limit;
    uint32_t base;
  } gdtr = {sizeof(gdt) - 1, (uint32_t)gdt}, idtr = {sizeof(idt) - 1, (uint32_t)idt};
  __asm__ volatile(
      "lgdt %0\n"
      "ljmp $0x08, $1f\n"
      "1: mov $0x10, %%ax\n"
      "mov %%ax, %%ds\n mov %%ax, %%es\n mov %%ax, %%ss\n mov %%ax, %%fs\n mov %%ax, %%gs\n"
      :
      : "m"(gdtr)
      : "eax", "memory");
  for (int v = 0; v <= 48; ++v) {
    uint32_t off = isr_stub_table[v];
    /* 32-bit interrupt gate, DPL 3 for int3/into/bound so user tests work. */
    uint8_t type = 0x8e;
    if (v == 3 || v == 4 || v == 48) type = 0xee;
    idt[v] = (off & 0xffff) | ((uint64_t)0x08 << 16) | ((uint64_t)type << 40) | ((uint64_t)(off >> 16) << 48);
  }
  __asm__ volatile("lidt %0" : : "m"(idtr));
}

void set_handler(int vector, handler_fn fn) { handlers[vector] = fn; }

void rt_dispatch(struct frame *f) {
  handler_fn h = handlers[f->vector & 0xff];
  if (h) {
    h(f);
    return;
  }
  printf("unhandled vector %u error %x at eip %x\n", f->vector, f->error, f->eip);
  rt_exit(0x7f);
}

/* ---- PIC, PIT, CMOS ---- */

void pic_remap(void) {
  outb(0x20, 0x11);
  outb(0xa0, 0x11);
  outb(0x21, 0x20);
  outb(0xa1, 0x28);
  outb(0x21, 0x04);
  outb(0xa1, 0x02);
  outb(0x21, 0x01);
  outb(0xa1, 0x01);
  outb(0x21, 0xfb); /* everything masked but the cascade */
  outb(0xa1, 0xff);
}

void pic_unmask(int irq) {
  uint16_t port = irq < 8 ? 0x21 : 0xa1;
  outb(port, inb(port) & ~(1u << (irq & 7)));
}

void pic_eoi(int irq) {
  if (irq >= 8) outb(0xa0, 0x20);
  outb(0x20, 0x20);
}

void pit_set_hz(uint32_t hz) {
  uint32_t divisor = 1193182u / hz;
  outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
  outb(0x40, (uint8_t)divisor);
  outb(0x40, (uint8_t)(divisor >> 8));
}

uint8_t cmos_read(uint8_t reg) {
  outb(0x70, reg);
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

/* ---- strings ---- */

uint32_t str_len(const char *s) {
  uint32_t n = 0;
  while (s[n]) ++n;
  return n;
}

int str_eq(const char *a, const char *b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

int str_starts(const char *s, const char *prefix) {
  while (*prefix) {
    if (*s++ != *prefix++) return 0;
  }
  return 1;
}

uint32_t parse_u32(const char *s) {
  uint32_t v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint32_t)(*s++ - '0');
  return v;
}

const char *cmdline_arg(uint32_t mbi, const char *key) {
  const uint32_t *info = (const uint32_t *)mbi;
  if (!(info[0] & 4)) return 0;
  const char *p = (const char *)info[4];
  while (*p) {
    while (*p == ' ') ++p;
    if (str_starts(p, key)) return p + str_len(key);
    while (*p && *p != ' ') ++p;
  }
  return 0;
}

void rt_start(uint32_t magic, uint32_t mbi) {
  load_tables();
  serial_init();
  rt_exit(main(magic, mbi));
}
