#include "devices/i440fx_host_bridge.h"

namespace reel {

I440fxHostBridge::I440fxHostBridge()
    : PciDevice("i440fx", 0, 0, Identity{0x8086, 0x1237, 0x02, 0x060000, 0, 0, 0x00, 0}) {}

}  // namespace reel
