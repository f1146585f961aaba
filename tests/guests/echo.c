/* echo: interrupt-driven serial input (IER receive-data, IRQ4), echoed one
 * line at a time until "quit". */
#include "rt.h"

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  pic_remap();
  serial_enable_rx_irq();
  sti();
  printf("echo: type lines, 'quit' ends\n");
  char line[128];
  uint32_t len = 0, lines = 0;
  for (;;) {
    int c = serial_getc();
    if (c == '\r') continue;
    if (c != '\n') {
      if (len < sizeof line - 1) line[len++] = (char)c;
      continue;
    }
    line[len] = 0;
    len = 0;
    ++lines;
    printf("echo: %s\n", line);
    if (str_eq(line, "quit")) break;
  }
  printf("echo: %u lines\n", lines);
  return 0;
}
