/* The runtime of reel's freestanding test guests: port I/O, the COM1 UART
 * (polled output, polled or interrupt-driven input), a small printf, the
 * guest's own flat GDT and a 256-gate IDT with C handlers, PIC/PIT/CMOS
 * helpers and exit through QEMU's isa-debug-exit port.
 *
 * A guest defines main(magic, mbi); rt_start has loaded the GDT and IDT and
 * initialised COM1 before calling it, and exits with main's return value
 * (isa-debug-exit turns code c into process status (c << 1) | 1). */
#ifndef REEL_GUEST_RT_H
#define REEL_GUEST_RT_H

#include <stdarg.h>
#include <stdint.h>

/* ---- port I/O and CPU inlines ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void io_wait(void) { outb(0x80, 0); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
/* Interrupt flag save/restore around short critical sections. */
static inline uint32_t irq_save(void) {
  uint32_t flags;
  __asm__ volatile("pushf; pop %0; cli" : "=r"(flags) : : "memory");
  return flags;
}
static inline void irq_restore(uint32_t flags) {
  if (flags & 0x200) sti();
}
/* sti;hlt is atomic: an interrupt that became pending before sti wakes hlt. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* ---- multiboot information (the fields the guests read) ---- */

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MBI_FLAG_MEM (1u << 0)
#define MBI_FLAG_CMDLINE (1u << 2)
#define MBI_FLAG_MMAP (1u << 6)
#define MBI_FLAG_LOADER_NAME (1u << 9)

struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower, mem_upper;
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr;
  uint32_t drives_length, drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
};

struct multiboot_mmap_entry {
  uint32_t size; /* of the rest of the entry: the next one is at +size+4 */
  uint32_t base_lo, base_hi;
  uint32_t length_lo, length_hi;
  uint32_t type;
} __attribute__((packed));

int main(uint32_t magic, const struct multiboot_info* mbi);

/* The multiboot command line, or "" when the loader passed none. */
const char* cmdline(void);
/* The value after "key" (e.g. "iterations=") in the command line, or 0. */
const char* cmdline_arg(const char* key);

/* ---- COM1 ---- */

void serial_init(void);
void serial_putc(char c);
/* Next received byte, -1 when none is waiting. */
int serial_try_getc(void);
/* Blocks until a byte arrives (halting between interrupts in IRQ mode). */
int serial_getc(void);
/* Switches input to interrupts: IRQ4 through the PIC (call pic_remap
 * first), received bytes buffered by the handler. */
void serial_enable_rx_irq(void);
void serial_puts(const char* s);

void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char* fmt, va_list ap);

/* ---- descriptor tables and interrupts ---- */

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10

struct rt_frame {
  uint32_t gs, fs, es, ds;
  uint32_t edi, esi, ebp, esp_at_pusha, ebx, edx, ecx, eax;
  uint32_t vector, error;
  uint32_t eip, cs, eflags;
};
typedef void (*rt_handler)(struct rt_frame* f);

/* Vectors 32..47 are IRQ 0..15 after pic_remap; the dispatcher sends the
 * EOI after their handler returns. */
#define IRQ_VECTOR(irq) (32 + (irq))
void set_handler(int vector, rt_handler fn);
/* GDT entry `index` (selector index * 8); 16 entries, 0-2 are the flat
 * null/code/data descriptors the runtime loads. */
void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);

/* ---- PC chipset ---- */

void pic_remap(void); /* IRQ 0-7 -> 0x20, 8-15 -> 0x28, all masked */
void pic_mask(int irq);
void pic_unmask(int irq);
void pic_eoi(int irq);
void pit_set_hz(uint32_t hz); /* channel 0, mode 2 */
uint8_t cmos_read(uint8_t reg);

void rt_exit(int code) __attribute__((noreturn));

/* ---- small library ---- */

uint32_t str_len(const char* s);
int str_eq(const char* a, const char* b);
int str_starts(const char* s, const char* prefix);
uint32_t parse_u32(const char* s);
void mem_set(void* dst, int value, uint32_t n);
/* 64-by-32-bit division without libgcc: returns the quotient, stores the
 * remainder. */
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t* remainder);

#endif
