#include "devices/ne2000_isa.h"

#include <utility>

#include "core/port_bus.h"

namespace reel {

Ne2000Isa::Ne2000Isa(std::string name, const MacAddress& mac, u16 iobase, IrqLine irq)
    : Dp8390(std::move(name), "ne2k_isa", mac), m_iobase(iobase), m_irq(irq) {}

void Ne2000Isa::map_into(PortBus& ports) { ports.map(m_iobase, kIoSize, this); }

}  // namespace reel
