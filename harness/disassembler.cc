#include "harness/disassembler.h"

#include <capstone/capstone.h>

#include <stdexcept>

namespace reel {

Disassembler::Disassembler() {
  csh h32 = 0, h16 = 0;
  if (cs_open(CS_ARCH_X86, CS_MODE_32, &h32) != CS_ERR_OK || cs_open(CS_ARCH_X86, CS_MODE_16, &h16) != CS_ERR_OK) {
    throw std::runtime_error("capstone: cannot open the x86 disassembler");
  }
  m_handle32 = h32;
  m_handle16 = h16;
}

Disassembler::~Disassembler() {
  csh h32 = m_handle32, h16 = m_handle16;
  cs_close(&h32);
  cs_close(&h16);
}

std::vector<Disassembler::Line> Disassembler::disassemble(std::span<const u8> bytes, u32 address, bool code32,
                                                          size_t max_count) {
  std::vector<Line> out;
  cs_insn* insn = nullptr;
  const csh handle = code32 ? m_handle32 : m_handle16;
  const size_t n = cs_disasm(handle, bytes.data(), bytes.size(), address, max_count, &insn);
  for (size_t i = 0; i < n; ++i) {
    std::string text = insn[i].mnemonic;
    if (insn[i].op_str[0]) {
      text += ' ';
      text += insn[i].op_str;
    }
    out.push_back(Line{static_cast<u32>(insn[i].address), insn[i].size, std::move(text)});
  }
  if (insn) cs_free(insn, n);
  return out;
}

}  // namespace reel
