/* PCI configuration mechanism #1: the address goes to 0xcf8 (enable bit,
 * bus, device, function, dword-aligned register), the data comes through
 * 0xcfc..0xcff. */
#include "net.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

static uint32_t address(int bus, int dev, int fn, int reg) {
  return 0x80000000u | ((uint32_t)(bus & 0xff) << 16) | ((uint32_t)(dev & 0x1f) << 11) |
         ((uint32_t)(fn & 7) << 8) | ((uint32_t)reg & 0xfc);
}

int pci_present(void) {
  /* A 32-bit write to 0xcf8 reaches the address register of a host bridge
   * (only byte accesses reach 0xcf9); on a machine without one the port
   * floats and reads back something else. */
  uint32_t saved = inl(PCI_ADDR);
  outl(PCI_ADDR, 0x80000000u);
  uint32_t back = inl(PCI_ADDR);
  outl(PCI_ADDR, saved);
  return back == 0x80000000u;
}

uint32_t pci_read32(int bus, int dev, int fn, int reg) {
  outl(PCI_ADDR, address(bus, dev, fn, reg));
  return inl(PCI_DATA);
}

uint16_t pci_read16(int bus, int dev, int fn, int reg) {
  outl(PCI_ADDR, address(bus, dev, fn, reg));
  return inw((uint16_t)(PCI_DATA + (reg & 2)));
}

uint8_t pci_read8(int bus, int dev, int fn, int reg) {
  outl(PCI_ADDR, address(bus, dev, fn, reg));
  return inb((uint16_t)(PCI_DATA + (reg & 3)));
}

void pci_write32(int bus, int dev, int fn, int reg, uint32_t v) {
  outl(PCI_ADDR, address(bus, dev, fn, reg));
  outl(PCI_DATA, v);
}

void pci_write16(int bus, int dev, int fn, int reg, uint16_t v) {
  outl(PCI_ADDR, address(bus, dev, fn, reg));
  outw((uint16_t)(PCI_DATA + (reg & 2)), v);
}
