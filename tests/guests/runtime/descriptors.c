/* The guest's own flat GDT (the loader's is not guaranteed to stay put)
 * and an IDT of 256 interrupt gates leading to the stubs in isr.S. */
#include "rt.h"

static uint64_t gdt[16];
static uint64_t idt[256];
static rt_handler handlers[256];
extern const uint8_t isr_stubs[]; /* 256 stubs, 16 bytes apart */

struct __attribute__((packed)) table_register {
  uint16_t limit;
  uint32_t base;
};

void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
  gdt[index] = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)access << 40) |
               ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)(flags & 0xf) << 52) |
               ((uint64_t)(base >> 24) << 56);
}

static void idt_set(int vector, uint32_t offset, uint8_t type_attr) {
  idt[vector] = (offset & 0xffff) | ((uint64_t)KERNEL_CS << 16) | ((uint64_t)type_attr << 40) |
                ((uint64_t)(offset >> 16) << 48);
}

void rt_load_descriptor_tables(void) {
  gdt_set(0, 0, 0, 0, 0);
  gdt_set(1, 0, 0xfffff, 0x9a, 0xc); /* 0x08: code, 4 GiB, 32-bit */
  gdt_set(2, 0, 0xfffff, 0x92, 0xc); /* 0x10: data, 4 GiB, 32-bit */
  struct table_register gdtr = {sizeof gdt - 1, (uint32_t)gdt};
  __asm__ volatile(
      "lgdt %0\n"
      "ljmp %1, $1f\n"
      "1: mov %2, %%ax\n"
      "mov %%ax, %%ds\n"
      "mov %%ax, %%es\n"
      "mov %%ax, %%ss\n"
      "mov %%ax, %%fs\n"
      "mov %%ax, %%gs\n"
      :
      : "m"(gdtr), "i"(KERNEL_CS), "i"(KERNEL_DS)
      : "eax", "memory");
  /* 0x8e: present, DPL 0, 32-bit interrupt gate (IF cleared on entry). */
  for (int v = 0; v < 256; ++v) idt_set(v, (uint32_t)(isr_stubs + 16 * v), 0x8e);
  struct table_register idtr = {sizeof idt - 1, (uint32_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

void set_handler(int vector, rt_handler fn) { handlers[vector & 0xff] = fn; }

void rt_dispatch(struct rt_frame* f) {
  uint32_t v = f->vector & 0xff;
  rt_handler h = handlers[v];
  if (h) {
    h(f);
  } else if (v >= IRQ_VECTOR(0) && v <= IRQ_VECTOR(15)) {
    /* An IRQ nobody asked for (e.g. spurious IRQ 7): acknowledge, go on. */
  } else {
    printf("unhandled vector %u error %x at eip %x\n", v, f->error, f->eip);
    rt_exit(0x7f);
  }
  if (v >= IRQ_VECTOR(0) && v <= IRQ_VECTOR(15)) pic_eoi((int)(v - IRQ_VECTOR(0)));
}
