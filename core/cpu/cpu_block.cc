// The decoded-block cache and the main loop. Straight-line code is decoded
// once into DecodedInsn records (handler + operands + length), a block per
// start address, cached in a direct-mapped table keyed by physical address
// and code size. A write to a page holding decoded code bumps that page's
// generation (GuestMemory's code listener), which invalidates every block
// decoded from it, and stops the running block after the writing
// instruction, so self-modifying code sees its own stores at once.
//
// Only the common 32-bit forms (32-bit operand and address size) get their
// own handlers; every other instruction becomes a record that runs the
// general decoder of cpu_exec.cc and ends the block. That keeps one exact
// implementation of the rare instructions while the hot ones skip decoding.

#include <algorithm>
#include <cstring>

#include "core/cpu/cpu.h"
#include "core/cpu/cpu_ops.h"
#include "core/guest_memory.h"
#include "core/virtual_clock.h"

namespace reel {

namespace {
enum SegIndex : u8 { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5 };
}  // namespace

// Handlers and the record decoder. A handler runs with m_eip on its
// instruction and leaves it on the next one; a fault (a C++ exception) is
// caught by Cpu::execute, which restores EIP from m_insn_start. Handlers
// must not change architectural state before their last possible fault.
struct BlockOps {
  using D = Cpu::DecodedInsn;
  using H = Cpu::InsnHandler;

  static u32 ea(const Cpu& c, const D& d) {
    // With 16-bit addressing the low 16 bits of the 32-bit sum are the sum
    // of BX/BP/SI/DI and the displacement modulo 64 KiB.
    const u32 a = c.m_gpr[d.base] + (c.m_gpr[d.index] << d.scale) + d.disp;
    return d.addr16 ? (a & 0xffff) : a;
  }
  static void next(Cpu& c, const D& d) { c.m_eip += d.len; }
  // Raises the write fault of a read-modify-write before its flags change.
  template <unsigned S>
  static void check_write(Cpu& c, int seg, u32 off) {
    const SegmentCache& s = c.m_seg[seg];
    if (!((s.attrs & 0x9e) == 0x92 && off <= s.limit && s.limit - off >= S - 1))
      c.seg_linear(seg, off, S, true);
  }
  static void jump(Cpu& c, u32 target) {
    if (target > c.m_seg[CS].limit) c.fault(13, 0);
    c.m_eip = target;
  }

  // Anything the record decoder does not handle. It may change anything
  // (IF, the interrupt shadow, HLT, CR0, CS), so the block loop goes back
  // to run() after it.
  static void general(Cpu& c, const D&) {
    c.m_insn_start = c.m_eip;
    try {
      c.step();
    } catch (const Cpu::Fault&) {
      c.m_eip = c.m_insn_start;
      throw;
    }
    c.m_attention |= Cpu::kAttentionStop;
  }

  // ---- ALU. OP 0-7 as in the opcode, 8 = TEST (AND without a store).
  template <int OP, unsigned S>
  static u32 do_alu(Cpu& c, u32 a, u32 b) {
    return CpuOps::alu(c, OP == 8 ? 4 : OP, S, a, b);
  }
  static constexpr bool stores(int op) { return op != 7 && op != 8; }

  template <int OP, unsigned S, bool MEM>
  static void alu_rm_r(Cpu& c, const D& d) {
    if constexpr (MEM) {
      const u32 off = ea(c, d);
      if constexpr (stores(OP)) check_write<S>(c, d.seg, off);
      const u32 r = do_alu<OP, S>(c, CpuOps::read<S>(c, d.seg, off), CpuOps::get_reg(c, S, d.reg));
      if constexpr (stores(OP)) CpuOps::write<S>(c, d.seg, off, r);
    } else {
      const u32 r = do_alu<OP, S>(c, CpuOps::get_reg(c, S, d.rm), CpuOps::get_reg(c, S, d.reg));
      if constexpr (stores(OP)) CpuOps::set_reg(c, S, d.rm, r);
    }
    next(c, d);
  }
  template <int OP, unsigned S, bool MEM>
  static void alu_r_rm(Cpu& c, const D& d) {
    const u32 src = MEM ? CpuOps::read<S>(c, d.seg, ea(c, d)) : CpuOps::get_reg(c, S, d.rm);
    const u32 r = do_alu<OP, S>(c, CpuOps::get_reg(c, S, d.reg), src);
    if constexpr (stores(OP)) CpuOps::set_reg(c, S, d.reg, r);
    next(c, d);
  }
  template <int OP, unsigned S, bool MEM>
  static void alu_rm_imm(Cpu& c, const D& d) {
    if constexpr (MEM) {
      const u32 off = ea(c, d);
      if constexpr (stores(OP)) check_write<S>(c, d.seg, off);
      const u32 r = do_alu<OP, S>(c, CpuOps::read<S>(c, d.seg, off), d.imm);
      if constexpr (stores(OP)) CpuOps::write<S>(c, d.seg, off, r);
    } else {
      const u32 r = do_alu<OP, S>(c, CpuOps::get_reg(c, S, d.rm), d.imm);
      if constexpr (stores(OP)) CpuOps::set_reg(c, S, d.rm, r);
    }
    next(c, d);
  }

  // ---- moves
  template <unsigned S, bool MEM>
  static void mov_rm_r(Cpu& c, const D& d) {
    if constexpr (MEM) {
      CpuOps::write<S>(c, d.seg, ea(c, d), CpuOps::get_reg(c, S, d.reg));
    } else {
      CpuOps::set_reg(c, S, d.rm, CpuOps::get_reg(c, S, d.reg));
    }
    next(c, d);
  }
  template <unsigned S, bool MEM>
  static void mov_r_rm(Cpu& c, const D& d) {
    CpuOps::set_reg(c, S, d.reg, MEM ? CpuOps::read<S>(c, d.seg, ea(c, d)) : CpuOps::get_reg(c, S, d.rm));
    next(c, d);
  }
  template <unsigned S, bool MEM>
  static void mov_rm_imm(Cpu& c, const D& d) {
    if constexpr (MEM) {
      CpuOps::write<S>(c, d.seg, ea(c, d), d.imm);
    } else {
      CpuOps::set_reg(c, S, d.rm, d.imm);
    }
    next(c, d);
  }
  template <unsigned S>
  static void lea(Cpu& c, const D& d) {
    CpuOps::set_reg(c, S, d.reg, ea(c, d));
    next(c, d);
  }
  template <unsigned SRC, bool SIGNED, bool MEM>
  static void movx(Cpu& c, const D& d) {
    const u32 v = MEM ? CpuOps::read<SRC>(c, d.seg, ea(c, d)) : CpuOps::get_reg(c, SRC, d.rm);
    c.m_gpr[d.reg] = SIGNED ? cpu_flags::sext(v, SRC) : v;
    next(c, d);
  }
  template <unsigned S, bool MEM>
  static void xchg(Cpu& c, const D& d) {
    const u32 b = CpuOps::get_reg(c, S, d.reg);
    if constexpr (MEM) {
      const u32 off = ea(c, d);
      check_write<S>(c, d.seg, off);
      const u32 a = CpuOps::read<S>(c, d.seg, off);
      CpuOps::write<S>(c, d.seg, off, b);
      CpuOps::set_reg(c, S, d.reg, a);
    } else {
      const u32 a = CpuOps::get_reg(c, S, d.rm);
      CpuOps::set_reg(c, S, d.rm, b);
      CpuOps::set_reg(c, S, d.reg, a);
    }
    next(c, d);
  }
  static void nop(Cpu& c, const D& d) { next(c, d); }
  static void cwde(Cpu& c, const D& d) {
    c.m_gpr[0] = cpu_flags::sext(c.m_gpr[0] & 0xffff, 2);
    next(c, d);
  }
  static void cdq(Cpu& c, const D& d) {
    c.m_gpr[2] = (c.m_gpr[0] & 0x80000000u) ? 0xffffffffu : 0;
    next(c, d);
  }

  // ---- INC/DEC, NOT/NEG, MUL/DIV
  template <bool DEC, unsigned S, bool MEM>
  static void inc_dec(Cpu& c, const D& d) {
    if constexpr (MEM) {
      const u32 off = ea(c, d);
      check_write<S>(c, d.seg, off);
      CpuOps::write<S>(c, d.seg, off, CpuOps::inc_dec(c, DEC, S, CpuOps::read<S>(c, d.seg, off)));
    } else {
      CpuOps::set_reg(c, S, d.rm, CpuOps::inc_dec(c, DEC, S, CpuOps::get_reg(c, S, d.rm)));
    }
    next(c, d);
  }
  template <bool NEG, unsigned S, bool MEM>
  static void not_neg(Cpu& c, const D& d) {
    const u32 off = MEM ? ea(c, d) : 0;
    if constexpr (MEM) check_write<S>(c, d.seg, off);
    const u32 v = MEM ? CpuOps::read<S>(c, d.seg, off) : CpuOps::get_reg(c, S, d.rm);
    const u32 r = NEG ? CpuOps::alu(c, 5, S, 0, v) : ~v;
    if constexpr (MEM) {
      CpuOps::write<S>(c, d.seg, off, r);
    } else {
      CpuOps::set_reg(c, S, d.rm, r);
    }
    next(c, d);
  }
  // KIND: 4 MUL, 5 IMUL, 6 DIV, 7 IDIV (the group 3 reg field).
  template <int KIND, unsigned S, bool MEM>
  static void muldiv(Cpu& c, const D& d) {
    const u32 v = MEM ? CpuOps::read<S>(c, d.seg, ea(c, d)) : CpuOps::get_reg(c, S, d.rm);
    if constexpr (KIND < 6) {
      CpuOps::mul(c, S, KIND == 5, v);
    } else {
      CpuOps::div(c, S, KIND == 7, v);
    }
    next(c, d);
  }
  // IMUL r32, r/m32 (IMM=false) and IMUL r32, r/m32, imm.
  template <bool MEM, bool IMM>
  static void imul2(Cpu& c, const D& d) {
    const u32 src = MEM ? CpuOps::read<4>(c, d.seg, ea(c, d)) : c.m_gpr[d.rm];
    const u32 other = IMM ? d.imm : c.m_gpr[d.reg];
    const i64 p = static_cast<i64>(static_cast<i32>(src)) * static_cast<i32>(other);
    const u32 r = static_cast<u32>(p);
    const bool wide = p != static_cast<i64>(static_cast<i32>(r));
    c.m_gpr[d.reg] = r;
    CpuOps::set_arith(c, r, 4, wide, wide, false);
    next(c, d);
  }

  // ---- shifts. CL=true takes the count from CL, else from the record.
  template <int OP, unsigned S, bool MEM, bool CL>
  static void shift(Cpu& c, const D& d) {
    const unsigned count = CL ? (c.m_gpr[1] & 0xff) : d.imm;
    if constexpr (MEM) {
      const u32 off = ea(c, d);
      check_write<S>(c, d.seg, off);
      const u32 v = CpuOps::read<S>(c, d.seg, off);
      const u32 r = CpuOps::shift(c, OP, S, v, count);
      if (count & 0x1f) CpuOps::write<S>(c, d.seg, off, r);
    } else {
      const u32 r = CpuOps::shift(c, OP, S, CpuOps::get_reg(c, S, d.rm), count);
      if (count & 0x1f) CpuOps::set_reg(c, S, d.rm, r);
    }
    next(c, d);
  }

  // ---- conditions
  template <bool MEM>
  static void setcc(Cpu& c, const D& d) {
    const u32 v = CpuOps::cond(c, d.op) ? 1 : 0;
    if constexpr (MEM) {
      CpuOps::write<1>(c, d.seg, ea(c, d), v);
    } else {
      CpuOps::set_reg(c, 1, d.rm, v);
    }
    next(c, d);
  }
  // The source is read even when the condition is false (it may fault).
  template <bool MEM>
  static void cmovcc(Cpu& c, const D& d) {
    const u32 v = MEM ? CpuOps::read<4>(c, d.seg, ea(c, d)) : c.m_gpr[d.rm];
    if (CpuOps::cond(c, d.op)) c.m_gpr[d.reg] = v;
    next(c, d);
  }
  static void clc(Cpu& c, const D& d) {
    c.materialize_flags();
    c.m_eflags &= ~cpu_flags::kCF;
    next(c, d);
  }
  static void stc(Cpu& c, const D& d) {
    c.materialize_flags();
    c.m_eflags |= cpu_flags::kCF;
    next(c, d);
  }
  static void cmc(Cpu& c, const D& d) {
    c.materialize_flags();
    c.m_eflags ^= cpu_flags::kCF;
    next(c, d);
  }
  // DF is never part of the lazy state, so no materialisation.
  static void cld(Cpu& c, const D& d) {
    c.m_eflags &= ~cpu_flags::kDF;
    next(c, d);
  }
  static void std_(Cpu& c, const D& d) {
    c.m_eflags |= cpu_flags::kDF;
    next(c, d);
  }

  // ---- stack
  static void push_reg(Cpu& c, const D& d) {
    CpuOps::push32(c, c.m_gpr[d.reg]);  // PUSH ESP pushes the value before the push
    next(c, d);
  }
  static void pop_reg(Cpu& c, const D& d) {
    const u32 v = CpuOps::pop32(c);
    c.m_gpr[d.reg] = v;
    next(c, d);
  }
  static void push_imm(Cpu& c, const D& d) {
    CpuOps::push32(c, d.imm);
    next(c, d);
  }
  static void push_mem(Cpu& c, const D& d) {
    CpuOps::push32(c, CpuOps::read<4>(c, d.seg, ea(c, d)));
    next(c, d);
  }
  static void leave(Cpu& c, const D& d) {
    if (!c.stack32()) return general(c, d);
    const u32 v = CpuOps::read<4>(c, SS, c.m_gpr[kEbp]);
    c.m_gpr[kEsp] = c.m_gpr[kEbp] + 4;
    c.m_gpr[kEbp] = v;
    next(c, d);
  }

  // ---- string moves and stores with 32-bit addressing. One iteration is
  // one retired instruction: a REP runs iterations until ECX is zero, the
  // budget of the block ends or something needs attention (an INTR change,
  // a store into decoded code), counting each finished iteration so that a
  // device reached by an iteration sees the exact count. A REP stays on its
  // own EIP until it finishes, so it is always the last record of a block.
  // KIND: 0 MOVS, 1 STOS, 2 LODS, 3 CMPS, 4 SCAS. The compares leave ZF
  // in the lazy flags (a SUB), which REPE/REPNE test.
  template <int KIND, unsigned S>
  static void string_iteration(Cpu& c, int src_seg) {
    const u32 delta = (c.m_eflags & cpu_flags::kDF) ? static_cast<u32>(-static_cast<i32>(S)) : S;
    if constexpr (KIND == 0) {
      CpuOps::write<S>(c, ES, c.m_gpr[kEdi], CpuOps::read<S>(c, src_seg, c.m_gpr[kEsi]));
      c.m_gpr[kEsi] += delta;
      c.m_gpr[kEdi] += delta;
    } else if constexpr (KIND == 1) {
      CpuOps::write<S>(c, ES, c.m_gpr[kEdi], CpuOps::get_reg(c, S, kEax));
      c.m_gpr[kEdi] += delta;
    } else if constexpr (KIND == 2) {
      CpuOps::set_reg(c, S, kEax, CpuOps::read<S>(c, src_seg, c.m_gpr[kEsi]));
      c.m_gpr[kEsi] += delta;
    } else if constexpr (KIND == 3) {
      const u32 a = CpuOps::read<S>(c, src_seg, c.m_gpr[kEsi]);
      const u32 b = CpuOps::read<S>(c, ES, c.m_gpr[kEdi]);
      CpuOps::alu(c, 7, S, a, b);
      c.m_gpr[kEsi] += delta;
      c.m_gpr[kEdi] += delta;
    } else {
      CpuOps::alu(c, 7, S, CpuOps::get_reg(c, S, kEax), CpuOps::read<S>(c, ES, c.m_gpr[kEdi]));
      c.m_gpr[kEdi] += delta;
    }
  }
  template <int KIND, unsigned S>
  static void string_once(Cpu& c, const D& d) {
    string_iteration<KIND, S>(c, d.seg);
    next(c, d);
  }
  // REPNE=true: F2 (a compare stops on equal); F3 (stops on different).
  // On MOVS/STOS/LODS both prefixes just repeat.
  template <int KIND, unsigned S, bool REPNE>
  static void string_rep(Cpu& c, const D& d) {
    u64& icount = c.m_clock.icount_ref();
    for (;;) {
      if (c.m_gpr[kEcx] == 0) return next(c, d);
      string_iteration<KIND, S>(c, d.seg);
      if (--c.m_gpr[kEcx] == 0) return next(c, d);
      if constexpr (KIND >= 3) {
        const bool zf = (c.m_lazy_res & cpu_flags::size_mask(S)) == 0;
        if (zf == REPNE) return next(c, d);
      }
      // The caller counts the iteration just done when this returns.
      if (icount + 1 >= c.m_exec_end || (c.m_attention & Cpu::kAttentionStop)) return;
      ++icount;
    }
  }

  // ---- control transfers (always the last record of a block)
  // Not taken, the block goes on: blocks run through conditional jumps.
  // With a 16-bit operand size the target wraps at 64 KiB.
  template <unsigned CC, bool O16>
  static void jcc(Cpu& c, const D& d) {
    if (CpuOps::cond(c, CC)) {
      jump(c, (c.m_eip + d.len + d.disp) & (O16 ? 0xffffu : 0xffffffffu));
      c.m_attention |= Cpu::kAttentionBranch;
    } else {
      next(c, d);
    }
  }
  template <bool O16>
  static void jmp_rel(Cpu& c, const D& d) {
    jump(c, (c.m_eip + d.len + d.disp) & (O16 ? 0xffffu : 0xffffffffu));
  }
  static void call_rel(Cpu& c, const D& d) {
    const u32 ret = c.m_eip + d.len, target = ret + d.disp;
    if (target > c.m_seg[CS].limit) c.fault(13, 0);
    CpuOps::push32(c, ret);
    c.m_eip = target;
  }
  template <bool MEM>
  static void jmp_ind(Cpu& c, const D& d) {
    jump(c, MEM ? CpuOps::read<4>(c, d.seg, ea(c, d)) : c.m_gpr[d.rm]);
  }
  template <bool MEM>
  static void call_ind(Cpu& c, const D& d) {
    const u32 target = MEM ? CpuOps::read<4>(c, d.seg, ea(c, d)) : c.m_gpr[d.rm];
    if (target > c.m_seg[CS].limit) c.fault(13, 0);
    CpuOps::push32(c, c.m_eip + d.len);
    c.m_eip = target;
  }
  // RET and RET imm16: ESP only moves once the target is known to be good.
  static void ret(Cpu& c, const D& d) {
    if (!c.stack32()) return general(c, d);
    const u32 target = CpuOps::read<4>(c, SS, c.m_gpr[kEsp]);
    jump(c, target);
    c.m_gpr[kEsp] += 4 + d.imm;
  }

  // ---- tables from runtime operation numbers to instantiations
#define REEL_JCC_ROW(O)                                                                                      \
  {                                                                                                          \
    &jcc<0, O>, &jcc<1, O>, &jcc<2, O>, &jcc<3, O>, &jcc<4, O>, &jcc<5, O>, &jcc<6, O>, &jcc<7, O>,          \
        &jcc<8, O>, &jcc<9, O>, &jcc<10, O>, &jcc<11, O>, &jcc<12, O>, &jcc<13, O>, &jcc<14, O>, &jcc<15, O> \
  }
  static H jcc_handler(unsigned cc, bool o16) {
    static const H kTable[2][16] = {REEL_JCC_ROW(false), REEL_JCC_ROW(true)};
    return kTable[o16 ? 1 : 0][cc & 15];
  }
#undef REEL_JCC_ROW
#define REEL_ALU_ROW(F, S, M)                                                                               \
  {                                                                                                         \
    &F<0, S, M>, &F<1, S, M>, &F<2, S, M>, &F<3, S, M>, &F<4, S, M>, &F<5, S, M>, &F<6, S, M>, &F<7, S, M>, \
        &F<8, S, M>                                                                                         \
  }
  static H alu_handler(int form, int op, unsigned size, bool mem) {
    static const H kRmR[3][2][9] = {{REEL_ALU_ROW(alu_rm_r, 1, false), REEL_ALU_ROW(alu_rm_r, 1, true)},
                                    {REEL_ALU_ROW(alu_rm_r, 2, false), REEL_ALU_ROW(alu_rm_r, 2, true)},
                                    {REEL_ALU_ROW(alu_rm_r, 4, false), REEL_ALU_ROW(alu_rm_r, 4, true)}};
    static const H kRRm[3][2][9] = {{REEL_ALU_ROW(alu_r_rm, 1, false), REEL_ALU_ROW(alu_r_rm, 1, true)},
                                    {REEL_ALU_ROW(alu_r_rm, 2, false), REEL_ALU_ROW(alu_r_rm, 2, true)},
                                    {REEL_ALU_ROW(alu_r_rm, 4, false), REEL_ALU_ROW(alu_r_rm, 4, true)}};
    static const H kRmImm[3][2][9] = {
        {REEL_ALU_ROW(alu_rm_imm, 1, false), REEL_ALU_ROW(alu_rm_imm, 1, true)},
        {REEL_ALU_ROW(alu_rm_imm, 2, false), REEL_ALU_ROW(alu_rm_imm, 2, true)},
        {REEL_ALU_ROW(alu_rm_imm, 4, false), REEL_ALU_ROW(alu_rm_imm, 4, true)}};
    const int s = size == 4 ? 2 : size == 2 ? 1 : 0, m = mem ? 1 : 0;
    return form == 0 ? kRmR[s][m][op] : form == 1 ? kRRm[s][m][op] : kRmImm[s][m][op];
  }
#undef REEL_ALU_ROW
#define REEL_SHIFT_ROW(S, M, CL)                                                                             \
  {                                                                                                          \
    &shift<0, S, M, CL>, &shift<1, S, M, CL>, &shift<2, S, M, CL>, &shift<3, S, M, CL>, &shift<4, S, M, CL>, \
        &shift<5, S, M, CL>, &shift<6, S, M, CL>, &shift<7, S, M, CL>                                        \
  }
  static H shift_handler(int op, unsigned size, bool mem, bool cl) {
    static const H kTable[3][2][2][8] = {{{REEL_SHIFT_ROW(1, false, false), REEL_SHIFT_ROW(1, false, true)},
                                          {REEL_SHIFT_ROW(1, true, false), REEL_SHIFT_ROW(1, true, true)}},
                                         {{REEL_SHIFT_ROW(2, false, false), REEL_SHIFT_ROW(2, false, true)},
                                          {REEL_SHIFT_ROW(2, true, false), REEL_SHIFT_ROW(2, true, true)}},
                                         {{REEL_SHIFT_ROW(4, false, false), REEL_SHIFT_ROW(4, false, true)},
                                          {REEL_SHIFT_ROW(4, true, false), REEL_SHIFT_ROW(4, true, true)}}};
    return kTable[size == 4 ? 2 : size == 2 ? 1 : 0][mem ? 1 : 0][cl ? 1 : 0][op];
  }
#undef REEL_SHIFT_ROW
  // ---- the record decoder
  enum class Decoded : u8 { next, last, general };

  // Decodes one instruction at p (at most 15 bytes are read; the caller
  // pads). Returns general for anything without its own handler.
  static Decoded decode(const u8* p, bool code32, D& d) {
    unsigned pos = 0;
    bool op32 = code32, addr32 = code32;
    int seg = -1;
    u8 op = 0;
    for (int n = 0;; ++n) {
      if (n >= 4) return Decoded::general;  // the general decoder applies the 15-byte rule
      op = p[pos++];
      switch (op) {
        case 0x26:
          seg = ES;
          continue;
        case 0x2e:
          seg = CS;
          continue;
        case 0x36:
          seg = SS;
          continue;
        case 0x3e:
          seg = DS;
          continue;
        case 0x64:
          seg = FS;
          continue;
        case 0x65:
          seg = GS;
          continue;
        case 0x66:
          op32 = !code32;
          continue;
        case 0x67:
          addr32 = !code32;
          continue;
        default:
          break;
      }
      break;
    }
    // LOCK, REPNE and REP before anything but MOVS/STOS/LODS go to the
    // general decoder.
    bool rep = false;
    bool repne = false;
    if (op == 0xf3 || op == 0xf2) {
      rep = true;
      repne = op == 0xf2;
      op = p[pos++];
      if (op == 0x66) {
        op32 = !code32;
        op = p[pos++];
      }
      if (op < 0xa4 || op > 0xaf || op == 0xa8 || op == 0xa9) return Decoded::general;
    }
    const unsigned osz = op32 ? 4 : 2;

    bool mem = false;
    auto imm8 = [&] { return static_cast<u32>(p[pos++]); };
    auto imm8s = [&] { return cpu_flags::sext(p[pos++], 1); };
    auto imm16 = [&] {
      const u32 v = static_cast<u32>(p[pos] | p[pos + 1] << 8);
      pos += 2;
      return v;
    };
    auto imm32 = [&] {
      u32 v;
      std::memcpy(&v, p + pos, 4);
      pos += 4;
      return v;
    };
    auto immv = [&] { return op32 ? imm32() : imm16(); };
    auto modrm = [&] {
      const u8 m = p[pos++];
      const unsigned mod = m >> 6, rm = m & 7;
      d.reg = (m >> 3) & 7;
      if (mod == 3) {
        d.rm = static_cast<u8>(rm);
        mem = false;
        return;
      }
      mem = true;
      int def = DS;
      d.base = 8;
      d.index = 8;
      d.scale = 0;
      d.disp = 0;
      d.addr16 = !addr32;
      if (!addr32) {
        // BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP (or disp16), BX.
        static const u8 kBase[8] = {kEbx, kEbx, kEbp, kEbp, kEsi, kEdi, kEbp, kEbx};
        static const u8 kIndex[8] = {kEsi, kEdi, kEsi, kEdi, 8, 8, 8, 8};
        if (mod == 0 && rm == 6) {
          d.disp = imm16();
        } else {
          d.base = kBase[rm];
          d.index = kIndex[rm];
          if (d.base == kEbp) def = SS;
        }
        if (mod == 1) d.disp += imm8s();
        if (mod == 2) d.disp += imm16();
      } else {
        if (rm == 4) {
          const u8 sib = p[pos++];
          const unsigned index = (sib >> 3) & 7, base = sib & 7;
          if (index != 4) {
            d.index = static_cast<u8>(index);
            d.scale = static_cast<u8>(sib >> 6);
          }
          if (base == 5 && mod == 0) {
            d.disp = imm32();
          } else {
            d.base = static_cast<u8>(base);
            if (base == 4 || base == 5) def = SS;
          }
        } else if (rm == 5 && mod == 0) {
          d.disp = imm32();
        } else {
          d.base = static_cast<u8>(rm);
          if (rm == 5) def = SS;
        }
        if (mod == 1) d.disp += imm8s();
        if (mod == 2) d.disp += imm32();
      }
      d.seg = static_cast<u8>(seg >= 0 ? seg : def);
    };
    auto done = [&](H fn, Decoded kind) {
      d.fn = fn;
      d.len = static_cast<u8>(pos);
      return kind;
    };
    const Decoded next = Decoded::next, last = Decoded::last, general = Decoded::general;
    // Handlers by operand size (1, 2 or 4) and operand kind.
#define REEL_BY_SIZE(S, M, ...)                                        \
  ((S) == 1   ? ((M) ? &__VA_ARGS__<1, true> : &__VA_ARGS__<1, false>) \
   : (S) == 2 ? ((M) ? &__VA_ARGS__<2, true> : &__VA_ARGS__<2, false>) \
              : ((M) ? &__VA_ARGS__<4, true> : &__VA_ARGS__<4, false>))
#define REEL_BY_SIZE_P(P, S, M, F)                       \
  ((S) == 1   ? ((M) ? &F<P, 1, true> : &F<P, 1, false>) \
   : (S) == 2 ? ((M) ? &F<P, 2, true> : &F<P, 2, false>) \
              : ((M) ? &F<P, 4, true> : &F<P, 4, false>))

    if (op < 0x40 && (op & 7) < 6) {
      const int alu_op = op >> 3;
      switch (op & 7) {
        case 0:
          modrm();
          return done(alu_handler(0, alu_op, 1, mem), next);
        case 1:
          modrm();
          return done(alu_handler(0, alu_op, osz, mem), next);
        case 2:
          modrm();
          return done(alu_handler(1, alu_op, 1, mem), next);
        case 3:
          modrm();
          return done(alu_handler(1, alu_op, osz, mem), next);
        case 4:
          d.rm = 0;
          d.imm = imm8();
          return done(alu_handler(2, alu_op, 1, false), next);
        case 5:
          d.rm = 0;
          d.imm = immv();
          return done(alu_handler(2, alu_op, osz, false), next);
      }
    }
    if (op >= 0x40 && op <= 0x4f) {
      d.rm = op & 7;
      if (op < 0x48) return done(REEL_BY_SIZE_P(false, osz, false, inc_dec), next);
      return done(REEL_BY_SIZE_P(true, osz, false, inc_dec), next);
    }
    if (op >= 0x50 && op <= 0x5f) {
      if (!op32) return general;
      d.reg = op & 7;
      return done(op < 0x58 ? &push_reg : &pop_reg, next);
    }
    if (op >= 0x70 && op <= 0x7f) {
      d.op = op & 0xf;
      d.disp = imm8s();
      return done(jcc_handler(d.op, !op32), next);
    }
    if (op >= 0x91 && op <= 0x97) {
      d.reg = 0;
      d.rm = op & 7;
      return done(REEL_BY_SIZE(osz, false, xchg), next);
    }
    if (op >= 0xb0 && op <= 0xb7) {
      d.rm = op & 7;
      d.imm = imm8();
      return done(&mov_rm_imm<1, false>, next);
    }
    if (op >= 0xb8 && op <= 0xbf) {
      d.rm = op & 7;
      d.imm = immv();
      return done(REEL_BY_SIZE(osz, false, mov_rm_imm), next);
    }
    switch (op) {
      case 0x68:
        if (!op32) return general;
        d.imm = imm32();
        return done(&push_imm, next);
      case 0x6a:
        if (!op32) return general;
        d.imm = imm8s();
        return done(&push_imm, next);
      case 0x69:
        if (!op32) return general;
        modrm();
        d.imm = imm32();
        return done(mem ? &imul2<true, true> : &imul2<false, true>, next);
      case 0x6b:
        if (!op32) return general;
        modrm();
        d.imm = imm8s();
        return done(mem ? &imul2<true, true> : &imul2<false, true>, next);
      case 0x80:
        modrm();
        d.imm = imm8();
        return done(alu_handler(2, d.reg, 1, mem), next);
      case 0x81:
        modrm();
        d.imm = immv();
        return done(alu_handler(2, d.reg, osz, mem), next);
      case 0x83:
        modrm();
        d.imm = imm8s();
        return done(alu_handler(2, d.reg, osz, mem), next);
      case 0x84:
        modrm();
        return done(alu_handler(0, 8, 1, mem), next);
      case 0x85:
        modrm();
        return done(alu_handler(0, 8, osz, mem), next);
      case 0x86:
        modrm();
        return done(REEL_BY_SIZE(1, mem, xchg), next);
      case 0x87:
        modrm();
        return done(REEL_BY_SIZE(osz, mem, xchg), next);
      case 0x88:
        modrm();
        return done(REEL_BY_SIZE(1, mem, mov_rm_r), next);
      case 0x89:
        modrm();
        return done(REEL_BY_SIZE(osz, mem, mov_rm_r), next);
      case 0x8a:
        modrm();
        return done(REEL_BY_SIZE(1, mem, mov_r_rm), next);
      case 0x8b:
        modrm();
        return done(REEL_BY_SIZE(osz, mem, mov_r_rm), next);
      case 0x8d:
        modrm();
        if (!mem) return general;  // #UD
        return done(op32 ? &lea<4> : &lea<2>, next);
      case 0x90:
        return done(&nop, next);
      case 0x98:
        if (!op32) return general;
        return done(&cwde, next);
      case 0x99:
        if (!op32) return general;
        return done(&cdq, next);
      case 0xa0:
      case 0xa1:
      case 0xa2:
      case 0xa3:
        d.base = d.index = 8;
        d.scale = 0;
        d.disp = addr32 ? imm32() : imm16();
        d.addr16 = !addr32;
        d.seg = static_cast<u8>(seg >= 0 ? seg : DS);
        d.reg = 0;
        if (op == 0xa0) return done(&mov_r_rm<1, true>, next);
        if (op == 0xa1) return done(REEL_BY_SIZE(osz, true, mov_r_rm), next);
        if (op == 0xa2) return done(&mov_rm_r<1, true>, next);
        return done(REEL_BY_SIZE(osz, true, mov_rm_r), next);
      case 0xa4:
      case 0xa5:
      case 0xaa:
      case 0xab:
      case 0xac:
      case 0xad:
      case 0xa6:
      case 0xa7:
      case 0xae:
      case 0xaf: {
        if (!addr32 || (!op32 && (op & 1))) return general;
        d.seg = static_cast<u8>(seg >= 0 ? seg : DS);  // the source; the destination is always ES
        static const H kOnce[5][2] = {{&string_once<0, 1>, &string_once<0, 4>},
                                      {&string_once<1, 1>, &string_once<1, 4>},
                                      {&string_once<2, 1>, &string_once<2, 4>},
                                      {&string_once<3, 1>, &string_once<3, 4>},
                                      {&string_once<4, 1>, &string_once<4, 4>}};
#define REEL_REP_ROW(K)                                     \
  {                                                         \
    {&string_rep<K, 1, false>, &string_rep<K, 4, false>}, { \
      &string_rep<K, 1, true>, &string_rep<K, 4, true>      \
    }                                                       \
  }
        static const H kRep[5][2][2] = {REEL_REP_ROW(0), REEL_REP_ROW(1), REEL_REP_ROW(2), REEL_REP_ROW(3),
                                        REEL_REP_ROW(4)};
#undef REEL_REP_ROW
        const int kind = op <= 0xa5 ? 0 : op <= 0xa7 ? 3 : op <= 0xab ? 1 : op <= 0xad ? 2 : 4;
        const int s = op & 1;
        return rep ? done(kRep[kind][repne ? 1 : 0][s], last) : done(kOnce[kind][s], next);
      }
      case 0xa8:
        d.rm = 0;
        d.imm = imm8();
        return done(alu_handler(2, 8, 1, false), next);
      case 0xa9:
        d.rm = 0;
        d.imm = immv();
        return done(alu_handler(2, 8, osz, false), next);
      case 0xc0:
      case 0xc1:
        modrm();
        d.imm = imm8();
        return done(shift_handler(d.reg, op == 0xc1 ? osz : 1, mem, false), next);
      case 0xd0:
      case 0xd1:
        modrm();
        d.imm = 1;
        return done(shift_handler(d.reg, op == 0xd1 ? osz : 1, mem, false), next);
      case 0xd2:
      case 0xd3:
        modrm();
        return done(shift_handler(d.reg, op == 0xd3 ? osz : 1, mem, true), next);
      case 0xc2:
        if (!op32) return general;
        d.imm = imm16();
        return done(&ret, last);
      case 0xc3:
        if (!op32) return general;
        d.imm = 0;
        return done(&ret, last);
      case 0xc6:
      case 0xc7: {
        modrm();
        if (d.reg != 0) return general;
        const unsigned s = op == 0xc6 ? 1 : osz;
        d.imm = s == 1 ? imm8() : immv();
        return done(REEL_BY_SIZE(s, mem, mov_rm_imm), next);
      }
      case 0xc9:
        if (!op32) return general;
        return done(&leave, next);
      case 0xe8:
        if (!op32) return general;
        d.disp = imm32();
        return done(&call_rel, last);
      case 0xe9:
        d.disp = op32 ? imm32() : cpu_flags::sext(imm16(), 2);
        return done(op32 ? &jmp_rel<false> : &jmp_rel<true>, last);
      case 0xeb:
        d.disp = imm8s();
        return done(op32 ? &jmp_rel<false> : &jmp_rel<true>, last);
      case 0xf5:
        return done(&cmc, next);
      case 0xf8:
        return done(&clc, next);
      case 0xf9:
        return done(&stc, next);
      case 0xfc:
        return done(&cld, next);
      case 0xfd:
        return done(&std_, next);
      case 0xf6:
      case 0xf7: {
        const unsigned s = op == 0xf7 ? osz : 1;
        modrm();
        switch (d.reg) {
          case 0:
            d.imm = s == 1 ? imm8() : immv();
            return done(alu_handler(2, 8, s, mem), next);
          case 2:
            return done(REEL_BY_SIZE_P(false, s, mem, not_neg), next);
          case 3:
            return done(REEL_BY_SIZE_P(true, s, mem, not_neg), next);
          case 4:
            return done(REEL_BY_SIZE_P(4, s, mem, muldiv), next);
          case 5:
            return done(REEL_BY_SIZE_P(5, s, mem, muldiv), next);
          case 6:
            return done(REEL_BY_SIZE_P(6, s, mem, muldiv), next);
          case 7:
            return done(REEL_BY_SIZE_P(7, s, mem, muldiv), next);
          default:
            return general;
        }
      }
      case 0xfe:
        modrm();
        if (d.reg == 0) return done(REEL_BY_SIZE_P(false, 1, mem, inc_dec), next);
        if (d.reg == 1) return done(REEL_BY_SIZE_P(true, 1, mem, inc_dec), next);
        return general;
      case 0xff:
        modrm();
        switch (d.reg) {
          case 0:
            return done(REEL_BY_SIZE_P(false, osz, mem, inc_dec), next);
          case 1:
            return done(REEL_BY_SIZE_P(true, osz, mem, inc_dec), next);
          case 2:
            if (!op32) return general;
            return done(mem ? &call_ind<true> : &call_ind<false>, last);
          case 4:
            if (!op32) return general;
            return done(mem ? &jmp_ind<true> : &jmp_ind<false>, last);
          case 6:
            if (!mem || !op32) return general;
            return done(&push_mem, next);
          default:
            return general;
        }
      case 0x0f: {
        const u8 op2 = p[pos++];
        if (op2 >= 0x80 && op2 <= 0x8f) {
          d.op = op2 & 0xf;
          d.disp = op32 ? imm32() : cpu_flags::sext(imm16(), 2);
          return done(jcc_handler(d.op, !op32), next);
        }
        if (op2 >= 0x90 && op2 <= 0x9f) {
          d.op = op2 & 0xf;
          modrm();
          return done(mem ? &setcc<true> : &setcc<false>, next);
        }
        if (!op32) return general;
        if (op2 >= 0x40 && op2 <= 0x4f) {
          d.op = op2 & 0xf;
          modrm();
          return done(mem ? &cmovcc<true> : &cmovcc<false>, next);
        }
        switch (op2) {
          case 0xaf:
            modrm();
            return done(mem ? &imul2<true, false> : &imul2<false, false>, next);
          case 0xb6:
            modrm();
            return done(mem ? &movx<1, false, true> : &movx<1, false, false>, next);
          case 0xb7:
            modrm();
            return done(mem ? &movx<2, false, true> : &movx<2, false, false>, next);
          case 0xbe:
            modrm();
            return done(mem ? &movx<1, true, true> : &movx<1, true, false>, next);
          case 0xbf:
            modrm();
            return done(mem ? &movx<2, true, true> : &movx<2, true, false>, next);
          default:
            return general;
        }
      }
      default:
        return general;
    }
#undef REEL_BY_SIZE
#undef REEL_BY_SIZE_P
  }
};

// ------------------------------------------------------------------ cache

void Cpu::on_code_write(u32 page) {
  if (page < m_page_gen.size()) ++m_page_gen[page];
  m_attention |= kAttentionStop;  // the running block may be the one just modified
}

const Cpu::DecodedBlock* Cpu::find_block(u32 phys, bool code32) {
  const u32 page = phys >> GuestMemory::kPageShift;
  // Code outside plain RAM (ROM behind the MMIO bus, the VGA hole) is not
  // cached: nothing would tell us when it changes.
  if (phys >= m_ram_size || (m_page_flags[page] & GuestMemory::kMmio)) return nullptr;
  // Fibonacci hashing: the top bits of the product mix every address bit.
  const u32 slot = (phys * 0x9e3779b1u) >> (32 - kBlockSlotBits);
  auto& chunk = m_block_chunks[slot >> kBlockChunkBits];
  // Chunks are made on first use, so a short run (start-up is an issue-2
  // target) does not pay for touching the whole table.
  if (!chunk) chunk = std::make_unique<DecodedBlock[]>(kBlockChunkSlots);
  DecodedBlock& b = chunk[slot & (kBlockChunkSlots - 1)];
  if (b.phys == phys && b.code32 == code32 && b.gen == m_page_gen[page] &&
      (m_page_flags[page] & GuestMemory::kHasCode)) {
    return &b;
  }
  decode_block(b, phys, code32);
  return &b;
}

void Cpu::decode_block(DecodedBlock& b, u32 phys, bool code32) {
  const u32 page = phys >> GuestMemory::kPageShift;
  m_memory.mark_code_page(page);
  b.phys = phys;
  b.code32 = code32;
  b.gen = m_page_gen[page];
  b.count = 0;
  b.bytes = 0;
  // Decoded into a scratch array first, then copied into storage sized to
  // the block.
  DecodedInsn scratch[kMaxBlockInsns];
  unsigned count = 0;
  u32 bytes = 0;
  const u8* page_bytes = m_ram + (page << GuestMemory::kPageShift);
  u32 at = phys & (GuestMemory::kPageSize - 1);
  while (count < kMaxBlockInsns) {
    // Pad the tail of the page, so the decoder can read 15 bytes; an
    // instruction reaching past the page is left to the general decoder.
    u8 window[16] = {};
    const u32 avail = GuestMemory::kPageSize - at;
    std::memcpy(window, page_bytes + at, std::min<u32>(avail, 15));
    DecodedInsn& d = scratch[count];
    BlockOps::Decoded kind = BlockOps::decode(window, code32, d);
    if (kind != BlockOps::Decoded::general && d.len > avail) kind = BlockOps::Decoded::general;
    if (kind == BlockOps::Decoded::general) {
      d = DecodedInsn{};
      d.fn = &BlockOps::general;
      ++count;
      break;
    }
    ++count;
    bytes += d.len;
    at += d.len;
    if (kind == BlockOps::Decoded::last || at >= GuestMemory::kPageSize) break;
  }
  if (count > b.capacity) {
    b.storage = std::make_unique<DecodedInsn[]>(count);
    b.capacity = static_cast<u16>(count);
    b.insns = b.storage.get();
  }
  std::copy(scratch, scratch + count, b.insns);
  b.count = static_cast<u16>(count);
  b.bytes = bytes;
}

// ------------------------------------------------------------------ loop

bool Cpu::handle_fault(const Fault& f) {
  m_eip = m_insn_start;
  try {
    deliver_fault(f);
  } catch (const Fault& f2) {
    if (f2.vector == 0xff) {
      m_delivering = -1;
      return false;
    }
    try {
      deliver_fault(f2);
    } catch (const Fault&) {
      m_delivering = -1;
      return false;
    }
  }
  if (m_block_hook) note_block(m_seg[CS].base + m_insn_start, m_seg[CS].base + m_insn_start, true);
  return true;
}

bool Cpu::execute(u64 limit) {
  u64& icount = m_clock.icount_ref();
  const u64 end = icount + limit;
  const DecodedInsn no_record;
  const DecodedBlock* b = nullptr;
  u32 block_eip = 0;
  u32 code_lin_page = 1, code_phys_page = 0;  // 1: no page yet
  m_attention = 0;
  try {
    do {
      // A loop that jumps back to the start of the block it is in needs no
      // lookup: only the general decoder (which stops the loop) can change
      // CS, and a write to the block's page stops it too.
      if (!b || m_eip != block_eip) {
        b = nullptr;
        // With a block hook (-d in_asm) every instruction goes through the
        // general decoder, which reports the blocks it runs.
        if (!m_block_hook) {
          const SegmentCache& cs = m_seg[CS];
          const u32 lin = cs.base + m_eip;
          // Most block changes stay in the code page of the last one: its
          // translation holds until this call returns, since a TLB flush
          // and every CPL change stop the loop (kAttentionStop).
          if ((lin & ~0xfffu) != code_lin_page) {
            code_phys_page = translate(lin & ~0xfffu, false);
            code_lin_page = lin & ~0xfffu;
          }
          b = find_block(code_phys_page | (lin & 0xfffu), (cs.attrs & 0x4000) != 0);
          // The block was decoded without looking at CS's limit.
          if (b && u64{m_eip} + b->bytes > u64{cs.limit} + 1) b = nullptr;
        }
        if (!b) {
          BlockOps::general(*this, no_record);
          ++icount;
          return true;
        }
        block_eip = m_eip;
      }
      const u64 n = std::min<u64>(b->count, end - icount);
      m_exec_end = icount + n;
      const DecodedInsn* d = b->insns;
      const DecodedInsn* const stop = d + n;
      do {
        d->fn(*this, *d);
        ++icount;
      } while (++d != stop && !m_attention);
      // Straight on to the next block unless something needs the loop in
      // run(): every instruction that can change IF, the interrupt shadow
      // or HLT runs through the general decoder, which raises m_attention.
      if (m_attention & kAttentionStop) return true;
      m_attention = 0;
    } while (icount < end);
  } catch (const Fault& f) {
    // Block handlers fault before they move EIP; the general decoder puts
    // it back itself.
    m_insn_start = m_eip;
    return handle_fault(f);
  }
  return true;
}

// Between instructions: ends the interrupt shadow and delivers a pending
// interrupt if IF allows. `inhibited` tells the caller the shadow covered
// this point. False when the delivery faulted into a shutdown. Shared by
// run() and run_debug(); inlined, as it sits on the hot path.
inline bool Cpu::take_interrupt(bool& inhibited) {
  // The interrupt shadow of STI / MOV SS / POP SS covers one instruction.
  inhibited = m_inhibit;
  m_inhibit = false;
  // IF is never part of the lazy flags, so m_eflags has it.
  if (m_intr_line && !inhibited && (m_eflags & cpu_flags::kIF) && m_pic) {
    m_halted = false;
    const u8 vector = m_pic->acknowledge();
    m_insn_start = m_eip;
    try {
      deliver(vector, false, false, 0, m_eip);
    } catch (const Fault& f) {
      if (!handle_fault(f)) return false;
    }
    if (m_block_hook && m_block_open) note_block(m_seg[CS].base + m_eip, m_seg[CS].base + m_eip, true);
  }
  return true;
}

CpuStop Cpu::run(u64 budget) {
  if (m_debug) [[unlikely]]
    return run_debug(budget);
  u64& icount = m_clock.icount_ref();
  const u64 end = icount + budget;
  if (m_halted && !interrupt_ready()) return CpuStop::halted;
  while (icount < end) {
    bool inhibited;
    if (!take_interrupt(inhibited)) return CpuStop::shutdown;
    if (m_halted) return CpuStop::halted;
    // Blocks end at every instruction that can change IF or the shadow, and
    // an INTR change stops them (m_attention), so checking between blocks
    // is checking between instructions.
    if (!execute(inhibited ? 1 : end - icount)) return CpuStop::shutdown;
    if (m_exit_requested) {
      m_exit_requested = false;
      return CpuStop::exit_requested;
    }
    if (m_halted) return CpuStop::halted;
  }
  return CpuStop::budget;
}

// The debugger's loop: run()'s, one instruction per execute() so EIP can be
// checked against the breakpoints before each. A REP instruction runs one
// iteration per pass and is checked once, when it starts.
CpuStop Cpu::run_debug(u64 budget) {
  u64& icount = m_clock.icount_ref();
  const u64 end = icount + budget;
  m_debug_stop = {};
  if (m_debug_break) {
    m_debug_break = false;
    m_debug_skip = false;
    update_debug_mode();
    m_debug_stop = {DebugStopKind::break_request, m_seg[CS].base + m_eip};
    return CpuStop::budget;
  }
  if (m_halted && !interrupt_ready()) return CpuStop::halted;
  u32 last = m_debug_skip ? m_seg[CS].base + m_eip : ~0u;
  m_debug_skip = false;
  while (icount < end) {
    // The last instruction changed a translation: the watched linear
    // pages may map elsewhere now.
    if (m_watch_flags_stale) flag_watched_pages();
    bool inhibited;
    if (!take_interrupt(inhibited)) return CpuStop::shutdown;
    if (m_halted) return CpuStop::halted;
    const u32 lin = m_seg[CS].base + m_eip;
    if (lin != last && std::binary_search(m_breakpoints.begin(), m_breakpoints.end(), lin)) {
      m_debug_stop = {DebugStopKind::breakpoint, lin};
      return CpuStop::budget;
    }
    last = lin;
    if (!execute(1)) return CpuStop::shutdown;
    if (m_debug_stop.kind != DebugStopKind::none) return CpuStop::budget;  // a watchpoint
    if (m_debug_break) {
      m_debug_break = false;
      update_debug_mode();
      m_debug_stop = {DebugStopKind::break_request, m_seg[CS].base + m_eip};
      return CpuStop::budget;
    }
    if (m_exit_requested) {
      m_exit_requested = false;
      return CpuStop::exit_requested;
    }
    if (m_halted) return CpuStop::halted;
  }
  return CpuStop::budget;
}

}  // namespace reel
