#pragma once

#include "core/types.h"

namespace reel {

class PciBus;
class Piix3IsaBridge;

// What SeaBIOS leaves behind for a -kernel boot without firmware: I/O BARs
// assigned upward from 0xC000, memory BARs downward from 0xFEC00000 (so the
// first lands near 0xFEBF0000 as on QEMU), the interrupt line of each
// function set from the PIIX3 routing, and I/O, memory and bus-master
// decoding on. Returns the IRQs to make level triggered in the PIC's ELCR
// (SeaBIOS does that for every PIRQ-routed IRQ): `pic.set_elcr(mask)`.
u16 assign_pci_resources(PciBus& bus, const Piix3IsaBridge& router);
// The same, finding the PIIX3 at 00:01.0; without one, interrupt lines are
// left as they are and the mask is 0.
u16 assign_pci_resources(PciBus& bus);

}  // namespace reel
