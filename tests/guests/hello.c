/* hello: the multiboot hand-off as the guest sees it. */
#include "rt.h"

int main(uint32_t magic, uint32_t mbi) {
  const uint32_t *info = (const uint32_t *)mbi;
  printf("Hello from reel guest\n");
  printf("multiboot magic: %08x\n", magic);
  printf("flags: %x\n", info[0]);
  if (info[0] & 1) printf("mem_lower: %u KiB, mem_upper: %u KiB\n", info[1], info[2]);
  if (info[0] & 4) {
    /* The first word is the kernel's path, which differs between hosts. */
    const char *cmd = (const char *)info[4];
    while (*cmd && *cmd != ' ') ++cmd;
    if (*cmd == ' ') ++cmd;
    printf("arguments: '%s'\n", cmd);
  }
  if (info[0] & (1u << 6)) {
    uint32_t addr = info[12], end = info[12] + info[11];
    while (addr < end) {
      const uint32_t *e = (const uint32_t *)addr;
      printf("mmap: base %08x%08x length %08x%08x type %u\n", e[2], e[1], e[4], e[3], e[5]);
      addr += e[0] + 4;
    }
  }
  if (info[0] & (1u << 9)) printf("boot loader: %s\n", (const char *)info[16]);
  printf("bye\n");
  return 0;
}
