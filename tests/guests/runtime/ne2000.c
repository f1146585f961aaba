/* NE2000 driver: a National DP8390 network controller behind the NE2000
 * "ASIC" (remote DMA data port at +0x10, reset port at +0x1f), on ISA or as
 * the RTL8029 on PCI.
 *
 * Card memory, as on a real 16-bit NE2000 (16 KiB at 0x4000; QEMU has more
 * and it is not used): pages 0x40-0x45 hold one transmit buffer (1536
 * bytes), pages 0x46-0x7f the receive ring. An 8-bit NE1000 (PROM bytes not
 * doubled) has 8 KiB at 0x2000: 0x20-0x25 transmit, 0x26-0x3f ring.
 *
 * Ring convention: BNRY is the page just before the next one to read, so
 * the ring is empty when BNRY + 1 (wrapped) == CURR, and the receiver never
 * writes into the page we are about to read.
 *
 * Concurrency: the interrupt handler (interrupts off) acknowledges ISR bits
 * and copies frames out of the ring into a software queue; the main flow
 * only transmits, with interrupts off around its remote DMA, so the two
 * never interleave register sequences. Every register sequence leaves the
 * command register on page 0. */
#include "net.h"

/* Register offsets from the I/O base; page 0 unless named R1_. */
enum {
  R_CR = 0x00,
  R_PSTART = 0x01,
  R_PSTOP = 0x02,
  R_BNRY = 0x03,
  R_TPSR = 0x04, /* write; reads TSR */
  R_TBCR0 = 0x05,
  R_TBCR1 = 0x06,
  R_ISR = 0x07,
  R_RSAR0 = 0x08,
  R_RSAR1 = 0x09,
  R_RBCR0 = 0x0a,
  R_RBCR1 = 0x0b,
  R_RCR = 0x0c,
  R_TCR = 0x0d, /* write; reads CNTR0 (frame alignment errors) */
  R_DCR = 0x0e, /* write; reads CNTR1 (CRC errors) */
  R_IMR = 0x0f, /* write; reads CNTR2 (missed frames) */
  R_CNTR0 = 0x0d,
  R_CNTR1 = 0x0e,
  R_CNTR2 = 0x0f,
  R1_PAR0 = 0x01,
  R1_CURR = 0x07,
  R1_MAR0 = 0x08,
  R_DATA = 0x10,
  R_RESET = 0x1f,
};

enum {
  CR_STP = 0x01,
  CR_STA = 0x02,
  CR_TXP = 0x04,
  CR_RREAD = 0x08,
  CR_RWRITE = 0x10,
  CR_NODMA = 0x20, /* "abort/complete remote DMA" */
  CR_PAGE1 = 0x40,
};

enum {
  ISR_PRX = 0x01,
  ISR_PTX = 0x02,
  ISR_RXE = 0x04,
  ISR_TXE = 0x08,
  ISR_OVW = 0x10,
  ISR_CNT = 0x20,
  ISR_RDC = 0x40,
  ISR_RST = 0x80,
  ISR_HANDLED = 0x3f, /* the ones the IMR enables; RDC is polled */
};

enum { DCR_WTS = 0x01, DCR_LS = 0x08, DCR_FT1 = 0x40 };
enum { RCR_AB = 0x04, RCR_AM = 0x08, RCR_MON = 0x20 };
enum { TCR_NORMAL = 0x00, TCR_LOOPBACK = 0x02 };
enum { RSR_PRX = 0x01 };

#define RXQ_SLOTS 16
#define RX_SLOT_BYTES 1520 /* a full frame plus the CRC some cards keep */
#define DMA_SPINS 200000u  /* ISR reads before a remote DMA is given up */
#define STOP_SPINS 20000u  /* ISR reads waiting for RST after a stop */
#define TX_TIMEOUT_MS 1000
#define STORM_LIMIT 20000u /* handler calls in a row with nothing to do */

struct rx_slot {
  uint16_t len;
  uint8_t data[RX_SLOT_BYTES];
};

struct ne2k {
  struct ne2k_info info;
  struct ne2k_stats stats;
  uint8_t next;    /* next ring page to read */
  uint8_t started; /* the ring is programmed and the card running */
  uint8_t rcr;
  volatile uint8_t tx_busy;
  volatile uint32_t rx_head, rx_tail; /* producer: handler; consumer: main */
  struct rx_slot rxq[RXQ_SLOTS];
};

static struct ne2k cards[NE2K_MAX];
static int card_count;
static uint32_t storm_run[16];

static inline uint8_t rd(const struct ne2k* c, int reg) { return inb((uint16_t)(c->info.io + reg)); }
static inline void wr(const struct ne2k* c, int reg, uint8_t v) { outb((uint16_t)(c->info.io + reg), v); }

int ne2k_count(void) { return card_count; }
const struct ne2k_info* ne2k_info(int nic) { return &cards[nic].info; }
const struct ne2k_stats* ne2k_stats(int nic) { return &cards[nic].stats; }

/* ---- remote DMA ---- */

static int dma_finish(struct ne2k* c) {
  for (uint32_t i = 0; i < DMA_SPINS; ++i) {
    if (rd(c, R_ISR) & ISR_RDC) {
      wr(c, R_ISR, ISR_RDC);
      return 0;
    }
  }
  ++c->stats.dma_timeouts;
  wr(c, R_CR, CR_NODMA | CR_STA);
  wr(c, R_ISR, ISR_RDC);
  return -1;
}

static void dma_setup(struct ne2k* c, uint16_t addr, uint16_t count, uint8_t command) {
  wr(c, R_CR, CR_NODMA | CR_STA);
  wr(c, R_RBCR0, (uint8_t)count);
  wr(c, R_RBCR1, (uint8_t)(count >> 8));
  wr(c, R_RSAR0, (uint8_t)addr);
  wr(c, R_RSAR1, (uint8_t)(addr >> 8));
  wr(c, R_CR, (uint8_t)(command | CR_STA));
}

/* Card memory [addr, addr+len) into dst. Word mode moves an even count
 * (the last odd byte is read and dropped); addr must then be even. */
static int dma_read(struct ne2k* c, uint16_t addr, void* dst, uint16_t len) {
  uint8_t* p = dst;
  uint16_t data = (uint16_t)(c->info.io + R_DATA);
  if (len == 0) return 0;
  if (c->info.word) {
    uint16_t count = (uint16_t)((len + 1u) & ~1u);
    dma_setup(c, addr, count, CR_RREAD);
    for (uint16_t i = 0; i < count; i += 2) {
      uint16_t w = inw(data);
      p[i] = (uint8_t)w;
      if (i + 1u < len) p[i + 1] = (uint8_t)(w >> 8);
    }
  } else {
    dma_setup(c, addr, len, CR_RREAD);
    for (uint16_t i = 0; i < len; ++i) p[i] = inb(data);
  }
  return dma_finish(c);
}

static int dma_write(struct ne2k* c, uint16_t addr, const void* src, uint16_t len) {
  const uint8_t* p = src;
  uint16_t data = (uint16_t)(c->info.io + R_DATA);
  if (len == 0) return 0;
  wr(c, R_ISR, ISR_RDC);
  if (c->info.word) {
    uint16_t count = (uint16_t)((len + 1u) & ~1u);
    dma_setup(c, addr, count, CR_RWRITE);
    for (uint16_t i = 0; i < count; i += 2) {
      uint16_t w = p[i];
      if (i + 1u < len) w |= (uint16_t)(p[i + 1] << 8);
      outw(data, w);
    }
  } else {
    dma_setup(c, addr, len, CR_RWRITE);
    for (uint16_t i = 0; i < len; ++i) outb(data, p[i]);
  }
  return dma_finish(c);
}

/* ---- probing ---- */

/* Pulses the reset port (a read starts the reset, the write ends it on
 * real cards) and waits for ISR.RST. */
static int card_reset(struct ne2k* c) {
  wr(c, R_RESET, rd(c, R_RESET));
  uint32_t start = clock_ticks();
  for (uint32_t spins = 0; spins < 4000000u; ++spins) {
    if (rd(c, R_ISR) & ISR_RST) {
      wr(c, R_ISR, 0xff);
      return 0;
    }
    if (clock_ticks() - start > 5) break;
  }
  return -1;
}

/* Reads the 32-byte station PROM by 8-bit remote DMA with the receiver in
 * monitor mode and the transmitter in loopback, then stops the card. A
 * 16-bit card returns every PROM byte twice. */
static int read_prom(struct ne2k* c, uint8_t* prom16) {
  uint8_t raw[32];
  wr(c, R_CR, CR_NODMA | CR_STP);
  wr(c, R_DCR, DCR_FT1 | DCR_LS);
  wr(c, R_RBCR0, 0);
  wr(c, R_RBCR1, 0);
  wr(c, R_IMR, 0);
  wr(c, R_ISR, 0xff);
  wr(c, R_RCR, RCR_MON);
  wr(c, R_TCR, TCR_LOOPBACK);
  c->info.word = 0;
  int ok = dma_read(c, 0, raw, sizeof raw) == 0;
  wr(c, R_CR, CR_NODMA | CR_STP);
  if (!ok) return -1;
  int doubled = 1;
  for (int i = 0; i < 16; ++i) {
    if (raw[2 * i] != raw[2 * i + 1]) doubled = 0;
  }
  for (int i = 0; i < 16; ++i) prom16[i] = doubled ? raw[2 * i] : raw[i];
  c->info.sixteen_bit = (uint8_t)doubled;
  return 0;
}

static void set_layout(struct ne2k* c) {
  if (c->info.sixteen_bit) {
    c->info.tx_page = 0x40;
    c->info.ring_start = 0x46;
    c->info.ring_stop = 0x80;
  } else {
    c->info.tx_page = 0x20;
    c->info.ring_start = 0x26;
    c->info.ring_stop = 0x40;
  }
}

static int add_card(struct ne2k* c, int require_signature) {
  uint8_t prom[16];
  if (card_reset(c) != 0) {
    printf("ne2000: no reset acknowledge at io %x\n", c->info.io);
    return 0;
  }
  if (read_prom(c, prom) != 0) {
    printf("ne2000: PROM read timed out at io %x\n", c->info.io);
    return 0;
  }
  if (require_signature && (prom[14] != 0x57 || prom[15] != 0x57)) {
    printf("ne2000: no NE2000 signature at io %x (PROM bytes 14-15: %02x %02x)\n", c->info.io, prom[14],
           prom[15]);
    return 0;
  }
  for (int i = 0; i < ETH_ALEN; ++i) c->info.mac[i] = prom[i];
  set_layout(c);
  c->info.word = c->info.sixteen_bit;
  ++card_count;
  return 1;
}

int ne2k_probe_pci(void) {
  if (!pci_present()) return 0;
  int found = 0;
  for (int dev = 0; dev < 32; ++dev) {
    int functions = 1;
    for (int fn = 0; fn < functions; ++fn) {
      uint32_t id = pci_read32(0, dev, fn, 0x00);
      if ((id & 0xffff) == 0xffff) continue;
      if (fn == 0 && (pci_read8(0, dev, 0, 0x0e) & 0x80)) functions = 8;
      if (id != 0x802910ecu || card_count >= NE2K_MAX) continue;
      struct ne2k* c = &cards[card_count];
      mem_set(c, 0, sizeof *c);
      c->info.bus = NE2K_PCI;
      c->info.pci_dev = (uint8_t)dev;
      c->info.pci_fn = (uint8_t)fn;
      uint32_t bar = pci_read32(0, dev, fn, 0x10);
      if (!(bar & 1)) {
        printf("ne2000: 00:%02x.%u BAR0 is not an I/O BAR (%x)\n", dev, fn, bar);
        continue;
      }
      if ((bar & 0xfffc) == 0) {
        /* No firmware assigned it: place the 256-byte window ourselves. */
        bar = 0xe000u + 0x100u * (uint32_t)card_count;
        pci_write32(0, dev, fn, 0x10, bar | 1);
        bar = pci_read32(0, dev, fn, 0x10);
      }
      c->info.io = (uint16_t)(bar & 0xfffc);
      uint16_t command = pci_read16(0, dev, fn, 0x04);
      if ((command & 0x5) != 0x5) pci_write16(0, dev, fn, 0x04, (uint16_t)(command | 0x5)); /* I/O, master */
      uint8_t line = pci_read8(0, dev, fn, 0x3c);
      c->info.irq = line > 0 && line < 16 ? line : -1;
      found += add_card(c, 0);
    }
  }
  return found;
}

int ne2k_probe_isa(uint16_t io, int irq) {
  if (card_count >= NE2K_MAX) return 0;
  struct ne2k* c = &cards[card_count];
  mem_set(c, 0, sizeof *c);
  c->info.bus = NE2K_ISA;
  c->info.io = io;
  c->info.irq = irq;
  uint8_t reg0 = rd(c, R_CR);
  if (reg0 == 0xff) {
    printf("ne2000: nothing at io %x\n", io);
    return 0;
  }
  /* An 8390 clears its tally counters when they are read: on page 1 offset
   * 0x0d is MAR5 (set it to ff); on page 0 it is CNTR0, which must read 0
   * the second time. Anything else is not an 8390; put its bytes back. */
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STP);
  uint8_t saved = rd(c, 0x0d);
  wr(c, 0x0d, 0xff);
  wr(c, R_CR, CR_NODMA | CR_STP);
  (void)rd(c, R_CNTR0);
  if (rd(c, R_CNTR0) != 0) {
    wr(c, R_CR, reg0);
    wr(c, 0x0d, saved);
    printf("ne2000: no 8390 at io %x\n", io);
    return 0;
  }
  return add_card(c, 1);
}

/* ---- receive ---- */

static uint8_t ring_wrap(const struct ne2k* c, uint32_t page) {
  uint32_t size = (uint32_t)(c->info.ring_stop - c->info.ring_start);
  while (page >= c->info.ring_stop) page -= size;
  return (uint8_t)page;
}

static uint8_t read_curr(struct ne2k* c) {
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STA);
  uint8_t curr = rd(c, R1_CURR);
  wr(c, R_CR, CR_NODMA | CR_STA);
  return curr;
}

static void set_bnry_before(struct ne2k* c, uint8_t next) {
  wr(c, R_BNRY, next == c->info.ring_start ? (uint8_t)(c->info.ring_stop - 1) : (uint8_t)(next - 1));
}

/* Programs an empty ring (the card must be stopped). */
static void program_ring(struct ne2k* c) {
  wr(c, R_PSTART, c->info.ring_start);
  wr(c, R_PSTOP, c->info.ring_stop);
  wr(c, R_BNRY, c->info.ring_start);
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STP);
  wr(c, R1_CURR, (uint8_t)(c->info.ring_start + 1));
  wr(c, R_CR, CR_NODMA | CR_STP);
  c->next = (uint8_t)(c->info.ring_start + 1);
}

static int drain_ring(struct ne2k* c);

/* The DP8390 datasheet's recovery, used for a ring overflow (keep the
 * frames: drain them in loopback) and for a ring that makes no sense
 * (start over empty): stop, let the transmitter settle, clear the remote
 * byte count, note whether a transmission was cut short, loopback, start,
 * deal with the ring, acknowledge, normal mode, resend. */
static void receiver_restart(struct ne2k* c, int keep_frames) {
  uint8_t cr = rd(c, R_CR);
  wr(c, R_CR, CR_NODMA | CR_STP);
  for (uint32_t i = 0; i < STOP_SPINS && !(rd(c, R_ISR) & ISR_RST); ++i) {
  }
  wr(c, R_RBCR0, 0);
  wr(c, R_RBCR1, 0);
  int resend = (cr & CR_TXP) && !(rd(c, R_ISR) & (ISR_PTX | ISR_TXE));
  wr(c, R_TCR, TCR_LOOPBACK);
  if (!keep_frames) program_ring(c);
  wr(c, R_CR, CR_NODMA | CR_STA);
  if (keep_frames && drain_ring(c) != 0) {
    /* The ring was also broken: drain_ring has started it over. */
  }
  wr(c, R_ISR, ISR_OVW);
  wr(c, R_TCR, TCR_NORMAL);
  if (resend) wr(c, R_CR, CR_NODMA | CR_STA | CR_TXP);
}

/* Copies every complete frame out of the ring. Returns -1 when a header
 * was invalid (the receiver has been reset empty), else 0. */
static int drain_ring(struct ne2k* c) {
  uint32_t pages = (uint32_t)(c->info.ring_stop - c->info.ring_start);
  for (uint32_t n = 0; n <= pages; ++n) {
    uint8_t curr = read_curr(c);
    if (c->next == curr) return 0;
    uint8_t hdr[4];
    uint16_t at = (uint16_t)(c->next << 8);
    if (dma_read(c, at, hdr, 4) != 0) return 0; /* counted; try again later */
    uint16_t count = (uint16_t)(hdr[2] | (hdr[3] << 8));
    uint8_t next = hdr[1];
    /* The next page follows the frame: the count includes this 4-byte
     * header; some receivers reserve 4 more bytes for a CRC they do not
     * store, hence two acceptable values. */
    uint8_t expect_a = ring_wrap(c, c->next + ((count + 255u) >> 8));
    uint8_t expect_b = ring_wrap(c, c->next + ((count + 4u + 255u) >> 8));
    int valid = (hdr[0] & RSR_PRX) && next >= c->info.ring_start && next < c->info.ring_stop &&
                count >= 4 + ETH_HLEN && count <= 4 + RX_SLOT_BYTES && (next == expect_a || next == expect_b);
    if (!valid || curr < c->info.ring_start || curr >= c->info.ring_stop) {
      ++c->stats.rx_bad_headers;
      printf("ne2000: bad receive header at page %x (status %02x next %02x count %u, curr %02x); "
             "receiver reset\n",
             c->next, hdr[0], next, count, curr);
      receiver_restart(c, 0);
      return -1;
    }
    uint16_t len = (uint16_t)(count - 4);
    uint32_t head = c->rx_head;
    if (head - c->rx_tail >= RXQ_SLOTS) {
      ++c->stats.rx_dropped;
    } else {
      struct rx_slot* slot = &c->rxq[head % RXQ_SLOTS];
      uint16_t from = (uint16_t)(at + 4);
      uint16_t ring_end = (uint16_t)(c->info.ring_stop << 8);
      uint16_t first = (uint16_t)(ring_end - from) < len ? (uint16_t)(ring_end - from) : len;
      int ok = dma_read(c, from, slot->data, first) == 0;
      if (ok && first < len)
        ok = dma_read(c, (uint16_t)(c->info.ring_start << 8), slot->data + first, (uint16_t)(len - first)) == 0;
      if (ok) {
        slot->len = len;
        c->rx_head = head + 1;
        ++c->stats.rx_frames;
      } else {
        ++c->stats.rx_dropped;
      }
    }
    c->next = next;
    set_bnry_before(c, next);
  }
  return 0;
}

/* ---- interrupts ---- */

/* Handles whatever the card reports; interrupts must be off. Loops until
 * the enabled ISR bits read zero so an edge-triggered line drops (and a new
 * event raises a fresh edge). Returns whether anything was pending. */
static int service(struct ne2k* c) {
  int any = 0;
  for (int round = 0; round < 64; ++round) {
    uint8_t isr = rd(c, R_ISR) & ISR_HANDLED;
    if (!isr) break;
    any = 1;
    if (isr & ISR_OVW) {
      ++c->stats.overflows;
      receiver_restart(c, 1);
      continue;
    }
    if (isr & (ISR_PRX | ISR_RXE)) {
      if (isr & ISR_RXE) ++c->stats.rx_errors;
      wr(c, R_ISR, isr & (ISR_PRX | ISR_RXE));
      drain_ring(c);
    }
    if (isr & (ISR_PTX | ISR_TXE)) {
      if (isr & ISR_TXE) ++c->stats.tx_errors;
      wr(c, R_ISR, isr & (ISR_PTX | ISR_TXE));
      c->tx_busy = 0;
    }
    if (isr & ISR_CNT) {
      (void)rd(c, R_CNTR0);
      (void)rd(c, R_CNTR1);
      (void)rd(c, R_CNTR2);
      wr(c, R_ISR, ISR_CNT);
    }
  }
  return any;
}

/* One handler for every NE2000 IRQ: PCI cards may share a line. The
 * dispatcher sends the EOI after this returns, i.e. after the card has
 * dropped its (level-triggered) request. */
static void on_irq(struct rt_frame* f) {
  int irq = (int)(f->vector - IRQ_VECTOR(0));
  int any = 0;
  for (int i = 0; i < card_count; ++i) {
    struct ne2k* c = &cards[i];
    if (c->info.irq != irq || c->info.polled || !c->started) continue;
    ++c->stats.irqs;
    any |= service(c);
  }
  if (any) {
    storm_run[irq] = 0;
  } else if (++storm_run[irq] >= STORM_LIMIT) {
    /* A line that stays asserted with nothing to do would starve the
     * guest: mask it and poll those cards instead. */
    pic_mask(irq);
    printf("ne2000: irq %d keeps firing with nothing pending; masked, polling instead\n", irq);
    for (int i = 0; i < card_count; ++i) {
      if (cards[i].info.irq == irq) cards[i].info.polled = 1;
    }
  }
}

/* ---- start, send, receive ---- */

void ne2k_start(int nic, unsigned flags) {
  struct ne2k* c = &cards[nic];
  if (c->info.irq < 0) flags |= NE2K_POLLED;
  c->info.polled = (flags & NE2K_POLLED) ? 1 : 0;
  c->info.word = (c->info.sixteen_bit && !(flags & NE2K_BYTE_MODE)) ? 1 : 0;
  c->rcr = (uint8_t)(RCR_AB | ((flags & NE2K_MULTICAST) ? RCR_AM : 0));
  uint32_t saved = irq_save();
  wr(c, R_CR, CR_NODMA | CR_STP);
  wr(c, R_DCR, (uint8_t)(DCR_FT1 | DCR_LS | (c->info.word ? DCR_WTS : 0)));
  wr(c, R_RBCR0, 0);
  wr(c, R_RBCR1, 0);
  wr(c, R_RCR, RCR_MON);
  wr(c, R_TCR, TCR_LOOPBACK);
  wr(c, R_TPSR, c->info.tx_page);
  program_ring(c);
  wr(c, R_ISR, 0xff);
  wr(c, R_IMR, c->info.polled ? 0 : ISR_HANDLED);
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STP);
  for (int i = 0; i < ETH_ALEN; ++i) wr(c, R1_PAR0 + i, c->info.mac[i]);
  for (int i = 0; i < 8; ++i) wr(c, R1_MAR0 + i, (flags & NE2K_MULTICAST) ? 0xff : 0x00);
  wr(c, R_CR, CR_NODMA | CR_STA);
  wr(c, R_TCR, TCR_NORMAL);
  wr(c, R_RCR, c->rcr);
  c->tx_busy = 0;
  c->rx_head = c->rx_tail = 0;
  c->started = 1;
  if (!c->info.polled) {
    set_handler(IRQ_VECTOR(c->info.irq), on_irq);
    pic_unmask(c->info.irq);
  }
  irq_restore(saved);
}

/* Waits (bounded) for the transmit buffer to be free. */
static int wait_tx_idle(struct ne2k* c) {
  uint32_t deadline = clock_ticks() + clock_ms(TX_TIMEOUT_MS);
  for (;;) {
    cli();
    if (c->info.polled) service(c);
    if (!c->tx_busy) {
      sti();
      return 0;
    }
    if (clock_passed(deadline)) {
      c->tx_busy = 0;
      sti();
      if (c->stats.tx_timeouts++ == 0) printf("ne2000: transmit did not complete within %u ms\n", TX_TIMEOUT_MS);
      return -1;
    }
    sti_hlt();
  }
}

int ne2k_send(int nic, const void* frame, uint32_t len) {
  if (nic < 0 || nic >= card_count) return -1;
  struct ne2k* c = &cards[nic];
  if (!c->started || len < ETH_HLEN || len > ETH_FRAME_MAX) return -1;
  if (wait_tx_idle(c) != 0) return -1;
  uint8_t padded[ETH_ZLEN];
  if (len < ETH_ZLEN) {
    mem_set(padded, 0, sizeof padded);
    memcpy(padded, frame, len);
    frame = padded;
    len = ETH_ZLEN;
  }
  uint32_t saved = irq_save();
  int ok = dma_write(c, (uint16_t)(c->info.tx_page << 8), frame, (uint16_t)len) == 0;
  if (ok) {
    wr(c, R_TPSR, c->info.tx_page);
    wr(c, R_TBCR0, (uint8_t)len);
    wr(c, R_TBCR1, (uint8_t)(len >> 8));
    c->tx_busy = 1;
    wr(c, R_CR, CR_NODMA | CR_STA | CR_TXP);
    ++c->stats.tx_frames;
  }
  irq_restore(saved);
  return ok ? 0 : -1;
}

void ne2k_flush(void) {
  for (int i = 0; i < card_count; ++i) {
    if (cards[i].started) wait_tx_idle(&cards[i]);
  }
}

uint32_t ne2k_recv(int nic, void* buf, uint32_t cap) {
  struct ne2k* c = &cards[nic];
  uint32_t tail = c->rx_tail;
  if (tail == c->rx_head) return 0;
  /* Compiler barriers: the slot is read only after the handler published
   * it, and handed back only after it has been copied. */
  __asm__ volatile("" : : : "memory");
  const struct rx_slot* slot = &c->rxq[tail % RXQ_SLOTS];
  uint32_t len = slot->len < cap ? slot->len : cap;
  memcpy(buf, slot->data, len);
  __asm__ volatile("" : : : "memory");
  c->rx_tail = tail + 1; /* the slot is the handler's again */
  return len;
}

int ne2k_rx_pending(void) {
  for (int i = 0; i < card_count; ++i) {
    if (cards[i].rx_head != cards[i].rx_tail) return 1;
  }
  return 0;
}

void ne2k_idle(void) {
  cli();
  for (int i = 0; i < card_count; ++i) {
    if (cards[i].started && cards[i].info.polled) service(&cards[i]);
  }
  if (!ne2k_rx_pending())
    sti_hlt(); /* atomic: an interrupt that arrived after cli wakes it */
  sti();
}

/* ---- self-test ---- */

int ne2k_selftest(int nic) {
  struct ne2k* c = &cards[nic];
  static uint8_t pattern[1536], back[1536];
  int failures = 0;
  for (uint32_t i = 0; i < sizeof pattern; ++i) pattern[i] = (uint8_t)(i * 7 + (i >> 8) + 0x5a);
  uint16_t base = (uint16_t)(c->info.tx_page << 8);
  uint32_t saved = irq_save();
  /* A full buffer, then an odd length (word mode rounds it up). */
  static const uint16_t lengths[2] = {1536, 61};
  for (int t = 0; t < 2; ++t) {
    uint16_t len = lengths[t];
    mem_set(back, 0, sizeof back);
    if (dma_write(c, base, pattern + t, len) != 0 || dma_read(c, base, back, len) != 0) {
      printf("ne2000: self-test: remote DMA of %u bytes did not complete\n", len);
      ++failures;
      continue;
    }
    for (uint16_t i = 0; i < len; ++i) {
      if (back[i] != pattern[t + i]) {
        printf("ne2000: self-test: byte %u of %u reads %02x, wrote %02x\n", i, len, back[i], pattern[t + i]);
        ++failures;
        break;
      }
    }
  }
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STA);
  for (int i = 0; i < ETH_ALEN; ++i) {
    uint8_t v = rd(c, R1_PAR0 + i);
    if (v != c->info.mac[i]) {
      printf("ne2000: self-test: PAR%d reads %02x, expected %02x\n", i, v, c->info.mac[i]);
      ++failures;
    }
  }
  uint8_t curr = rd(c, R1_CURR);
  wr(c, R_CR, CR_NODMA | CR_STA);
  if (curr < c->info.ring_start || curr >= c->info.ring_stop) {
    printf("ne2000: self-test: CURR %02x outside the ring %02x-%02x\n", curr, c->info.ring_start,
           c->info.ring_stop);
    ++failures;
  }
  irq_restore(saved);
  return failures ? -1 : 0;
}

/* Plays the receiver's part by hand (no frame may arrive meanwhile): a
 * frame written into the ring so that it wraps from the last page to the
 * first, CURR moved past it, then a header whose next page lies outside the
 * ring. The first must come out of the queue intact with BNRY trailing its
 * next page; the second must reset the receiver to an empty ring. */
int ne2k_ring_selftest(int nic) {
  struct ne2k* c = &cards[nic];
  static uint8_t image[4 + 600], back[RX_SLOT_BYTES];
  const uint16_t len = 600, count = 4 + 600;
  int failures = 0;
  uint32_t saved = irq_save();
  uint8_t at = (uint8_t)(c->info.ring_stop - 1);
  uint8_t next = ring_wrap(c, at + ((count + 255u) >> 8));
  image[0] = RSR_PRX;
  image[1] = next;
  image[2] = (uint8_t)count;
  image[3] = (uint8_t)(count >> 8);
  for (int i = 0; i < ETH_ALEN; ++i) image[4 + i] = c->info.mac[i];
  for (int i = 0; i < ETH_ALEN; ++i) image[4 + ETH_ALEN + i] = (uint8_t)(i == 0 ? 0x02 : i);
  image[4 + 12] = 0x88;
  image[4 + 13] = 0xb5;
  for (uint16_t i = ETH_HLEN; i < len; ++i) image[4 + i] = (uint8_t)(i ^ (i >> 3));
  /* An empty ring positioned at the last page. */
  wr(c, R_BNRY, (uint8_t)(at - 1));
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STA);
  wr(c, R1_CURR, at);
  wr(c, R_CR, CR_NODMA | CR_STA);
  c->next = at;
  uint16_t first = 256;
  int ok = dma_write(c, (uint16_t)(at << 8), image, first) == 0 &&
           dma_write(c, (uint16_t)(c->info.ring_start << 8), image + first, (uint16_t)(count - first)) == 0;
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STA);
  wr(c, R1_CURR, next);
  wr(c, R_CR, CR_NODMA | CR_STA);
  if (ok) drain_ring(c);
  uint32_t got = ne2k_recv(nic, back, sizeof back);
  if (!ok || got != len || memcmp(back, image + 4, len) != 0) {
    printf("ne2000: ring self-test: wrapped frame came out as %u bytes (want %u)%s\n", got, len,
           got == len ? ", different" : "");
    ++failures;
  }
  uint8_t bnry = rd(c, R_BNRY);
  if (c->next != next || bnry != (uint8_t)(next - 1)) {
    printf("ne2000: ring self-test: next page %02x BNRY %02x, want %02x %02x\n", c->next, bnry, next,
           (uint8_t)(next - 1));
    ++failures;
  }
  /* A header pointing outside the ring. */
  static const uint8_t broken[4] = {RSR_PRX, 0x00, 64, 0};
  uint32_t bad_before = c->stats.rx_bad_headers;
  ok = dma_write(c, (uint16_t)(c->next << 8), broken, sizeof broken) == 0;
  wr(c, R_CR, CR_NODMA | CR_PAGE1 | CR_STA);
  wr(c, R1_CURR, (uint8_t)(c->next + 1));
  wr(c, R_CR, CR_NODMA | CR_STA);
  if (ok) drain_ring(c);
  uint8_t curr = read_curr(c);
  if (!ok || c->stats.rx_bad_headers != bad_before + 1 || curr != c->info.ring_start + 1 ||
      c->next != c->info.ring_start + 1 || ne2k_rx_pending()) {
    printf("ne2000: ring self-test: broken header not handled (bad headers %u, CURR %02x, next %02x)\n",
           c->stats.rx_bad_headers - bad_before, curr, c->next);
    ++failures;
  }
  irq_restore(saved);
  return failures ? -1 : 0;
}
