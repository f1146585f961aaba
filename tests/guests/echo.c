/* echo: interrupt-driven serial input, one line at a time, until "quit". */
#include "rt.h"

static volatile char ring[256];
static volatile uint32_t head, tail;

static void on_serial(struct frame *f) {
  (void)f;
  int c;
  while ((c = serial_try_getc()) >= 0) {
    ring[head % sizeof ring] = (char)c;
    ++head;
  }
  pic_eoi(4);
}

int main(uint32_t magic, uint32_t mbi) {
  (void)magic;
  (void)mbi;
  pic_remap();
  set_handler(32 + 4, on_serial);
  outb(0x3f8 + 1, 0x01); /* receive-data interrupt */
  pic_unmask(4);
  printf("echo: type lines, 'quit' ends\n");
  char line[128];
  uint32_t len = 0;
  uint32_t lines = 0;
  sti();
  for (;;) {
    cli();
    if (tail == head) {
      /* sti; hlt is atomic: no interrupt is lost between the check and hlt. */
      __asm__ volatile("sti; hlt");
      continue;
    }
    char c = ring[tail % sizeof ring];
    ++tail;
    sti();
    if (c == '\r') continue;
    if (c != '\n') {
      if (len < sizeof line - 1) line[len++] = c;
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
