#pragma once

#include <cstdlib>
#include <memory>
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
  struct Free {
    void operator()(u16* p) const { std::free(p); }
  };
  // port -> range index + 1, 0 = unmapped. From calloc: its 128 KiB come as
  // zero pages the kernel maps only when touched (a vector would write them
  // all at start-up, an issue-2 target).
  std::unique_ptr<u16[], Free> m_index;
  u64 m_unmapped = 0;
};

}  // namespace reel
