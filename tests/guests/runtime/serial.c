/* COM1: 115200 8N1, FIFOs off; output polls LSR.THRE, input is polled
 * until serial_enable_rx_irq() switches it to IRQ4 and a ring buffer. */
#include "rt.h"

#define COM1 0x3f8
#define RBR 0 /* receive buffer / transmit holding (DLAB=0) */
#define IER 1
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

static volatile uint8_t rx_ring[256];
static volatile uint32_t rx_head, rx_tail; /* head: written by the IRQ handler */
static int rx_irq_mode;

static void rx_push(uint8_t c) {
  /* When full, the newest byte is dropped; the guests read lines well
   * below the ring's size. */
  if (rx_head - rx_tail < sizeof rx_ring) {
    rx_ring[rx_head % sizeof rx_ring] = c;
    ++rx_head;
  }
}

static void drain_rbr(void) {
  while (inb(COM1 + LSR) & LSR_DR) rx_push(inb(COM1 + RBR));
}

void serial_init(void) {
  outb(COM1 + IER, 0x00);
  outb(COM1 + LCR, 0x80); /* DLAB: divisor latch */
  outb(COM1 + 0, 0x01);   /* divisor 1: 115200 baud */
  outb(COM1 + 1, 0x00);
  outb(COM1 + LCR, 0x03); /* 8 data bits, no parity, 1 stop bit */
  /* The FIFOs stay off. Turning them on resets them (QEMU does so even
   * without the reset bits), and under QEMU input from stdin can arrive at
   * any moment, so a byte landing between a drain and the enable would be
   * lost. Without FIFOs the UART holds one byte and the host side (QEMU's
   * chardev, reel's pacing) waits until the guest has read it. */
  outb(COM1 + FCR, 0x00);
  outb(COM1 + MCR, 0x0b); /* DTR, RTS, OUT2 (gates the IRQ line) */
}

void serial_putc(char c) {
  while (!(inb(COM1 + LSR) & LSR_THRE)) {
  }
  outb(COM1 + RBR, (uint8_t)c);
}

void serial_puts(const char* s) {
  for (; *s; ++s) {
    if (*s == '\n') serial_putc('\r');
    serial_putc(*s);
  }
}

static void on_serial_irq(struct rt_frame* f) {
  (void)f;
  drain_rbr();
}

void serial_enable_rx_irq(void) {
  set_handler(IRQ_VECTOR(4), on_serial_irq);
  rx_irq_mode = 1;
  outb(COM1 + IER, 0x01); /* received data available */
  pic_unmask(4);
  /* Bytes that arrived before the enable raised no interrupt. */
  uint32_t flags = irq_save();
  drain_rbr();
  irq_restore(flags);
}

int serial_try_getc(void) {
  int c = -1;
  uint32_t flags = irq_save();
  if (!rx_irq_mode) drain_rbr();
  if (rx_tail != rx_head) {
    c = rx_ring[rx_tail % sizeof rx_ring];
    ++rx_tail;
  }
  irq_restore(flags);
  return c;
}

int serial_getc(void) {
  for (;;) {
    int c = serial_try_getc();
    if (c >= 0) return c;
    if (rx_irq_mode) {
      /* Sleep until the next interrupt unless a byte slipped in. */
      cli();
      if (rx_tail == rx_head) {
        sti_hlt();
      } else {
        sti();
      }
    }
  }
}
