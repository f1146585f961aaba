#include "core/elf_image.h"

namespace reel {

namespace {
u16 le16(std::span<const u8> b, size_t at) { return static_cast<u16>(b[at] | b[at + 1] << 8); }
u32 le32(std::span<const u8> b, size_t at) {
  return u32{b[at]} | u32{b[at + 1]} << 8 | u32{b[at + 2]} << 16 | u32{b[at + 3]} << 24;
}
}  // namespace

bool ElfImage::looks_like_elf(std::span<const u8> bytes) {
  return bytes.size() >= 4 && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
}

ElfImage::ElfImage(std::span<const u8> bytes) : m_bytes(bytes) {
  if (!looks_like_elf(bytes)) {
    m_error = "not an ELF file";
    return;
  }
  if (bytes.size() < 52) {
    m_error = "ELF header truncated";
    return;
  }
  if (bytes[4] != 1) {
    m_error = "not a 32-bit ELF (ELF class " + std::to_string(bytes[4]) + ")";
    return;
  }
  if (bytes[5] != 1) {
    m_error = "not a little-endian ELF";
    return;
  }
  if (le16(bytes, 18) != 3) {
    m_error = "not an i386 ELF (machine " + std::to_string(le16(bytes, 18)) + ")";
    return;
  }
  m_entry = le32(bytes, 24);
  const u32 phoff = le32(bytes, 28);
  const u16 phentsize = le16(bytes, 42);
  const u16 phnum = le16(bytes, 44);
  if (phnum == 0) {
    m_error = "ELF has no program headers";
    return;
  }
  if (phentsize < 32) {
    m_error = "ELF program header size " + std::to_string(phentsize) + " too small";
    return;
  }
  if (u64{phoff} + u64{phnum} * phentsize > bytes.size()) {
    m_error = "ELF program headers lie beyond the end of the file";
    return;
  }
  for (u32 i = 0; i < phnum; ++i) {
    const size_t at = phoff + size_t{i} * phentsize;
    Segment s{le32(bytes, at), le32(bytes, at + 4), le32(bytes, at + 8), le32(bytes, at + 12),
              le32(bytes, at + 16), le32(bytes, at + 20), le32(bytes, at + 24)};
    if (s.type != kPtLoad) continue;
    if (u64{s.offset} + s.filesz > bytes.size()) {
      m_error = "ELF segment " + std::to_string(i) + " lies beyond the end of the file";
      return;
    }
    if (s.filesz > s.memsz) {
      m_error = "ELF segment " + std::to_string(i) + " has a file size larger than its memory size";
      return;
    }
    m_segments.push_back(s);
  }
  if (m_segments.empty()) m_error = "ELF has no loadable segment";
}

}  // namespace reel
