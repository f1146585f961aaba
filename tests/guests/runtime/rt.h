/* A tiny runtime for reel's freestanding test guests: port I/O, COM1,
 * printf, a flat GDT, an IDT with C handlers, PIC/PIT/CMOS helpers and
 * exit through isa-debug-exit. */
#ifndef REEL_GUEST_RT_H
#define REEL_GUEST_RT_H

#include <stdarg.h>
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void sti(void) { __asm__ volatile("sti"); }
static inline void cli(void) { __asm__ volatile("cli"); }
static inline void hlt(void) { __asm__ volatile("hlt"); }
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

struct frame {
  uint32_t es, ds;
  uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
  uint32_t vector, error;
  uint32_t eip, cs, eflags;
};
typedef void (*handler_fn)(struct frame *f);

int main(uint32_t magic, uint32_t mbi);

void serial_init(void);
void serial_putc(char c);
int serial_try_getc(void); /* -1 when no byte */
void puts_raw(const char *s);
void printf(const char *fmt, ...);
void vprintf(const char *fmt, va_list ap);

void set_handler(int vector, handler_fn fn);
void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);
void pic_remap(void);
void pic_unmask(int irq);
void pic_eoi(int irq);
void pit_set_hz(uint32_t hz);
uint8_t cmos_read(uint8_t reg);
void rt_exit(int code) __attribute__((noreturn));

uint32_t str_len(const char *s);
int str_eq(const char *a, const char *b);
int str_starts(const char *s, const char *prefix);
uint32_t parse_u32(const char *s);
/* The value of "key=" in the multiboot command line, or 0. */
const char *cmdline_arg(uint32_t mbi, const char *key);

#endif
