#include "core/mmio_bus.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "core/device.h"

namespace reel {

void MmioBus::map(u64 base, u64 length, Device* device, u32 device_offset) {
  if (length == 0) throw std::invalid_argument("empty MMIO range for " + device->name());
  for (const Range& r : m_ranges) {
    if (base < r.base + r.length && r.base < base + length) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "MMIO range 0x%llx of %s overlaps %s", static_cast<unsigned long long>(base),
                    device->name().c_str(), r.device->name().c_str());
      throw std::invalid_argument(buf);
    }
  }
  m_ranges.push_back(Range{base, length, device, device_offset});
  std::sort(m_ranges.begin(), m_ranges.end(), [](const Range& a, const Range& b) { return a.base < b.base; });
}

const MmioBus::Range* MmioBus::find(u64 addr) const {
  auto it = std::upper_bound(m_ranges.begin(), m_ranges.end(), addr,
                             [](u64 a, const Range& r) { return a < r.base; });
  if (it == m_ranges.begin()) return nullptr;
  --it;
  return addr < it->base + it->length ? &*it : nullptr;
}

u32 MmioBus::read(u64 addr, unsigned size) {
  if (const Range* r = find(addr)) return r->device->read(static_cast<u32>(r->device_offset + (addr - r->base)), size);
  ++m_unmapped;
  return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffff;
}

void MmioBus::write(u64 addr, unsigned size, u32 value) {
  if (const Range* r = find(addr)) {
    r->device->write(static_cast<u32>(r->device_offset + (addr - r->base)), size, value);
    return;
  }
  ++m_unmapped;
}

}  // namespace reel
