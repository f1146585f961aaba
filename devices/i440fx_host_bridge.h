#pragma once

#include "devices/pci_device.h"

namespace reel {

// 00:00.0, the i440FX host bridge (8086:1237), as the first thing drivers
// and firmware find on the PC's PCI bus.
class I440fxHostBridge : public PciDevice {
 public:
  I440fxHostBridge();
};

}  // namespace reel
