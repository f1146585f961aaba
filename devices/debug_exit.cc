#include "devices/debug_exit.h"

#include <utility>

#include "core/port_bus.h"

namespace reel {

DebugExit::DebugExit(std::function<void(int status)> on_exit)
    : Device("isa-debug-exit"), m_on_exit(std::move(on_exit)) {}

void DebugExit::map_into(PortBus& ports, u16 iobase, u32 iosize) { ports.map(iobase, iosize, this); }

u32 DebugExit::read(u32, unsigned) { return 0; }

void DebugExit::write(u32, unsigned size, u32 value) {
  // Only the bytes the guest actually wrote count.
  if (size < 4) value &= (u32{1} << (8 * size)) - 1;
  m_last = value;
  if (m_on_exit) m_on_exit(static_cast<int>(((value << 1) | 1) & 0xff));
}

}  // namespace reel
