#pragma once

#include "core/types.h"

namespace reel {

// ISA devices with byte-wide registers see a 16- or 32-bit access as that
// many byte accesses to consecutive ports (the bus splits it), so a guest's
// `outw` to the PIC's command port also writes its data port.

template <class ReadByte>
u32 read_byte_lanes(u32 offset, unsigned size, ReadByte&& read_byte) {
  u32 v = 0;
  for (unsigned i = 0; i < size && i < 4; ++i) v |= u32{static_cast<u8>(read_byte(offset + i))} << (8 * i);
  return v;
}

template <class WriteByte>
void write_byte_lanes(u32 offset, unsigned size, u32 value, WriteByte&& write_byte) {
  for (unsigned i = 0; i < size && i < 4; ++i) write_byte(offset + i, static_cast<u8>(value >> (8 * i)));
}

}  // namespace reel
