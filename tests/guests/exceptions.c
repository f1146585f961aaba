/* exceptions: provoke CPU exceptions, handle each in the guest, resume
 * after the faulting instruction. Each line shows the vector, the error
 * code and where EIP pointed relative to the faulting instruction (+0 for
 * faults, past it for traps like INT3 and INTO). */
#include "rt.h"

static volatile uint32_t fault_start, fault_resume, handled;

static void on_exception(struct rt_frame* f) {
  printf("vector %u error %x eip +%u\n", f->vector, f->error, f->eip - fault_start);
  ++handled;
  f->eip = fault_resume;
}

/* Runs `setup`, then the instruction `insn` between labels 1 and 2: the
 * handler reports EIP relative to 1 and resumes at 2. */
#define PROVOKE(setup, insn, ...)                                            \
  __asm__ volatile(setup "\n movl $1f, %0\n movl $2f, %1\n1: " insn "\n2:\n" \
                   : "=m"(fault_start), "=m"(fault_resume)                   \
                   : __VA_ARGS__)

static int32_t bounds[2] = {0, 10};

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  for (int v = 0; v < 32; ++v) set_handler(v, on_exception);
  gdt_set(5, 0, 0xfffff, 0x12, 0xc); /* 0x28: writable data, present bit clear */
  gdt_set(6, 0, 0xfffff, 0x12, 0xc); /* 0x30: the same, to load into SS */

  printf("#DE: ");
  PROVOKE("xor %%ecx, %%ecx; mov $1, %%eax; xor %%edx, %%edx", "divl %%ecx", "i"(0)
          : "eax", "ecx", "edx", "memory");
  printf("#UD: ");
  PROVOKE("", "ud2", "i"(0) : "memory");
  printf("#GP (selector beyond the GDT): ");
  PROVOKE("mov $0x7f8, %%ax", "mov %%ax, %%ds", "i"(0) : "eax", "memory");
  printf("#GP (far jump to the null selector): ");
  PROVOKE("", "ljmp $0, $0", "i"(0) : "memory");
  printf("#BP: ");
  PROVOKE("", "int3", "i"(0) : "memory");
  printf("#OF: ");
  PROVOKE("mov $0x7fffffff, %%eax; add $1, %%eax", "into", "i"(0) : "eax", "memory", "cc");
  printf("#BR: ");
  PROVOKE("mov $20, %%eax", "bound %%eax, (%%ebx)", "b"(bounds) : "eax", "memory");
  printf("#NP: ");
  PROVOKE("mov $0x28, %%ax", "mov %%ax, %%ds", "i"(0) : "eax", "memory");
  printf("#SS: ");
  PROVOKE("mov $0x30, %%ax", "mov %%ax, %%ss", "i"(0) : "eax", "memory");

  printf("exceptions: all %u handled\n", handled);
  return handled == 9 ? 0 : 1;
}
