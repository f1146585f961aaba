#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

// Capstone, for people: -d in_asm, divergence reports, gdb. Never used to
// execute anything.
class Disassembler {
 public:
  Disassembler();
  ~Disassembler();
  Disassembler(const Disassembler&) = delete;
  Disassembler& operator=(const Disassembler&) = delete;

  struct Line {
    u32 address;
    u32 length;
    std::string text;  // "mov eax, 1"
  };
  // Decodes up to max_count instructions; stops at the first undecodable byte.
  std::vector<Line> disassemble(std::span<const u8> bytes, u32 address, bool code32, size_t max_count = 1024);

 private:
  size_t m_handle32 = 0;
  size_t m_handle16 = 0;
};

}  // namespace reel
