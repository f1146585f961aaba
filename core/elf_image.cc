#include "core/elf_image.h"

#include <algorithm>

namespace reel {

namespace {

u16 le16(std::span<const u8> b, size_t at) { return static_cast<u16>(b[at] | b[at + 1] << 8); }
u32 le32(std::span<const u8> b, size_t at) {
  return u32{b[at]} | u32{b[at + 1]} << 8 | u32{b[at + 2]} << 16 | u32{b[at + 3]} << 24;
}

constexpr u8 kClass32 = 1;
constexpr u8 kDataLittleEndian = 1;

}  // namespace

bool ElfImage::looks_like_elf(std::span<const u8> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}

ElfImage::ElfImage(std::span<const u8> bytes) : m_bytes(bytes) {
  if (!check(bytes)) {
    // A refused image exposes nothing, so no accessor can hand out a
    // header that was not checked.
    m_header = Header{};
    m_program_headers.clear();
    m_load_segments.clear();
  }
}

bool ElfImage::check(std::span<const u8> bytes) {
  if (!looks_like_elf(bytes)) {
    m_error = "not an ELF file (bad magic)";
    return false;
  }
  if (bytes.size() < kHeaderSize) {
    m_error = "ELF header truncated (" + std::to_string(bytes.size()) + " bytes)";
    return false;
  }
  if (bytes[4] != kClass32) {
    m_error = "not a 32-bit ELF (class " + std::to_string(bytes[4]) + ")";
    return false;
  }
  if (bytes[5] != kDataLittleEndian) {
    m_error = "not a little-endian ELF (data encoding " + std::to_string(bytes[5]) + ")";
    return false;
  }
  m_header.type = le16(bytes, 16);
  m_header.machine = le16(bytes, 18);
  m_header.entry = le32(bytes, 24);
  m_header.phoff = le32(bytes, 28);
  m_header.flags = le32(bytes, 36);
  m_header.phentsize = le16(bytes, 42);
  m_header.phnum = le16(bytes, 44);
  if (m_header.machine != kMachine386) {
    m_error = "not an i386 ELF (machine " + std::to_string(m_header.machine) + ")";
    return false;
  }
  if (m_header.phnum == 0) {
    m_error = "ELF has no program headers";
    return false;
  }
  if (m_header.phentsize < kProgramHeaderSize) {
    m_error = "ELF program header size " + std::to_string(m_header.phentsize) + " is below 32";
    return false;
  }
  if (u64{m_header.phoff} + u64{m_header.phnum} * m_header.phentsize > bytes.size()) {
    m_error = "ELF program headers lie beyond the end of the file (phoff " + std::to_string(m_header.phoff) +
              ", " + std::to_string(m_header.phnum) + " entries, file " + std::to_string(bytes.size()) +
              " bytes)";
    return false;
  }
  m_program_headers.reserve(m_header.phnum);
  for (u32 i = 0; i < m_header.phnum; ++i) {
    const size_t at = m_header.phoff + size_t{i} * m_header.phentsize;
    ProgramHeader ph;
    ph.type = le32(bytes, at);
    ph.offset = le32(bytes, at + 4);
    ph.vaddr = le32(bytes, at + 8);
    ph.paddr = le32(bytes, at + 12);
    ph.filesz = le32(bytes, at + 16);
    ph.memsz = le32(bytes, at + 20);
    ph.flags = le32(bytes, at + 24);
    ph.align = le32(bytes, at + 28);
    if (u64{ph.offset} + ph.filesz > bytes.size()) {
      m_error = "ELF segment " + std::to_string(i) + " lies beyond the end of the file (offset " +
                std::to_string(ph.offset) + ", " + std::to_string(ph.filesz) + " bytes)";
      return false;
    }
    if (ph.type == kPtLoad && ph.filesz > ph.memsz) {
      m_error = "ELF segment " + std::to_string(i) + " has a file size above its memory size";
      return false;
    }
    m_program_headers.push_back(ph);
    if (ph.type == kPtLoad && ph.memsz > 0) m_load_segments.push_back(ph);
  }
  if (m_load_segments.empty()) {
    m_error = "ELF has no loadable segment";
    return false;
  }
  return true;
}

std::span<const u8> ElfImage::segment_bytes(const ProgramHeader& ph) const {
  // Clamped, so a header that did not come from this image cannot reach
  // outside the file either.
  const size_t offset = std::min<size_t>(ph.offset, m_bytes.size());
  return m_bytes.subspan(offset, std::min<size_t>(ph.filesz, m_bytes.size() - offset));
}

}  // namespace reel
