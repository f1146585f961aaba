/* netinfo: finds the NE2000 cards (nic=auto|pci|isa, io=, irq=, poll=,
 * width= as for the network guests), starts each one and checks it without
 * a peer: remote DMA round trip through the transmit buffer, PAR and CURR
 * read back, the receive path on a hand-written ring (a wrapped frame, a
 * broken header), and one broadcast frame sent whose completion must
 * arrive (by interrupt unless polled). Nothing may arrive on the link
 * meanwhile: give the cards no peer. */
#include "net.h"

static const char* arg_or(const char* key, const char* fallback) {
  const char* v = cmdline_arg(key);
  return v ? v : fallback;
}

int main(uint32_t magic, const struct multiboot_info* mbi) {
  (void)magic;
  (void)mbi;
  pic_remap();
  clock_start();
  sti();
  const char* mode = arg_or("nic=", "auto");
  unsigned flags = 0;
  if (str_starts(arg_or("poll=", "0"), "1")) flags |= NE2K_POLLED;
  if (str_starts(arg_or("width=", "16"), "8")) flags |= NE2K_BYTE_MODE;
  const char* irq_arg = arg_or("irq=", "9");
  int irq = str_starts(irq_arg, "none") ? -1 : (int)parse_num(irq_arg, 0);
  if (!str_starts(mode, "isa")) ne2k_probe_pci();
  if (str_starts(mode, "isa") || (str_starts(mode, "auto") && ne2k_count() == 0))
    ne2k_probe_isa((uint16_t)parse_num(arg_or("io=", "0x300"), 0), irq);
  printf("netinfo: %d card(s)\n", ne2k_count());
  if (ne2k_count() == 0) return 1;
  int failures = 0;
  for (int i = 0; i < ne2k_count(); ++i) {
    ne2k_start(i, flags);
    const struct ne2k_info* info = ne2k_info(i);
    if (info->bus == NE2K_PCI)
      printf("nic%d: ne2k_pci 00:%02x.%u io %x", i, info->pci_dev, info->pci_fn, info->io);
    else
      printf("nic%d: ne2k_isa io %x", i, info->io);
    if (info->irq >= 0) printf(" irq %d", info->irq);
    printf("%s\n", info->polled ? " polled" : "");
    printf("nic%d: mac %s, %s card, %s transfers, tx page %x, ring %x-%x\n", i, mac_str(info->mac),
           info->sixteen_bit ? "16-bit" : "8-bit", info->word ? "word" : "byte", info->tx_page, info->ring_start,
           info->ring_stop);
    if (ne2k_selftest(i) == 0) {
      printf("nic%d: self-test ok\n", i);
    } else {
      printf("nic%d: self-test FAILED\n", i);
      ++failures;
    }
    if (ne2k_ring_selftest(i) == 0) {
      printf("nic%d: ring self-test ok\n", i);
    } else {
      printf("nic%d: ring self-test FAILED\n", i);
      ++failures;
    }
    uint8_t frame[ETH_ZLEN];
    mem_set(frame, 0, sizeof frame);
    mem_set(frame, 0xff, ETH_ALEN);
    memcpy(frame + ETH_ALEN, info->mac, ETH_ALEN);
    frame[12] = 0x88; /* local experimental ethertype 0x88b5 */
    frame[13] = 0xb5;
    for (uint32_t b = ETH_HLEN; b < sizeof frame; ++b) frame[b] = (uint8_t)b;
    int sent = ne2k_send(i, frame, 40) == 0; /* shorter than the minimum: padded */
    ne2k_flush();
    const struct ne2k_stats* st = ne2k_stats(i);
    if (sent && st->tx_timeouts == 0 && st->tx_errors == 0 && (info->polled || st->irqs > 0)) {
      printf("nic%d: transmit ok%s\n", i, info->polled ? "" : ", completion interrupt seen");
    } else {
      printf("nic%d: transmit FAILED (sent %d, timeouts %u, errors %u, irqs %u)\n", i, sent, st->tx_timeouts,
             st->tx_errors, st->irqs);
      ++failures;
    }
  }
  printf("netinfo: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
