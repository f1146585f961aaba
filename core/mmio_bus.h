#pragma once

#include <vector>

#include "core/types.h"

namespace reel {

class Device;

// Physical addresses that are not RAM. Ranges are kept sorted; overlaps are
// rejected with std::invalid_argument. Unmapped reads return all-ones.
class MmioBus {
 public:
  void map(u64 base, u64 length, Device* device, u32 device_offset = 0);
  u32 read(u64 addr, unsigned size);
  void write(u64 addr, unsigned size, u32 value);
  u64 unmapped_accesses() const { return m_unmapped; }

 private:
  struct Range {
    u64 base;
    u64 length;
    Device* device;
    u32 device_offset;
  };
  const Range* find(u64 addr) const;
  std::vector<Range> m_ranges;
  u64 m_unmapped = 0;
};

}  // namespace reel
