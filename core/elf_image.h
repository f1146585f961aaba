#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

// A checked view over an ELF32 little-endian i386 image. Construction
// validates the header and every program header against the file, so the
// accessors cannot fail afterwards; ok() says whether it is usable and
// error() why not.
class ElfImage {
 public:
  struct Segment {
    u32 type;
    u32 offset;
    u32 vaddr;
    u32 paddr;
    u32 filesz;
    u32 memsz;
    u32 flags;
  };
  static constexpr u32 kPtLoad = 1;

  explicit ElfImage(std::span<const u8> bytes);

  static bool looks_like_elf(std::span<const u8> bytes);
  bool ok() const { return m_error.empty(); }
  const std::string& error() const { return m_error; }
  u32 entry() const { return m_entry; }
  const std::vector<Segment>& segments() const { return m_segments; }
  std::span<const u8> segment_bytes(const Segment& s) const { return m_bytes.subspan(s.offset, s.filesz); }

 private:
  std::span<const u8> m_bytes;
  std::string m_error;
  u32 m_entry = 0;
  std::vector<Segment> m_segments;
};

}  // namespace reel
