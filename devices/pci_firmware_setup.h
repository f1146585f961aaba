#pragma once

namespace reel {

class PciBus;
class Piix3IsaBridge;

// What SeaBIOS leaves behind for a -kernel boot without firmware: I/O BARs
// assigned upward from 0xC000, memory BARs downward from 0xFEC00000, the
// interrupt line of each function set from the PIIX3 routing, and I/O,
// memory and bus-master decoding on.
void assign_pci_resources(PciBus& bus, const Piix3IsaBridge& router);

}  // namespace reel
