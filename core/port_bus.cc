#include "core/port_bus.h"

#include <algorithm>
#include <cstdio>
#include <new>
#include <stdexcept>

#include "core/device.h"

namespace reel {

PortBus::PortBus() : m_index(static_cast<u16*>(std::calloc(0x10000, sizeof(u16)))) {
  if (!m_index) throw std::bad_alloc();
}

void PortBus::map(u16 base, u32 length, Device* device, u32 device_offset) {
  if (length == 0 || u32{base} + length > 0x10000) {
    throw std::invalid_argument("port range out of the 64 KiB I/O space for " + device->name());
  }
  for (u32 p = base; p < base + length; ++p) {
    if (m_index[p] != 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "I/O port 0x%x of %s overlaps %s", p, device->name().c_str(),
                    m_ranges[m_index[p] - 1].device->name().c_str());
      throw std::invalid_argument(buf);
    }
  }
  m_ranges.push_back(Range{base, length, device, device_offset});
  const u16 idx = static_cast<u16>(m_ranges.size());
  for (u32 p = base; p < base + length; ++p) m_index[p] = idx;
}

void PortBus::unmap(u16 base, u32 length) {
  for (u32 p = base; p < base + length && p < 0x10000; ++p) m_index[p] = 0;
}

u32 PortBus::read(u16 port, unsigned size) {
  const u16 idx = m_index[port];
  if (idx == 0) {
    ++m_unmapped;
    return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff;
  }
  const Range& r = m_ranges[idx - 1];
  return r.device->read(r.device_offset + (port - r.base), size);
}

void PortBus::write(u16 port, unsigned size, u32 value) {
  const u16 idx = m_index[port];
  if (idx == 0) {
    ++m_unmapped;
    return;
  }
  const Range& r = m_ranges[idx - 1];
  r.device->write(r.device_offset + (port - r.base), size, value);
}

std::vector<std::string> PortBus::describe() const {
  std::vector<Range> sorted = m_ranges;
  std::sort(sorted.begin(), sorted.end(), [](const Range& a, const Range& b) { return a.base < b.base; });
  std::vector<std::string> out;
  for (const Range& r : sorted) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "0x%04x-0x%04x %s", r.base, r.base + r.length - 1,
                  r.device->name().c_str());
    out.emplace_back(buf);
  }
  return out;
}

}  // namespace reel
