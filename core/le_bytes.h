#pragma once

#include <cstdio>
#include <span>
#include <string>

#include "core/types.h"

namespace reel {

// Little-endian fields of guest images and boot structures (the loaders'
// headers, tables and info blocks), read and written at byte offsets. The
// caller has checked that the offsets lie inside the span.
inline u16 le16(std::span<const u8> b, size_t at) { return static_cast<u16>(b[at] | b[at + 1] << 8); }
inline u32 le32(std::span<const u8> b, size_t at) {
  return u32{b[at]} | u32{b[at + 1]} << 8 | u32{b[at + 2]} << 16 | u32{b[at + 3]} << 24;
}
inline void put16(std::span<u8> b, size_t at, u16 v) {
  b[at] = static_cast<u8>(v);
  b[at + 1] = static_cast<u8>(v >> 8);
}
inline void put32(std::span<u8> b, size_t at, u32 v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}
inline void put64(std::span<u8> b, size_t at, u64 v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}
// "0x1f" for loader messages.
inline std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace reel
