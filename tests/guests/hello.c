/* hello: the multiboot hand-off as the guest sees it. */
#include "rt.h"

int main(uint32_t magic, const struct multiboot_info* mbi) {
  printf("Hello from reel guest\n");
  printf("multiboot magic: %08x\n", magic);
  if (magic != MULTIBOOT_BOOTLOADER_MAGIC) return 1;
  printf("flags: %x\n", mbi->flags);
  if (mbi->flags & MBI_FLAG_MEM)
    printf("mem_lower: %u KiB, mem_upper: %u KiB\n", mbi->mem_lower, mbi->mem_upper);
  if (mbi->flags & MBI_FLAG_CMDLINE) {
    /* The loader passes "<kernel path> <append>"; the path differs between
     * hosts, so only the arguments are printed. */
    const char* args = cmdline();
    while (*args && *args != ' ') ++args;
    if (*args == ' ') ++args;
    printf("arguments: '%s'\n", args);
  }
  if (mbi->flags & MBI_FLAG_MMAP) {
    uint32_t addr = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
    while (addr < end) {
      const struct multiboot_mmap_entry* e = (const struct multiboot_mmap_entry*)addr;
      printf("mmap: base %08x%08x length %08x%08x type %u\n", e->base_hi, e->base_lo, e->length_hi,
             e->length_lo, e->type);
      addr += e->size + 4;
    }
  }
  if (mbi->flags & MBI_FLAG_LOADER_NAME) printf("boot loader: %s\n", (const char*)mbi->boot_loader_name);
  printf("bye\n");
  return 0;
}
