// Decoding and execution of one instruction. CpuExecutor is a friend of Cpu
// holding the decode state of the instruction in flight.

#include <cstring>

#include "core/cpu/cpu.h"
#include "core/cpu/cpu_ops.h"
#include "core/guest_memory.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel {

namespace {
constexpr u32 kCF = 1u << 0, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6, kSF = 1u << 7, kTF = 1u << 8,
              kIF = 1u << 9, kDF = 1u << 10, kOF = 1u << 11, kNT = 1u << 14, kAC = 1u << 18, kID = 1u << 21;
constexpr u32 kArith = kCF | kPF | kAF | kZF | kSF | kOF;
u32 size_mask(unsigned size) { return size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu; }
u32 sign_bit(unsigned size) { return size == 4 ? 0x80000000u : size == 2 ? 0x8000u : 0x80u; }
u32 sext(u32 v, unsigned size) {
  return size == 1   ? static_cast<u32>(static_cast<i32>(static_cast<i8>(v)))
         : size == 2 ? static_cast<u32>(static_cast<i32>(static_cast<i16>(v)))
                     : v;
}
enum Seg { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5 };
}  // namespace

class CpuExecutor {
 public:
  explicit CpuExecutor(Cpu& cpu) : c(cpu) {}
  void run_one();

 private:
  using LazyOp = Cpu::LazyOp;
  Cpu& c;
  u32 eip = 0;
  bool op32 = false, addr32 = false;
  int seg_ovr = -1;
  u8 rep = 0;
  bool lock = false;
  u32 fetch_end = 0;             // EIP just past the last byte fetched
  const u8* code_ptr = nullptr;  // host bytes at code_eip, when the fast path applies
  u32 code_eip = 0;
  bool ends_block = false;  // a control transfer (for -d in_asm blocks)
  // ModRM
  u8 mod = 0, reg = 0, rm = 0;
  int ea_seg = DS;
  u32 ea_off = 0;

  unsigned osize() const { return op32 ? 4 : 2; }
  u32 flags() const { return c.flags(); }
  bool flag(u32 f) const { return c.flags() & f; }
  void set_flag(u32 f, bool on) {
    c.materialize_flags();
    if (on) {
      c.m_eflags |= f;
    } else {
      c.m_eflags &= ~f;
    }
  }
  void set_arith(u32 res, unsigned size, bool cf, bool of, bool af) {
    CpuOps::set_arith(c, res, size, cf, of, af);
  }

  // ---- fetch
  u8 f8() {
    if (code_ptr) {
      // The whole 15-byte window is in one RAM page and inside CS's limit.
      ++eip;
      fetch_end = eip;
      return code_ptr[eip - 1 - code_eip];
    }
    const SegmentCache& cs = c.m_seg[CS];
    if (eip > cs.limit) c.fault(13, 0);
    const u32 lin = cs.base + eip;
    ++eip;
    fetch_end = eip;
    return static_cast<u8>(c.read_lin(lin, 1));
  }
  u16 f16() {
    const u16 lo = f8();
    return static_cast<u16>(lo | f8() << 8);
  }
  u32 f32() {
    const u32 lo = f16();
    return lo | u32{f16()} << 16;
  }
  u32 fimm(unsigned size) { return size == 1 ? f8() : size == 2 ? f16() : f32(); }

  // ---- registers
  u32 get_reg(unsigned size, int r) const {
    if (size == 4) return c.m_gpr[r];
    if (size == 2) return c.m_gpr[r] & 0xffff;
    return r < 4 ? (c.m_gpr[r] & 0xff) : ((c.m_gpr[r - 4] >> 8) & 0xff);
  }
  void set_reg(unsigned size, int r, u32 v) {
    if (size == 4) {
      c.m_gpr[r] = v;
    } else if (size == 2) {
      c.m_gpr[r] = (c.m_gpr[r] & 0xffff0000u) | (v & 0xffff);
    } else if (r < 4) {
      c.m_gpr[r] = (c.m_gpr[r] & 0xffffff00u) | (v & 0xff);
    } else {
      c.m_gpr[r - 4] = (c.m_gpr[r - 4] & 0xffff00ffu) | ((v & 0xff) << 8);
    }
  }

  // ---- ModRM
  void decode_modrm() {
    const u8 m = f8();
    mod = m >> 6;
    reg = (m >> 3) & 7;
    rm = m & 7;
    if (mod == 3) return;
    int def = DS;
    u32 off = 0;
    if (addr32) {
      int base = rm;
      if (rm == 4) {
        const u8 sib = f8();
        const int scale = sib >> 6, index = (sib >> 3) & 7;
        base = sib & 7;
        if (index != 4) off += c.m_gpr[index] << scale;
        if (base == 5 && mod == 0) {
          off += f32();
        } else {
          off += c.m_gpr[base];
          if (base == 4 || base == 5) def = SS;
        }
      } else if (rm == 5 && mod == 0) {
        off = f32();
      } else {
        off = c.m_gpr[rm];
        if (rm == 5) def = SS;
      }
      if (mod == 1) off += sext(f8(), 1);
      if (mod == 2) off += f32();
    } else {
      const u32 bx = c.m_gpr[3] & 0xffff, bp = c.m_gpr[5] & 0xffff, si = c.m_gpr[6] & 0xffff,
                di = c.m_gpr[7] & 0xffff;
      switch (rm) {
        case 0:
          off = bx + si;
          break;
        case 1:
          off = bx + di;
          break;
        case 2:
          off = bp + si;
          def = SS;
          break;
        case 3:
          off = bp + di;
          def = SS;
          break;
        case 4:
          off = si;
          break;
        case 5:
          off = di;
          break;
        case 6:
          if (mod == 0) {
            off = f16();
          } else {
            off = bp;
            def = SS;
          }
          break;
        case 7:
          off = bx;
          break;
      }
      if (mod == 1) off += sext(f8(), 1);
      if (mod == 2) off += f16();
      off &= 0xffff;
    }
    ea_seg = seg_ovr >= 0 ? seg_ovr : def;
    ea_off = off;
  }
  u32 get_rm(unsigned size) {
    if (mod == 3) return get_reg(size, rm);
    return c.read_mem(ea_seg, ea_off, size);
  }
  // The source of a read-modify-write: a destination the instruction may
  // not write faults here, before any flag changes.
  u32 get_rm_rmw(unsigned size) {
    if (mod != 3) c.seg_linear(ea_seg, ea_off, size, true);
    return get_rm(size);
  }
  void set_rm(unsigned size, u32 v) {
    if (mod == 3) {
      set_reg(size, rm, v);
    } else {
      c.write_mem(ea_seg, ea_off, size, v);
    }
  }
  void need_memory() {
    if (mod == 3) c.fault_noerr(6);
  }

  // ---- ALU (shared with the block handlers)
  u32 alu(int op, unsigned size, u32 a, u32 b) { return CpuOps::alu(c, op, size, a, b); }
  u32 inc_dec(bool dec, unsigned size, u32 v) { return CpuOps::inc_dec(c, dec, size, v); }
  bool cond(unsigned cc) const { return CpuOps::cond(c, cc); }
  u32 shift(int op, unsigned size, u32 v, unsigned count) { return CpuOps::shift(c, op, size, v, count); }

  // ---- control transfer
  void jump_near(u32 target) {
    if (!op32) target &= 0xffff;
    if (target > c.m_seg[CS].limit) c.fault(13, 0);
    eip = target;
  }
  // CALL checks the target against CS's limit before it pushes anything.
  void call_near(u32 target) {
    if (!op32) target &= 0xffff;
    if (target > c.m_seg[CS].limit) c.fault(13, 0);
    c.push(eip, osize());
    eip = target;
  }

  // ---- string instructions: one iteration per retired instruction
  u32 si() const { return addr32 ? c.m_gpr[6] : (c.m_gpr[6] & 0xffff); }
  u32 di() const { return addr32 ? c.m_gpr[7] : (c.m_gpr[7] & 0xffff); }
  u32 cx() const { return addr32 ? c.m_gpr[1] : (c.m_gpr[1] & 0xffff); }
  void adv(int r, unsigned size) {
    const u32 delta = flag(kDF) ? static_cast<u32>(-static_cast<i32>(size)) : size;
    if (addr32) {
      c.m_gpr[r] += delta;
    } else {
      c.m_gpr[r] = (c.m_gpr[r] & 0xffff0000u) | ((c.m_gpr[r] + delta) & 0xffff);
    }
  }
  void dec_cx() {
    if (addr32) {
      --c.m_gpr[1];
    } else {
      c.m_gpr[1] = (c.m_gpr[1] & 0xffff0000u) | ((c.m_gpr[1] - 1) & 0xffff);
    }
  }
  // Returns true when the REP continues (re-execute this instruction).
  void string_op(u8 op, unsigned size) {
    if (rep && cx() == 0) return;
    const int src_seg = seg_ovr >= 0 ? seg_ovr : DS;
    bool compare = false;
    switch (op) {
      case 0xa4:
        c.write_mem(ES, di(), size, c.read_mem(src_seg, si(), size));
        adv(6, size);
        adv(7, size);
        break;
      case 0xa6: {
        const u32 a = c.read_mem(src_seg, si(), size), b = c.read_mem(ES, di(), size);
        alu(7, size, a, b);
        adv(6, size);
        adv(7, size);
        compare = true;
        break;
      }
      case 0xaa:
        c.write_mem(ES, di(), size, get_reg(size, 0));
        adv(7, size);
        break;
      case 0xac:
        set_reg(size, 0, c.read_mem(src_seg, si(), size));
        adv(6, size);
        break;
      case 0xae:
        alu(7, size, get_reg(size, 0), c.read_mem(ES, di(), size));
        adv(7, size);
        compare = true;
        break;
      case 0x6c: {
        const u16 port = c.m_gpr[2] & 0xffff;
        c.check_io(port, size);
        c.write_mem(ES, di(), size, 0);  // fault before the port is read
        c.write_mem(ES, di(), size, c.m_ports.read(port, size));
        adv(7, size);
        break;
      }
      case 0x6e: {
        const u16 port = c.m_gpr[2] & 0xffff;
        c.check_io(port, size);
        c.m_ports.write(port, size, c.read_mem(src_seg, si(), size));
        adv(6, size);
        break;
      }
    }
    if (!rep) return;
    dec_cx();
    bool again = cx() != 0;
    if (compare) again = again && ((rep == 0xf3) ? flag(kZF) : !flag(kZF));
    if (again) eip = c.m_insn_start;  // the next retired instruction is the next iteration
  }

  void exec_0f();
  void group1(u8 op);
  void group3(unsigned size);
  void group5();
  void do_mul(unsigned size, bool is_signed, u32 src);
  void do_div(unsigned size, bool is_signed, u32 src);
  void bit_op(int kind, bool imm);
  void load_far_pointer(int seg);
  void system_group6();
  void system_group7();
  void enter();
  void io_in(u16 port, unsigned size);
  void io_out(u16 port, unsigned size);
  bool cpl0_or_real() const { return !c.protected_mode() || c.m_cpl == 0; }
  bool io_privileged() const { return !c.protected_mode() || c.m_cpl <= ((flags() >> 12) & 3); }
  void soft_int(u8 vector) {
    c.deliver(vector, true, false, 0, eip);
    eip = c.m_eip;
  }
  void bcd_adjust(u8 op);
  // LOCK is only valid on read-modify-write instructions with a memory
  // destination; anything else is #UD. Peeks at the ModRM without
  // consuming it.
  void check_lock(u8 op) {
    const u32 save = eip, save_end = fetch_end;
    bool ok = false;
    u8 op2 = 0;
    if (op == 0x0f) op2 = f8();
    const bool has_modrm = op == 0x0f || (op < 0x40 && (op & 7) < 4) || (op >= 0x80 && op <= 0x83) ||
                           op == 0x86 || op == 0x87 || op == 0xf6 || op == 0xf7 || op == 0xfe || op == 0xff;
    if (has_modrm) {
      const u8 m = f8();
      const bool memory = (m >> 6) != 3;
      const unsigned r = (m >> 3) & 7;
      if (op == 0x0f) {
        ok = memory && (op2 == 0xab || op2 == 0xb3 || op2 == 0xbb || op2 == 0xb0 || op2 == 0xb1 ||
                        op2 == 0xc0 || op2 == 0xc1 || (op2 == 0xba && r >= 5) || (op2 == 0xc7 && r == 1));
      } else if (op < 0x40) {
        ok = memory && (op & 7) < 2 && (op >> 3) != 7;  // ALU with memory destination, not CMP
      } else if (op >= 0x80 && op <= 0x83) {
        ok = memory && r != 7;
      } else if (op == 0x86 || op == 0x87) {
        ok = memory;
      } else if (op == 0xf6 || op == 0xf7) {
        ok = memory && (r == 2 || r == 3);  // NOT, NEG
      } else {
        ok = memory && r < 2;  // INC, DEC
      }
    }
    eip = save;
    fetch_end = save_end;
    if (!ok) c.fault_noerr(6);
  }
};

void Cpu::step() {
  CpuExecutor x(*this);
  x.run_one();
}

void CpuExecutor::io_in(u16 port, unsigned size) {
  c.check_io(port, size);
  set_reg(size, 0, c.m_ports.read(port, size));
}

void CpuExecutor::io_out(u16 port, unsigned size) {
  c.check_io(port, size);
  c.m_ports.write(port, size, get_reg(size, 0));
}

void CpuExecutor::do_mul(unsigned size, bool is_signed, u32 src) { CpuOps::mul(c, size, is_signed, src); }

void CpuExecutor::do_div(unsigned size, bool is_signed, u32 src) { CpuOps::div(c, size, is_signed, src); }

void CpuExecutor::group3(unsigned size) {
  decode_modrm();
  switch (reg) {
    case 0:
    case 1: {
      const u32 v = get_rm(size);
      alu(4, size, v, fimm(size));
      break;
    }
    case 2:
      set_rm(size, ~get_rm_rmw(size));
      break;
    case 3: {
      const u32 v = get_rm_rmw(size);
      const u32 r = alu(5, size, 0, v);
      set_rm(size, r);
      break;
    }
    case 4:
      do_mul(size, false, get_rm(size));
      break;
    case 5:
      do_mul(size, true, get_rm(size));
      break;
    case 6:
      do_div(size, false, get_rm(size));
      break;
    case 7:
      do_div(size, true, get_rm(size));
      break;
  }
}

void CpuExecutor::group5() {
  decode_modrm();
  const unsigned size = osize();
  switch (reg) {
    case 0:
      set_rm(size, inc_dec(false, size, get_rm_rmw(size)));
      break;
    case 1:
      set_rm(size, inc_dec(true, size, get_rm_rmw(size)));
      break;
    case 2: {
      call_near(get_rm(size));
      break;
    }
    case 3:
    case 5: {
      need_memory();
      const u32 off = c.read_mem(ea_seg, ea_off, size);
      const u16 sel = static_cast<u16>(c.read_mem(ea_seg, ea_off + size, 2));
      c.m_eip = eip;
      c.far_jump(sel, off, reg == 3, size, eip);
      eip = c.m_eip;
      break;
    }
    case 4:
      jump_near(get_rm(size));
      break;
    case 6:
      c.push(get_rm(size), size);
      break;
    default:
      c.fault_noerr(6);
  }
}

void CpuExecutor::bit_op(int kind, bool imm) {
  // kind: 0 BT, 1 BTS, 2 BTR, 3 BTC
  decode_modrm();
  const unsigned size = osize();
  u32 bit;
  if (imm) {
    bit = f8() & (size * 8 - 1);
  } else {
    bit = get_reg(size, reg);
  }
  u32 v;
  if (mod == 3 || imm) {
    bit &= size * 8 - 1;
    v = kind ? get_rm_rmw(size) : get_rm(size);
  } else {
    // A register bit offset reaches beyond the addressed operand.
    const i32 sbit = size == 2 ? static_cast<i16>(bit) : static_cast<i32>(bit);
    const i32 units = sbit >> (size == 2 ? 4 : 5);
    ea_off += static_cast<u32>(units * static_cast<i32>(size));
    if (!addr32) ea_off &= 0xffff;
    bit = static_cast<u32>(sbit) & (size * 8 - 1);
    v = kind ? get_rm_rmw(size) : get_rm(size);
  }
  const bool old = (v >> bit) & 1;
  c.materialize_flags();
  c.m_eflags = (c.m_eflags & ~kCF) | (old ? kCF : 0);
  if (kind == 0) return;
  if (kind == 1) v |= 1u << bit;
  if (kind == 2) v &= ~(1u << bit);
  if (kind == 3) v ^= 1u << bit;
  set_rm(size, v);
}

void CpuExecutor::load_far_pointer(int seg) {
  decode_modrm();
  need_memory();
  const unsigned size = osize();
  const u32 off = c.read_mem(ea_seg, ea_off, size);
  const u16 sel = static_cast<u16>(c.read_mem(ea_seg, ea_off + size, 2));
  c.load_segment(seg, sel);
  // Unlike MOV SS and POP SS, LSS opens no interrupt shadow (SDM vol. 3, 6.8.3).
  set_reg(size, reg, off);
}

void CpuExecutor::enter() {
  const u16 alloc = f16();
  const u8 level = f8() & 0x1f;
  const unsigned size = osize();
  const bool s32 = c.stack32();
  u32 ebp = s32 ? c.m_gpr[5] : (c.m_gpr[5] & 0xffff);
  c.push(c.m_gpr[5], size);
  const u32 frame = s32 ? c.m_gpr[4] : (c.m_gpr[4] & 0xffff);
  for (unsigned i = 1; i < level; ++i) {
    ebp -= size;
    c.push(c.read_mem(SS, s32 ? ebp : (ebp & 0xffff), size), size);
  }
  if (level) c.push(frame, size);
  set_reg(size, 5, frame);
  if (s32) {
    c.m_gpr[4] -= alloc;
  } else {
    c.m_gpr[4] = (c.m_gpr[4] & 0xffff0000u) | ((c.m_gpr[4] - alloc) & 0xffff);
  }
}

void CpuExecutor::bcd_adjust(u8 op) {
  const u32 f = flags();
  u32 al = c.m_gpr[0] & 0xff;
  bool cf = f & kCF, af = f & kAF;
  switch (op) {
    case 0x27: {  // DAA
      const u32 old_al = al;
      const bool old_cf = cf;
      cf = false;
      if ((al & 0xf) > 9 || af) {
        al += 6;
        cf = old_cf || al > 0xff;
        af = true;
      } else {
        af = false;
      }
      if (old_al > 0x99 || old_cf) {
        al += 0x60;
        cf = true;
      }
      al &= 0xff;
      set_reg(1, 0, al);
      set_arith(al, 1, cf, false, af);  // OF is undefined; reel clears it
      break;
    }
    case 0x2f: {  // DAS
      const u32 old_al = al;
      const bool old_cf = cf;
      cf = false;
      if ((al & 0xf) > 9 || af) {
        cf = old_cf || al < 6;
        al = (al - 6) & 0xff;
        af = true;
      } else {
        af = false;
      }
      if (old_al > 0x99 || old_cf) {
        al = (al - 0x60) & 0xff;
        cf = true;
      }
      set_reg(1, 0, al);
      set_arith(al, 1, cf, false, af);
      break;
    }
    case 0x37:    // AAA
    case 0x3f: {  // AAS
      if ((al & 0xf) > 9 || af) {
        const u32 ax = c.m_gpr[0] & 0xffff;
        u32 nax = op == 0x37 ? ax + 0x106 : ax - 0x106;
        nax = (nax & 0xff00) | ((op == 0x37 ? ax + 6 : ax - 6) & 0x0f);
        set_reg(2, 0, nax);
        cf = af = true;
      } else {
        set_reg(1, 0, al & 0x0f);
        cf = af = false;
      }
      set_arith(c.m_gpr[0] & 0xff, 1, cf, false, af);
      break;
    }
  }
}

void CpuExecutor::system_group6() {
  decode_modrm();
  if (!c.protected_mode()) c.fault_noerr(6);
  switch (reg) {
    case 0:
      set_rm(mod == 3 ? osize() : 2, c.m_ldtr.selector);
      break;  // SLDT
    case 1:
      set_rm(mod == 3 ? osize() : 2, c.m_tr.selector);
      break;   // STR
    case 2: {  // LLDT
      if (c.m_cpl != 0) c.fault(13, 0);
      const u16 sel = static_cast<u16>(get_rm(2));
      if ((sel & 0xfffc) == 0) {
        c.m_ldtr = SegmentCache{sel, 0, 0, 0};
        break;
      }
      if (sel & 4) c.fault(13, sel & 0xfffc);
      const u64 d = c.read_descriptor(sel);
      if (((d >> 40) & 0x1f) != 0x02) c.fault(13, sel & 0xfffc);
      if (!(d & (1ull << 47))) c.fault(11, sel & 0xfffc);
      c.m_ldtr.selector = sel;
      c.m_ldtr.base = static_cast<u32>(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
      u32 limit = static_cast<u32>((d & 0xffff) | ((d >> 32) & 0xf0000));
      if (d & (1ull << 55)) limit = (limit << 12) | 0xfff;
      c.m_ldtr.limit = limit;
      c.m_ldtr.attrs = static_cast<u16>((d >> 40) & 0xf0ff);
      break;
    }
    case 3: {  // LTR
      if (c.m_cpl != 0) c.fault(13, 0);
      const u16 sel = static_cast<u16>(get_rm(2));
      if ((sel & 0xfffc) == 0 || (sel & 4)) c.fault(13, sel & 0xfffc);
      const u64 d = c.read_descriptor(sel);
      const unsigned type = (d >> 40) & 0x1f;
      if (type != 0x01 && type != 0x09) c.fault(13, sel & 0xfffc);  // available TSS only
      if (!(d & (1ull << 47))) c.fault(11, sel & 0xfffc);
      // Mark it busy in the GDT.
      c.write_sys(c.m_gdtr.base + (sel & 0xfff8u) + 5, 1, static_cast<u8>((d >> 40) | 0x02));
      c.m_tr.selector = sel;
      c.m_tr.base = static_cast<u32>(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
      u32 limit = static_cast<u32>((d & 0xffff) | ((d >> 32) & 0xf0000));
      if (d & (1ull << 55)) limit = (limit << 12) | 0xfff;
      c.m_tr.limit = limit;
      c.m_tr.attrs = static_cast<u16>(((d >> 40) & 0xf0ff) | 0x02);
      break;
    }
    case 4:
    case 5: {  // VERR / VERW
      const u16 sel = static_cast<u16>(get_rm(2));
      bool ok = false;
      if ((sel & 0xfffc) != 0) {
        const u32 base = (sel & 4) ? c.m_ldtr.base : c.m_gdtr.base;
        const u32 limit = (sel & 4) ? c.m_ldtr.limit : c.m_gdtr.limit;
        if ((sel & 0xfff8u) + 7 <= limit) {
          const u64 d = u64{c.read_sys(base + (sel & 0xfff8u), 4)} |
                        u64{c.read_sys(base + (sel & 0xfff8u) + 4, 4)} << 32;
          const bool code = (d >> 43) & 1, s = (d >> 44) & 1;
          const unsigned dpl = (d >> 45) & 3, type = (d >> 40) & 0xf;
          const bool conforming = code && (type & 4);
          const bool priv_ok = conforming || (dpl >= c.m_cpl && dpl >= (sel & 3u));
          if (s && priv_ok) ok = reg == 4 ? (!code || (type & 2)) : (!code && (type & 2));
        }
      }
      set_flag(kZF, ok);
      break;
    }
    default:
      c.fault_noerr(6);
  }
}

void CpuExecutor::system_group7() {
  decode_modrm();
  switch (reg) {
    case 0:
    case 1: {  // SGDT / SIDT
      need_memory();
      const DescriptorTableReg& t = reg == 0 ? c.m_gdtr : c.m_idtr;
      c.write_mem(ea_seg, ea_off, 2, t.limit);
      c.write_mem(ea_seg, ea_off + 2, 4, op32 ? t.base : (t.base & 0x00ffffffu));
      break;
    }
    case 2:
    case 3: {  // LGDT / LIDT
      need_memory();
      if (!cpl0_or_real()) c.fault(13, 0);
      const u16 limit = static_cast<u16>(c.read_mem(ea_seg, ea_off, 2));
      u32 base = c.read_mem(ea_seg, ea_off + 2, 4);
      if (!op32) base &= 0x00ffffffu;
      DescriptorTableReg& t = reg == 2 ? c.m_gdtr : c.m_idtr;
      t.limit = limit;
      t.base = base;
      break;
    }
    case 4:
      set_rm(mod == 3 ? osize() : 2, c.m_cr0 & (mod == 3 && op32 ? 0xffffffffu : 0xffffu));
      break;   // SMSW
    case 6: {  // LMSW: PE can be set but not cleared
      if (!cpl0_or_real()) c.fault(13, 0);
      const u32 v = get_rm(2) & 0xf;
      c.m_cr0 = (c.m_cr0 & ~0xeu) | (v & 0xe) | (c.m_cr0 & 1) | (v & 1);
      c.paging_changed();
      break;
    }
    case 7:  // INVLPG: drops the translation of the operand's linear address
      need_memory();
      if (!cpl0_or_real()) c.fault(13, 0);
      c.tlb_flush_page(c.m_seg[ea_seg].base + ea_off);
      break;
    default:
      c.fault_noerr(6);
  }
}

void CpuExecutor::exec_0f() {
  const u8 op = f8();
  const unsigned size = osize();
  if (op >= 0x80 && op <= 0x8f) {  // Jcc rel16/32
    ends_block = true;
    const u32 disp = op32 ? f32() : sext(f16(), 2);
    if (cond(op & 0xf)) jump_near(eip + disp);
    return;
  }
  if (op >= 0x90 && op <= 0x9f) {  // SETcc
    decode_modrm();
    set_rm(1, cond(op & 0xf) ? 1 : 0);
    return;
  }
  if (op >= 0x40 && op <= 0x4f) {  // CMOVcc (reads the source even when false)
    decode_modrm();
    const u32 v = get_rm(size);
    if (cond(op & 0xf)) set_reg(size, reg, v);
    return;
  }
  if (op >= 0xc8 && op <= 0xcf) {  // BSWAP
    const int r = op & 7;
    if (op32) {
      c.m_gpr[r] = __builtin_bswap32(c.m_gpr[r]);
    } else {
      set_reg(2, r, 0);  // undefined for 16-bit operands; reel zeroes, as later parts do
    }
    return;
  }
  switch (op) {
    case 0x00:
      system_group6();
      return;
    case 0x01:
      system_group7();
      return;
    case 0x02:
    case 0x03: {  // LAR / LSL
      decode_modrm();
      if (!c.protected_mode()) c.fault_noerr(6);
      const u16 sel = static_cast<u16>(get_rm(2));
      bool ok = false;
      u64 d = 0;
      if ((sel & 0xfffc) != 0) {
        const u32 base = (sel & 4) ? c.m_ldtr.base : c.m_gdtr.base;
        const u32 limit = (sel & 4) ? c.m_ldtr.limit : c.m_gdtr.limit;
        if ((sel & 0xfff8u) + 7 <= limit) {
          d = u64{c.read_sys(base + (sel & 0xfff8u), 4)} | u64{c.read_sys(base + (sel & 0xfff8u) + 4, 4)}
                                                               << 32;
          const bool s = (d >> 44) & 1, code = (d >> 43) & 1;
          const unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
          const bool conforming = s && code && (type & 4);
          bool type_ok = s;
          if (!s) {
            type_ok = op == 0x02 ? (type == 1 || type == 2 || type == 3 || type == 4 || type == 5 ||
                                    type == 9 || type == 0xb || type == 0xc)
                                 : (type == 1 || type == 2 || type == 3 || type == 9 || type == 0xb);
          }
          ok = type_ok && (conforming || (dpl >= c.m_cpl && dpl >= (sel & 3u)));
        }
      }
      if (ok) {
        if (op == 0x02) {
          set_reg(size, reg, static_cast<u32>(d >> 32) & 0x00f0ff00u);
        } else {
          u32 limit = static_cast<u32>((d & 0xffff) | ((d >> 32) & 0xf0000));
          if (d & (1ull << 55)) limit = (limit << 12) | 0xfff;
          set_reg(size, reg, limit);
        }
      }
      set_flag(kZF, ok);
      return;
    }
    case 0x06:  // CLTS
      if (!cpl0_or_real()) c.fault(13, 0);
      c.m_cr0 &= ~8u;
      return;
    case 0x08:
    case 0x09:  // INVD, WBINVD: no caches to flush
      if (!cpl0_or_real()) c.fault(13, 0);
      return;
    case 0x0b:
      c.fault_noerr(6);  // UD2
    case 0x1f:
      decode_modrm();
      return;  // multi-byte NOP
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23: {  // MOV to/from CRn/DRn: the ModRM always names registers
      decode_modrm();
      if (!cpl0_or_real()) c.fault(13, 0);
      if (op == 0x20) {
        u32 v;
        switch (reg) {
          case 0:
            v = c.m_cr0;
            break;
          case 2:
            v = c.m_cr2;
            break;
          case 3:
            v = c.m_cr3;
            break;
          case 4:
            v = c.m_cr4;
            break;
          default:
            c.fault_noerr(6);
        }
        c.m_gpr[rm] = v;
      } else if (op == 0x22) {
        const u32 v = c.m_gpr[rm];
        switch (reg) {
          case 0:
            if ((v & 0x80000000u) && !(v & 1)) c.fault(13, 0);  // PG without PE
            c.m_cr0 = v | 0x10;                                 // ET is hard-wired on the 486
            if (!(c.m_cr0 & 1)) c.m_cpl = 0;
            c.paging_changed();
            break;
          case 2:
            c.m_cr2 = v;
            break;
          case 3:
            c.m_cr3 = v;
            c.paging_changed();
            break;
          case 4:
            c.m_cr4 = v;
            c.paging_changed();
            break;
          default:
            c.fault_noerr(6);
        }
      } else if (op == 0x21) {
        c.m_gpr[rm] = c.m_dr[reg];
      } else {
        c.m_dr[reg] = c.m_gpr[rm];
      }
      return;
    }
    case 0x31:  // RDTSC: a 1 GHz counter of virtual time
      if ((c.m_cr4 & 4) && c.protected_mode() && c.m_cpl != 0) c.fault(13, 0);
      {
        const u64 t = c.m_clock.now_ns();
        c.m_gpr[0] = static_cast<u32>(t);
        c.m_gpr[2] = static_cast<u32>(t >> 32);
      }
      return;
    case 0xa2: {  // CPUID: a 486 (family 4) with TSC and CMPXCHG8B, no FPU
      const u32 leaf = c.m_gpr[0];
      if (leaf == 0) {
        c.m_gpr[0] = 1;
        c.m_gpr[3] = 0x756e6547;  // "Genu"
        c.m_gpr[2] = 0x49656e69;  // "ineI"
        c.m_gpr[1] = 0x6c65746e;  // "ntel"
      } else {
        c.m_gpr[0] = 0x0480;  // family 4, model 8
        c.m_gpr[3] = 0;
        c.m_gpr[1] = 0;
        c.m_gpr[2] = (1u << 4) | (1u << 8);
      }
      return;
    }
    case 0xa0:
      c.push(c.m_seg[FS].selector, size);
      return;
    case 0xa1:
      c.load_segment(FS, static_cast<u16>(c.pop(size)));
      return;
    case 0xa8:
      c.push(c.m_seg[GS].selector, size);
      return;
    case 0xa9:
      c.load_segment(GS, static_cast<u16>(c.pop(size)));
      return;
    case 0xa3:
      bit_op(0, false);
      return;
    case 0xab:
      bit_op(1, false);
      return;
    case 0xb3:
      bit_op(2, false);
      return;
    case 0xbb:
      bit_op(3, false);
      return;
    case 0xba: {
      // Peek the ModRM reg field to choose the operation; bit_op decodes it.
      const u32 save = eip;
      const u8 m = f8();
      eip = save;
      const int r = (m >> 3) & 7;
      if (r < 4) c.fault_noerr(6);
      bit_op(r - 4, true);
    }
      return;
    case 0xa4:
    case 0xa5:
    case 0xac:
    case 0xad: {  // SHLD / SHRD
      decode_modrm();
      const u32 dst = get_rm_rmw(size);
      const u32 src = get_reg(size, reg);
      const unsigned count = ((op & 1) ? (c.m_gpr[1] & 0xff) : f8()) & 0x1f;
      if (count == 0) return;
      const unsigned bits = size * 8;
      u32 r;
      bool cf;
      if (op == 0xa4 || op == 0xa5) {
        // dst in the top `bits` of a 64-bit word, src right below it.
        const u64 wide = (u64{dst} << (64 - bits)) | (u64{src} << (64 - 2 * bits));
        r = static_cast<u32>((wide << count) >> (64 - bits));
        cf = (wide >> (64 - count)) & 1;
      } else {
        const u64 wide = (u64{src} << bits) | dst;
        r = static_cast<u32>(wide >> count) & size_mask(size);
        cf = (wide >> (count - 1)) & 1;
      }
      r &= size_mask(size);
      const bool of = ((r ^ dst) & sign_bit(size)) != 0;
      set_arith(r, size, cf, of, false);
      set_rm(size, r);
      return;
    }
    case 0xaf: {  // IMUL Gv, Ev
      decode_modrm();
      const u32 src = get_rm(size);
      const i64 p = static_cast<i64>(static_cast<i32>(sext(get_reg(size, reg), size))) *
                    static_cast<i32>(sext(src, size));
      const u32 r = static_cast<u32>(p) & size_mask(size);
      const bool wide = p != static_cast<i64>(static_cast<i32>(sext(r, size)));
      set_reg(size, reg, r);
      set_arith(r, size, wide, wide, false);
      return;
    }
    case 0xb0:
    case 0xb1: {  // CMPXCHG
      const unsigned s = op == 0xb0 ? 1 : size;
      decode_modrm();
      const u32 dst = get_rm_rmw(s);
      alu(7, s, get_reg(s, 0), dst);
      if ((get_reg(s, 0) & size_mask(s)) == (dst & size_mask(s))) {
        set_rm(s, get_reg(s, reg));
      } else {
        set_rm(s, dst);  // the 486 always writes the destination
        set_reg(s, 0, dst);
      }
      return;
    }
    case 0xb2:
      load_far_pointer(SS);
      return;
    case 0xb4:
      load_far_pointer(FS);
      return;
    case 0xb5:
      load_far_pointer(GS);
      return;
    case 0xb6:
    case 0xb7:
    case 0xbe:
    case 0xbf: {  // MOVZX / MOVSX
      const unsigned src_size = (op & 1) ? 2 : 1;
      decode_modrm();
      u32 v = get_rm(src_size);
      if (op >= 0xbe) v = sext(v, src_size);
      set_reg(size, reg, v);
      return;
    }
    case 0xbc:
    case 0xbd: {  // BSF / BSR
      decode_modrm();
      const u32 v = get_rm(size) & size_mask(size);
      if (v == 0) {
        set_flag(kZF, true);  // destination unchanged
        return;
      }
      set_reg(size, reg, op == 0xbc ? __builtin_ctz(v) : 31 - __builtin_clz(v));
      set_flag(kZF, false);
      return;
    }
    case 0xc0:
    case 0xc1: {  // XADD
      const unsigned s = op == 0xc0 ? 1 : size;
      decode_modrm();
      const u32 dst = get_rm_rmw(s), src = get_reg(s, reg);
      const u32 sum = alu(0, s, dst, src);
      set_reg(s, reg, dst);
      set_rm(s, sum);
      return;
    }
    case 0xc7: {  // CMPXCHG8B
      decode_modrm();
      if (reg != 1) c.fault_noerr(6);
      need_memory();
      const u32 lo = c.read_mem(ea_seg, ea_off, 4), hi = c.read_mem(ea_seg, ea_off + 4, 4);
      if (lo == c.m_gpr[0] && hi == c.m_gpr[2]) {
        c.write_mem(ea_seg, ea_off, 4, c.m_gpr[3]);
        c.write_mem(ea_seg, ea_off + 4, 4, c.m_gpr[1]);
        set_flag(kZF, true);
      } else {
        c.write_mem(ea_seg, ea_off, 4, lo);
        c.write_mem(ea_seg, ea_off + 4, 4, hi);
        c.m_gpr[0] = lo;
        c.m_gpr[2] = hi;
        set_flag(kZF, false);
      }
      return;
    }
    default:
      c.fault_noerr(6);
  }
}

void CpuExecutor::run_one() {
  eip = c.m_eip;
  {
    // Fetch straight from RAM when the longest possible instruction fits
    // in one page of plain RAM and inside the code segment.
    const SegmentCache& cs = c.m_seg[CS];
    const u32 phys = c.translate(cs.base + eip, false);
    const u32 page = phys >> GuestMemory::kPageShift;
    if ((phys & (GuestMemory::kPageSize - 1)) <= GuestMemory::kPageSize - 15 &&
        u64{phys} + 15 <= c.m_ram_size && !(c.m_page_flags[page] & GuestMemory::kMmio) && eip <= cs.limit &&
        cs.limit - eip >= 14) {
      code_ptr = c.m_ram + phys;
      code_eip = eip;
    }
  }
  const bool code32 = c.m_seg[CS].attrs & 0x4000;
  op32 = addr32 = code32;
  u8 op;
  // Prefixes (a 486 accepts any number within the 15-byte limit).
  for (int n = 0;; ++n) {
    if (n >= 15) c.fault(13, 0);
    op = f8();
    switch (op) {
      case 0x26:
        seg_ovr = ES;
        continue;
      case 0x2e:
        seg_ovr = CS;
        continue;
      case 0x36:
        seg_ovr = SS;
        continue;
      case 0x3e:
        seg_ovr = DS;
        continue;
      case 0x64:
        seg_ovr = FS;
        continue;
      case 0x65:
        seg_ovr = GS;
        continue;
      case 0x66:
        op32 = !code32;
        continue;
      case 0x67:
        addr32 = !code32;
        continue;
      case 0xf0:
        lock = true;
        continue;  // one CPU: every access is atomic anyway
      case 0xf2:
      case 0xf3:
        rep = op;
        continue;
      default:
        break;
    }
    break;
  }
  const unsigned size = osize();
  if (lock) check_lock(op);

  if (op < 0x40 && (op & 7) < 6) {  // the eight ALU operations
    const int alu_op = op >> 3;
    switch (op & 7) {
      case 0: {
        decode_modrm();
        const u32 r = alu(alu_op, 1, (alu_op != 7 ? get_rm_rmw(1) : get_rm(1)), get_reg(1, reg));
        if (alu_op != 7) set_rm(1, r);
        break;
      }
      case 1: {
        decode_modrm();
        const u32 r = alu(alu_op, size, (alu_op != 7 ? get_rm_rmw(size) : get_rm(size)), get_reg(size, reg));
        if (alu_op != 7) set_rm(size, r);
        break;
      }
      case 2: {
        decode_modrm();
        const u32 r = alu(alu_op, 1, get_reg(1, reg), get_rm(1));
        if (alu_op != 7) set_reg(1, reg, r);
        break;
      }
      case 3: {
        decode_modrm();
        const u32 r = alu(alu_op, size, get_reg(size, reg), get_rm(size));
        if (alu_op != 7) set_reg(size, reg, r);
        break;
      }
      case 4: {
        const u32 r = alu(alu_op, 1, get_reg(1, 0), f8());
        if (alu_op != 7) set_reg(1, 0, r);
        break;
      }
      case 5: {
        const u32 r = alu(alu_op, size, get_reg(size, 0), fimm(size));
        if (alu_op != 7) set_reg(size, 0, r);
        break;
      }
    }
    c.m_eip = eip;
    return;
  }

  switch (op) {
    case 0x06:
      c.push(c.m_seg[ES].selector, size);
      break;
    case 0x07:
      c.load_segment(ES, static_cast<u16>(c.pop(size)));
      break;
    case 0x0e:
      c.push(c.m_seg[CS].selector, size);
      break;
    case 0x16:
      c.push(c.m_seg[SS].selector, size);
      break;
    case 0x17: {
      const u32 sp = c.m_gpr[4];
      const u16 sel = static_cast<u16>(c.pop(size));
      try {
        c.load_segment(SS, sel);
      } catch (...) {
        c.m_gpr[4] = sp;
        throw;
      }
      c.m_inhibit = true;
      break;
    }
    case 0x1e:
      c.push(c.m_seg[DS].selector, size);
      break;
    case 0x1f:
      c.load_segment(DS, static_cast<u16>(c.pop(size)));
      break;
    case 0x0f:
      exec_0f();
      break;
    case 0x27:
    case 0x2f:
    case 0x37:
    case 0x3f:
      bcd_adjust(op);
      break;
    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x44:
    case 0x45:
    case 0x46:
    case 0x47:
      set_reg(size, op & 7, inc_dec(false, size, get_reg(size, op & 7)));
      break;
    case 0x48:
    case 0x49:
    case 0x4a:
    case 0x4b:
    case 0x4c:
    case 0x4d:
    case 0x4e:
    case 0x4f:
      set_reg(size, op & 7, inc_dec(true, size, get_reg(size, op & 7)));
      break;
    case 0x50:
    case 0x51:
    case 0x52:
    case 0x53:
    case 0x54:
    case 0x55:
    case 0x56:
    case 0x57:
      c.push(get_reg(size, op & 7), size);  // PUSH ESP pushes the value before the push
      break;
    case 0x58:
    case 0x59:
    case 0x5a:
    case 0x5b:
    case 0x5c:
    case 0x5d:
    case 0x5e:
    case 0x5f:
      set_reg(size, op & 7, c.pop(size));
      break;
    case 0x60: {  // PUSHA
      const u32 sp = get_reg(size, 4);
      for (int r = 0; r < 8; ++r) c.push(r == 4 ? sp : get_reg(size, r), size);
      break;
    }
    case 0x61:  // POPA
      for (int r = 7; r >= 0; --r) {
        const u32 v = c.pop(size);
        if (r != 4) set_reg(size, r, v);
      }
      break;
    case 0x62: {  // BOUND
      decode_modrm();
      need_memory();
      const u32 idx = sext(get_reg(size, reg), size);
      const i32 lo = static_cast<i32>(sext(c.read_mem(ea_seg, ea_off, size), size));
      const i32 hi = static_cast<i32>(sext(c.read_mem(ea_seg, ea_off + size, size), size));
      if (static_cast<i32>(idx) < lo || static_cast<i32>(idx) > hi) c.fault_noerr(5);
      break;
    }
    case 0x63: {  // ARPL
      if (!c.protected_mode()) c.fault_noerr(6);
      decode_modrm();
      const u16 dst = static_cast<u16>(get_rm(2)), src = static_cast<u16>(get_reg(2, reg));
      if ((dst & 3) < (src & 3)) {
        set_rm(2, (dst & ~3u) | (src & 3));
        set_flag(kZF, true);
      } else {
        set_flag(kZF, false);
      }
      break;
    }
    case 0x68:
      c.push(fimm(size), size);
      break;
    case 0x6a:
      c.push(sext(f8(), 1), size);
      break;
    case 0x69:
    case 0x6b: {  // IMUL Gv, Ev, imm
      decode_modrm();
      const u32 src = get_rm(size);
      const u32 imm = op == 0x6b ? sext(f8(), 1) : fimm(size);
      const i64 p = static_cast<i64>(static_cast<i32>(sext(src, size))) * static_cast<i32>(sext(imm, size));
      const u32 r = static_cast<u32>(p) & size_mask(size);
      const bool wide = p != static_cast<i64>(static_cast<i32>(sext(r, size)));
      set_reg(size, reg, r);
      set_arith(r, size, wide, wide, false);
      break;
    }
    case 0x6c:
      string_op(0x6c, 1);
      break;
    case 0x6d:
      string_op(0x6c, size);
      break;
    case 0x6e:
      string_op(0x6e, 1);
      break;
    case 0x6f:
      string_op(0x6e, size);
      break;
    case 0x70:
    case 0x71:
    case 0x72:
    case 0x73:
    case 0x74:
    case 0x75:
    case 0x76:
    case 0x77:
    case 0x78:
    case 0x79:
    case 0x7a:
    case 0x7b:
    case 0x7c:
    case 0x7d:
    case 0x7e:
    case 0x7f: {
      const u32 disp = sext(f8(), 1);
      if (cond(op & 0xf)) jump_near(eip + disp);
      ends_block = true;
      break;
    }
    case 0x80:
    case 0x82:
    case 0x81:
    case 0x83: {  // group 1
      const unsigned s = (op == 0x81 || op == 0x83) ? size : 1;
      decode_modrm();
      const u32 dst = (reg != 7 ? get_rm_rmw(s) : get_rm(s));
      const u32 imm = op == 0x83 ? sext(f8(), 1) : fimm(s);
      const u32 r = alu(reg, s, dst, imm);
      if (reg != 7) set_rm(s, r);
      break;
    }
    case 0x84:
    case 0x85: {
      const unsigned s = op == 0x84 ? 1 : size;
      decode_modrm();
      alu(4, s, get_rm(s), get_reg(s, reg));
      break;
    }
    case 0x86:
    case 0x87: {
      const unsigned s = op == 0x86 ? 1 : size;
      decode_modrm();
      const u32 a = get_rm_rmw(s), b = get_reg(s, reg);
      set_rm(s, b);
      set_reg(s, reg, a);
      break;
    }
    case 0x88:
      decode_modrm();
      set_rm(1, get_reg(1, reg));
      break;
    case 0x89:
      decode_modrm();
      set_rm(size, get_reg(size, reg));
      break;
    case 0x8a:
      decode_modrm();
      set_reg(1, reg, get_rm(1));
      break;
    case 0x8b:
      decode_modrm();
      set_reg(size, reg, get_rm(size));
      break;
    case 0x8c:
      decode_modrm();
      if (reg > 5) c.fault_noerr(6);
      set_rm(mod == 3 ? size : 2, c.m_seg[reg].selector);
      break;
    case 0x8d:
      decode_modrm();
      need_memory();
      set_reg(size, reg, ea_off);
      break;
    case 0x8e: {
      decode_modrm();
      if (reg > 5 || reg == CS) c.fault_noerr(6);
      c.load_segment(reg, static_cast<u16>(get_rm(2)));
      if (reg == SS) c.m_inhibit = true;
      break;
    }
    case 0x8f: {
      // POP Ev: ESP is incremented before the destination address is used.
      const u32 v = c.pop(size);
      decode_modrm();
      set_rm(size, v);
      break;
    }
    case 0x90:
      break;  // NOP (and PAUSE)
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97: {
      const u32 a = get_reg(size, 0);
      set_reg(size, 0, get_reg(size, op & 7));
      set_reg(size, op & 7, a);
      break;
    }
    case 0x98:
      if (op32) {
        c.m_gpr[0] = sext(c.m_gpr[0] & 0xffff, 2);
      } else {
        set_reg(2, 0, sext(c.m_gpr[0] & 0xff, 1));
      }
      break;
    case 0x99:
      if (op32) {
        c.m_gpr[2] = (c.m_gpr[0] & 0x80000000u) ? 0xffffffffu : 0;
      } else {
        set_reg(2, 2, (c.m_gpr[0] & 0x8000) ? 0xffff : 0);
      }
      break;
    case 0x9a: {
      const u32 off = fimm(size);
      const u16 sel = f16();
      c.far_jump(sel, off, true, size, eip);
      eip = c.m_eip;
      ends_block = true;
      break;
    }
    case 0x9b:  // WAIT
      if ((c.m_cr0 & 0x2) && (c.m_cr0 & 0x8)) c.fault_noerr(7);
      break;
    case 0x9c:
      if (c.protected_mode() || true) c.push(flags() & 0x00fcffffu, size);
      break;
    case 0x9d: {
      const u32 v = c.pop(size);
      u32 mask = kArith | kTF | kDF | kNT | kAC | kID;
      if (!c.protected_mode() || c.m_cpl == 0) mask |= 0x3000;
      if (io_privileged()) mask |= kIF;
      if (!op32) mask &= 0xffff;
      c.write_flags(v, mask);
      break;
    }
    case 0x9e:
      c.write_flags(get_reg(1, 4), kCF | kPF | kAF | kZF | kSF);
      break;
    case 0x9f:
      set_reg(1, 4, (flags() & 0xd5) | 2);
      break;
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3: {
      const unsigned s = (op & 1) ? size : 1;
      const u32 off = addr32 ? f32() : f16();
      const int seg = seg_ovr >= 0 ? seg_ovr : DS;
      if (op < 0xa2) {
        set_reg(s, 0, c.read_mem(seg, off, s));
      } else {
        c.write_mem(seg, off, s, get_reg(s, 0));
      }
      break;
    }
    case 0xa4:
      string_op(0xa4, 1);
      break;
    case 0xa5:
      string_op(0xa4, size);
      break;
    case 0xa6:
      string_op(0xa6, 1);
      break;
    case 0xa7:
      string_op(0xa6, size);
      break;
    case 0xa8:
      alu(4, 1, get_reg(1, 0), f8());
      break;
    case 0xa9:
      alu(4, size, get_reg(size, 0), fimm(size));
      break;
    case 0xaa:
      string_op(0xaa, 1);
      break;
    case 0xab:
      string_op(0xaa, size);
      break;
    case 0xac:
      string_op(0xac, 1);
      break;
    case 0xad:
      string_op(0xac, size);
      break;
    case 0xae:
      string_op(0xae, 1);
      break;
    case 0xaf:
      string_op(0xae, size);
      break;
    case 0xb0:
    case 0xb1:
    case 0xb2:
    case 0xb3:
    case 0xb4:
    case 0xb5:
    case 0xb6:
    case 0xb7:
      set_reg(1, op & 7, f8());
      break;
    case 0xb8:
    case 0xb9:
    case 0xba:
    case 0xbb:
    case 0xbc:
    case 0xbd:
    case 0xbe:
    case 0xbf:
      set_reg(size, op & 7, fimm(size));
      break;
    case 0xc0:
    case 0xc1:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      const unsigned s = (op & 1) ? size : 1;
      decode_modrm();
      const u32 v = get_rm_rmw(s);
      const unsigned count = op <= 0xc1 ? f8() : op <= 0xd1 ? 1 : (c.m_gpr[1] & 0xff);
      const u32 r = shift(reg, s, v, count);
      if (count & 0x1f) set_rm(s, r);
      break;
    }
    case 0xc2:
    case 0xc3: {
      // ESP moves only once the target passed the CS limit check.
      const u16 extra = op == 0xc2 ? f16() : 0;
      const u32 sp = c.stack32() ? c.m_gpr[4] : (c.m_gpr[4] & 0xffff);
      jump_near(c.read_mem(SS, sp, size));
      if (c.stack32()) {
        c.m_gpr[4] += size + extra;
      } else {
        c.m_gpr[4] = (c.m_gpr[4] & 0xffff0000u) | ((c.m_gpr[4] + size + extra) & 0xffff);
      }
      ends_block = true;
      break;
    }
    case 0xc4:
      load_far_pointer(ES);
      break;
    case 0xc5:
      load_far_pointer(DS);
      break;
    case 0xc6:
    case 0xc7: {
      const unsigned s = op == 0xc6 ? 1 : size;
      decode_modrm();
      set_rm(s, fimm(s));
      break;
    }
    case 0xc8:
      enter();
      break;
    case 0xc9: {  // LEAVE: ESP only changes once the pop cannot fault
      const u32 frame = c.stack32() ? c.m_gpr[5] : (c.m_gpr[5] & 0xffff);
      const u32 saved = c.read_mem(SS, frame, size);
      if (c.stack32()) {
        c.m_gpr[4] = frame + size;
      } else {
        c.m_gpr[4] = (c.m_gpr[4] & 0xffff0000u) | ((frame + size) & 0xffff);
      }
      set_reg(size, 5, saved);
      break;
    }
    case 0xca:
    case 0xcb: {
      const u16 extra = op == 0xca ? f16() : 0;
      c.far_return(size, extra);
      eip = c.m_eip;
      ends_block = true;
      break;
    }
    case 0xcc:
      ++c.m_exceptions[3];
      soft_int(3);
      ends_block = true;
      break;
    case 0xcd: {
      const u8 v = f8();
      soft_int(v);
      ends_block = true;
      break;
    }
    case 0xce:
      if (flag(kOF)) {
        ++c.m_exceptions[4];
        soft_int(4);
      }
      ends_block = true;
      break;
    case 0xcf:
      if (c.protected_mode() || true) {
        c.iret(size);
        eip = c.m_eip;
      }
      ends_block = true;
      break;
    case 0xd4: {  // AAM
      const u8 base = f8();
      if (base == 0) c.fault_noerr(0);
      const u32 al = c.m_gpr[0] & 0xff;
      set_reg(1, 4, al / base);
      set_reg(1, 0, al % base);
      set_arith(al % base, 1, false, false, false);
      break;
    }
    case 0xd5: {  // AAD
      const u8 base = f8();
      const u32 al = ((c.m_gpr[0] & 0xff) + ((c.m_gpr[0] >> 8) & 0xff) * base) & 0xff;
      set_reg(2, 0, al);
      set_arith(al, 1, false, false, false);
      break;
    }
    case 0xd6:
      set_reg(1, 0, flag(kCF) ? 0xff : 0);
      break;  // SALC
    case 0xd7: {
      const u32 off = (addr32 ? c.m_gpr[3] : (c.m_gpr[3] & 0xffff)) + (c.m_gpr[0] & 0xff);
      set_reg(1, 0, c.read_mem(seg_ovr >= 0 ? seg_ovr : DS, addr32 ? off : (off & 0xffff), 1));
      break;
    }
    case 0xd8:
    case 0xd9:
    case 0xda:
    case 0xdb:
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf:
      // x87 escape. reel is a 486SX without a coprocessor: with EM or TS
      // set the OS gets #NM and emulates; otherwise nothing answers on the
      // bus, so the instruction does nothing (FNSTSW leaves its target
      // alone, which is how an FPU probe finds no FPU).
      if (c.m_cr0 & 0xc) c.fault_noerr(7);
      decode_modrm();
      break;
    case 0xe0:
    case 0xe1:
    case 0xe2: {
      const u32 disp = sext(f8(), 1);
      dec_cx();
      bool take = cx() != 0;
      if (op == 0xe0) take = take && !flag(kZF);
      if (op == 0xe1) take = take && flag(kZF);
      if (take) jump_near(eip + disp);
      ends_block = true;
      break;
    }
    case 0xe3: {
      const u32 disp = sext(f8(), 1);
      if (cx() == 0) jump_near(eip + disp);
      ends_block = true;
      break;
    }
    case 0xe4:
      io_in(f8(), 1);
      break;
    case 0xe5:
      io_in(f8(), size);
      break;
    case 0xe6:
      io_out(f8(), 1);
      break;
    case 0xe7:
      io_out(f8(), size);
      break;
    case 0xec:
      io_in(c.m_gpr[2] & 0xffff, 1);
      break;
    case 0xed:
      io_in(c.m_gpr[2] & 0xffff, size);
      break;
    case 0xee:
      io_out(c.m_gpr[2] & 0xffff, 1);
      break;
    case 0xef:
      io_out(c.m_gpr[2] & 0xffff, size);
      break;
    case 0xe8: {
      const u32 disp = fimm(size);
      call_near(eip + (op32 ? disp : sext(disp, 2)));
      ends_block = true;
      break;
    }
    case 0xe9: {
      const u32 disp = op32 ? f32() : sext(f16(), 2);
      jump_near(eip + disp);
      ends_block = true;
      break;
    }
    case 0xea: {
      const u32 off = fimm(size);
      const u16 sel = f16();
      c.far_jump(sel, off, false, size, eip);
      eip = c.m_eip;
      ends_block = true;
      break;
    }
    case 0xeb: {
      const u32 disp = sext(f8(), 1);
      jump_near(eip + disp);
      ends_block = true;
      break;
    }
    case 0xf1:
      soft_int(1);
      ends_block = true;
      break;  // ICEBP
    case 0xf4:
      if (!cpl0_or_real()) c.fault(13, 0);
      c.m_halted = true;
      ends_block = true;
      break;
    case 0xf5:
      set_flag(kCF, !flag(kCF));
      break;
    case 0xf6:
      group3(1);
      break;
    case 0xf7:
      group3(size);
      break;
    case 0xf8:
      set_flag(kCF, false);
      break;
    case 0xf9:
      set_flag(kCF, true);
      break;
    case 0xfa:
      if (!io_privileged()) c.fault(13, 0);
      set_flag(kIF, false);
      break;
    case 0xfb:
      if (!io_privileged()) c.fault(13, 0);
      if (!flag(kIF)) c.m_inhibit = true;  // interrupts wait for the next instruction
      set_flag(kIF, true);
      break;
    case 0xfc:
      set_flag(kDF, false);
      break;
    case 0xfd:
      set_flag(kDF, true);
      break;
    case 0xfe:
      decode_modrm();
      if (reg > 1) c.fault_noerr(6);
      set_rm(1, inc_dec(reg == 1, 1, get_rm_rmw(1)));
      break;
    case 0xff: {
      const u32 save = eip;
      const u8 m = f8();
      eip = save;
      group5();
      const int r = (m >> 3) & 7;
      ends_block = r >= 2 && r <= 5;
      break;
    }
    default:
      c.fault_noerr(6);
  }
  c.m_eip = eip;
  if (c.m_block_hook)
    c.note_block(c.m_seg[CS].base + c.m_insn_start, c.m_seg[CS].base + fetch_end, ends_block);
}

}  // namespace reel
