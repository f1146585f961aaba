#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

// A checked view over an ELF32 little-endian i386 image. Construction
// validates the identification, the header and every program header
// against the file (table and segment file ranges inside the file), so the
// accessors cannot fail afterwards. ok() says whether the image is usable
// and error() why not, in one line; a refused image has no headers.
class ElfImage {
 public:
  static constexpr u32 kPtLoad = 1;
  static constexpr u16 kMachine386 = 3;
  static constexpr u32 kHeaderSize = 52;
  static constexpr u32 kProgramHeaderSize = 32;

  struct Header {
    u16 type = 0;     // ET_EXEC = 2, ET_DYN = 3, ...
    u16 machine = 0;  // EM_386 = 3
    u32 entry = 0;
    u32 phoff = 0;
    u32 flags = 0;
    u16 phentsize = 0;
    u16 phnum = 0;
  };
  struct ProgramHeader {
    u32 type = 0;
    u32 offset = 0;
    u32 vaddr = 0;
    u32 paddr = 0;
    u32 filesz = 0;
    u32 memsz = 0;
    u32 flags = 0;
    u32 align = 0;
  };

  explicit ElfImage(std::span<const u8> bytes);

  // The four magic bytes, nothing more: tells "not ELF" from "bad ELF".
  static bool looks_like_elf(std::span<const u8> bytes);

  bool ok() const { return m_error.empty(); }
  const std::string& error() const { return m_error; }
  const Header& header() const { return m_header; }
  u32 entry() const { return m_header.entry; }
  // Every program header, in file order.
  const std::vector<ProgramHeader>& program_headers() const { return m_program_headers; }
  // The PT_LOAD headers with a non-zero memory size, in file order.
  const std::vector<ProgramHeader>& load_segments() const { return m_load_segments; }
  // The file bytes of a program header of this image (checked on
  // construction to lie inside the file).
  std::span<const u8> segment_bytes(const ProgramHeader& ph) const;

 private:
  bool check(std::span<const u8> bytes);

  std::span<const u8> m_bytes;
  std::string m_error;
  Header m_header;
  std::vector<ProgramHeader> m_program_headers;
  std::vector<ProgramHeader> m_load_segments;
};

}  // namespace reel
