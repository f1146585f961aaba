#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

class Device;

// The x86 I/O port space. The bus owns the address map: a device mapped at
// [base, base+length) sees offsets device_offset + (port - base). Mapping
// over an existing range is reel's own configuration error and throws
// std::invalid_argument naming both devices.
class PortBus {
 public:
  PortBus();

  void map(u16 base, u32 length, Device* device, u32 device_offset = 0);
  void unmap(u16 base, u32 length);

  // size is 1, 2 or 4. Unmapped ports read as all-ones and ignore writes
  // (counted, as a PC's floating bus would do).
  u32 read(u16 port, unsigned size);
  void write(u16 port, unsigned size, u32 value);

  u64 unmapped_accesses() const { return m_unmapped; }
  // "0x3f8-0x3ff uart.0" lines, sorted by port, for `info mtree`-like output.
  std::vector<std::string> describe() const;

 private:
  struct Range {
    u16 base;
    u32 length;
    Device* device;
    u32 device_offset;
  };
  std::vector<Range> m_ranges;
  std::vector<u16> m_index;  // port -> range index + 1, 0 = unmapped
  u64 m_unmapped = 0;
};

}  // namespace reel
