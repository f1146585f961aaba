#pragma once

// Helpers shared by the general decoder (cpu_exec.cc) and the decoded-block
// handlers (cpu_block.cc): lazy flags, the ALU, shifts, MUL/DIV and the
// inline fast path of memory accesses. Internal to core/cpu/.

#include <cstring>

#include "core/cpu/cpu.h"
#include "core/guest_memory.h"

namespace reel {

namespace cpu_flags {
inline constexpr u32 kCF = 1u << 0, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6, kSF = 1u << 7, kTF = 1u << 8,
                     kIF = 1u << 9, kDF = 1u << 10, kOF = 1u << 11, kNT = 1u << 14, kAC = 1u << 18,
                     kID = 1u << 21;
inline constexpr u32 kArith = kCF | kPF | kAF | kZF | kSF | kOF;
inline u32 size_mask(unsigned size) { return size == 4 ? 0xffffffffu : size == 2 ? 0xffffu : 0xffu; }
inline u32 sign_bit(unsigned size) { return size == 4 ? 0x80000000u : size == 2 ? 0x8000u : 0x80u; }
inline bool parity(u32 v) { return !__builtin_parity(v & 0xff); }
inline u32 sext(u32 v, unsigned size) {
  return size == 1   ? static_cast<u32>(static_cast<i32>(static_cast<i8>(v)))
         : size == 2 ? static_cast<u32>(static_cast<i32>(static_cast<i16>(v)))
                     : v;
}
}  // namespace cpu_flags

struct CpuOps {
  using LazyOp = Cpu::LazyOp;

  // CF and OF of SHL/SHR/SAR from the operand `a` (masked to `size`), the
  // masked count (1-31) and the result. For counts beyond the operand width CF
  // is the last bit shifted out, zero once only zeros are.
  static bool shift_cf(LazyOp op, unsigned size, u32 a, u32 count) {
    const unsigned bits = size * 8;
    switch (op) {
      case LazyOp::shl:
        return count <= bits && ((a >> (bits - count)) & 1);
      case LazyOp::shr:
        return count <= bits && ((a >> (count - 1)) & 1);
      default:
        return (static_cast<i32>(cpu_flags::sext(a, size)) >> (count - 1)) & 1;  // SAR
    }
  }
  static bool shift_of(LazyOp op, unsigned size, u32 a, u32 res, bool cf) {
    switch (op) {
      case LazyOp::shl:
        return ((res & cpu_flags::sign_bit(size)) != 0) != cf;
      case LazyOp::shr:
        return (a & cpu_flags::sign_bit(size)) != 0;
      default:
        return false;  // SAR
    }
  }

  // CF alone, without materialising the other flags (ADC, SBB, INC and DEC
  // need it on every execution).
  static bool carry(const Cpu& c) {
    using namespace cpu_flags;
    const u32 m = size_mask(c.m_lazy_size);
    const u32 a = c.m_lazy_a & m, b = c.m_lazy_b & m, res = c.m_lazy_res & m;
    switch (c.m_lazy_op) {
      case LazyOp::add:
        return res < a;
      case LazyOp::adc:
        return (u64{a} + b + (c.m_lazy_cf ? 1 : 0)) > m;
      case LazyOp::sub:
        return a < b;
      case LazyOp::sbb:
        return u64{a} < u64{b} + (c.m_lazy_cf ? 1 : 0);
      case LazyOp::logic:
        return false;
      case LazyOp::inc:
      case LazyOp::dec:
        return c.m_lazy_cf;
      case LazyOp::shl:
      case LazyOp::shr:
      case LazyOp::sar:
        return shift_cf(c.m_lazy_op, c.m_lazy_size, a, b);
      case LazyOp::none:
        break;
    }
    return c.m_eflags & kCF;
  }

  // Sets the arithmetic flags outright (for results computed eagerly).
  static void set_arith(Cpu& c, u32 res, unsigned size, bool cf, bool of, bool af) {
    using namespace cpu_flags;
    c.materialize_flags();
    const u32 m = size_mask(size);
    u32 f = c.m_eflags & ~kArith;
    if (cf) f |= kCF;
    if (of) f |= kOF;
    if (af) f |= kAF;
    if ((res & m) == 0) f |= kZF;
    if (res & sign_bit(size)) f |= kSF;
    if (parity(res)) f |= kPF;
    c.m_eflags = f;
  }

  // The eight ALU operations of opcodes 00-3F and group 1 (op = ModRM reg).
  static u32 alu(Cpu& c, int op, unsigned size, u32 a, u32 b) {
    using namespace cpu_flags;
    const u32 m = size_mask(size);
    a &= m;
    b &= m;
    u32 r = 0;
    switch (op) {
      case 0:
        r = (a + b) & m;
        c.set_lazy(LazyOp::add, size, a, b, r);
        break;
      case 1:
        r = a | b;
        c.set_lazy(LazyOp::logic, size, a, b, r);
        break;
      case 2: {
        const bool cf = carry(c);
        r = (a + b + (cf ? 1 : 0)) & m;
        c.m_lazy_cf = cf;
        c.set_lazy(LazyOp::adc, size, a, b, r);
        break;
      }
      case 3: {
        const bool cf = carry(c);
        r = (a - b - (cf ? 1 : 0)) & m;
        c.m_lazy_cf = cf;
        c.set_lazy(LazyOp::sbb, size, a, b, r);
        break;
      }
      case 4:
        r = a & b;
        c.set_lazy(LazyOp::logic, size, a, b, r);
        break;
      case 5:
      case 7:
        r = (a - b) & m;
        c.set_lazy(LazyOp::sub, size, a, b, r);
        break;
      case 6:
        r = a ^ b;
        c.set_lazy(LazyOp::logic, size, a, b, r);
        break;
    }
    return r;
  }

  static u32 inc_dec(Cpu& c, bool dec, unsigned size, u32 v) {
    const bool cf = carry(c);
    const u32 r = (dec ? v - 1 : v + 1) & cpu_flags::size_mask(size);
    c.m_lazy_cf = cf;
    c.set_lazy(dec ? LazyOp::dec : LazyOp::inc, size, v, 1, r);
    return r;
  }

  // Condition codes (Jcc/SETcc/CMOVcc low nibble). ZF and SF come straight
  // from the last result, and after CMP/SUB/TEST/AND every condition does,
  // so the common loops never materialise EFLAGS.
  [[gnu::always_inline]] static bool cond(const Cpu& c, unsigned cc) {
    using namespace cpu_flags;
    if (c.m_lazy_op != LazyOp::none) {
      const unsigned size = c.m_lazy_size;
      const u32 m = size_mask(size), sign = sign_bit(size);
      const u32 res = c.m_lazy_res & m;
      const unsigned which = cc >> 1;
      if (which == 2) return (res == 0) != (cc & 1);
      if (which == 4) return ((res & sign) != 0) != (cc & 1);
      if (c.m_lazy_op == LazyOp::sub || c.m_lazy_op == LazyOp::logic) {
        const u32 a = c.m_lazy_a & m, b = c.m_lazy_b & m;
        const bool sub = c.m_lazy_op == LazyOp::sub;
        const bool cf = sub && a < b, zf = res == 0, sf = res & sign;
        const bool of = sub && ((a ^ b) & (a ^ res) & sign);
        bool r = false;
        switch (which) {
          case 0:
            r = of;
            break;
          case 1:
            r = cf;
            break;
          case 3:
            r = cf || zf;
            break;
          case 5:
            r = parity(res);
            break;
          case 6:
            r = sf != of;
            break;
          case 7:
            r = zf || (sf != of);
            break;
        }
        return (cc & 1) ? !r : r;
      }
    }
    const u32 f = c.flags();
    bool r = false;
    switch (cc >> 1) {
      case 0:
        r = f & kOF;
        break;
      case 1:
        r = f & kCF;
        break;
      case 2:
        r = f & kZF;
        break;
      case 3:
        r = (f & kCF) || (f & kZF);
        break;
      case 4:
        r = f & kSF;
        break;
      case 5:
        r = f & kPF;
        break;
      case 6:
        r = ((f & kSF) != 0) != ((f & kOF) != 0);
        break;
      case 7:
        r = (f & kZF) || (((f & kSF) != 0) != ((f & kOF) != 0));
        break;
    }
    return (cc & 1) ? !r : r;
  }

  static void set_cf_of(Cpu& c, bool cf, bool of) {
    using namespace cpu_flags;
    c.materialize_flags();
    c.m_eflags = (c.m_eflags & ~(kCF | kOF)) | (cf ? kCF : 0) | (of ? kOF : 0);
  }

  // Group 2 (op = ModRM reg). A masked count of zero changes nothing, flags
  // included. Rotates only touch CF and OF. For counts above one OF is
  // undefined; reel computes it with the count-1 formula, as the 486 does
  // for the rotates. AF is undefined after shifts; reel clears it.
  static u32 shift(Cpu& c, int op, unsigned size, u32 v, unsigned count) {
    using namespace cpu_flags;
    const unsigned bits = size * 8;
    const u32 m = size_mask(size), sign = sign_bit(size);
    count &= 0x1f;
    v &= m;
    if (count == 0) return v;
    u32 r = v;
    bool cf = false;
    switch (op) {
      case 0: {  // ROL
        const unsigned n = count % bits;
        r = n ? ((v << n) | (v >> (bits - n))) & m : v;
        cf = r & 1;
        set_cf_of(c, cf, ((r & sign) != 0) != cf);
        return r;
      }
      case 1: {  // ROR
        const unsigned n = count % bits;
        r = n ? ((v >> n) | (v << (bits - n))) & m : v;
        set_cf_of(c, r & sign, ((r & sign) != 0) != ((r & (sign >> 1)) != 0));
        return r;
      }
      case 2: {  // RCL: a (bits+1)-bit rotation through CF
        const unsigned n = count % (bits + 1);
        u64 wide = (u64{carry(c) ? 1u : 0u} << bits) | v;
        const u64 wmask = (u64{1} << (bits + 1)) - 1;
        if (n) wide = ((wide << n) | (wide >> (bits + 1 - n))) & wmask;
        r = static_cast<u32>(wide) & m;
        cf = (wide >> bits) & 1;
        set_cf_of(c, cf, ((r & sign) != 0) != cf);
        return r;
      }
      case 3: {  // RCR
        const unsigned n = count % (bits + 1);
        u64 wide = (u64{carry(c) ? 1u : 0u} << bits) | v;
        const u64 wmask = (u64{1} << (bits + 1)) - 1;
        if (n) wide = ((wide >> n) | (wide << (bits + 1 - n))) & wmask;
        r = static_cast<u32>(wide) & m;
        cf = (wide >> bits) & 1;
        set_cf_of(c, cf, ((r & sign) != 0) != ((r & (sign >> 1)) != 0));
        return r;
      }
      case 4:
      case 6:  // SHL/SAL: flags stay lazy
        r = static_cast<u32>(u64{v} << count) & m;
        c.set_lazy(LazyOp::shl, size, v, count, r);
        break;
      case 5:  // SHR
        r = v >> count;
        c.set_lazy(LazyOp::shr, size, v, count, r);
        break;
      case 7: {  // SAR
        const i64 sv = static_cast<i64>(static_cast<i32>(sext(v, size)));
        r = static_cast<u32>(sv >> count) & m;
        c.set_lazy(LazyOp::sar, size, v, count, r);
        break;
      }
    }
    return r;
  }

  // ---- registers
  static u32 get_reg(const Cpu& c, unsigned size, int r) {
    if (size == 4) return c.m_gpr[r];
    if (size == 2) return c.m_gpr[r] & 0xffff;
    return r < 4 ? (c.m_gpr[r] & 0xff) : ((c.m_gpr[r - 4] >> 8) & 0xff);
  }
  static void set_reg(Cpu& c, unsigned size, int r, u32 v) {
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

  // MUL/IMUL with one operand. SF, ZF, PF and AF are undefined; reel sets
  // SF/ZF/PF from the low half and clears AF.
  static void mul(Cpu& c, unsigned size, bool is_signed, u32 src) {
    bool wide = false;
    u32 low = 0;
    if (size == 1) {
      const u32 al = c.m_gpr[0] & 0xff;
      u32 r;
      if (is_signed) {
        const i32 p = static_cast<i32>(static_cast<i8>(al)) * static_cast<i8>(src);
        r = static_cast<u32>(p) & 0xffff;
        wide = p != static_cast<i8>(p);
      } else {
        r = al * (src & 0xff);
        wide = r > 0xff;
      }
      set_reg(c, 2, 0, r);
      low = r & 0xff;
    } else if (size == 2) {
      const u32 ax = c.m_gpr[0] & 0xffff;
      u32 r;
      if (is_signed) {
        const i32 p = static_cast<i32>(static_cast<i16>(ax)) * static_cast<i16>(src);
        r = static_cast<u32>(p);
        wide = p != static_cast<i16>(p);
      } else {
        r = ax * (src & 0xffff);
        wide = r > 0xffff;
      }
      set_reg(c, 2, 0, r);
      set_reg(c, 2, 2, r >> 16);
      low = r & 0xffff;
    } else {
      u64 r;
      if (is_signed) {
        const i64 p = static_cast<i64>(static_cast<i32>(c.m_gpr[0])) * static_cast<i32>(src);
        r = static_cast<u64>(p);
        wide = p != static_cast<i32>(p);
      } else {
        r = u64{c.m_gpr[0]} * src;
        wide = (r >> 32) != 0;
      }
      c.m_gpr[0] = static_cast<u32>(r);
      c.m_gpr[2] = static_cast<u32>(r >> 32);
      low = static_cast<u32>(r);
    }
    set_arith(c, low, size, wide, wide, false);
  }

  // DIV/IDIV: #DE on a zero divisor or a quotient that does not fit. All
  // arithmetic flags are undefined; reel leaves them unchanged.
  static void div(Cpu& c, unsigned size, bool is_signed, u32 src) {
    src &= cpu_flags::size_mask(size);
    if (src == 0) c.fault_noerr(0);
    if (size == 1) {
      const u32 ax = c.m_gpr[0] & 0xffff;
      if (is_signed) {
        const i32 n = static_cast<i16>(ax), d = static_cast<i8>(src);
        const i32 q = n / d, r = n % d;
        if (q > 127 || q < -128) c.fault_noerr(0);
        set_reg(c, 1, 0, static_cast<u32>(q));
        set_reg(c, 1, 4, static_cast<u32>(r));
      } else {
        const u32 q = ax / src, r = ax % src;
        if (q > 0xff) c.fault_noerr(0);
        set_reg(c, 1, 0, q);
        set_reg(c, 1, 4, r);
      }
    } else if (size == 2) {
      const u32 n = (c.m_gpr[2] & 0xffff) << 16 | (c.m_gpr[0] & 0xffff);
      if (is_signed) {
        const i32 sn = static_cast<i32>(n), d = static_cast<i16>(src);
        const i64 q = static_cast<i64>(sn) / d, r = static_cast<i64>(sn) % d;
        if (q > 32767 || q < -32768) c.fault_noerr(0);
        set_reg(c, 2, 0, static_cast<u32>(q));
        set_reg(c, 2, 2, static_cast<u32>(r));
      } else {
        const u32 q = n / src, r = n % src;
        if (q > 0xffff) c.fault_noerr(0);
        set_reg(c, 2, 0, q);
        set_reg(c, 2, 2, r);
      }
    } else {
      const u64 n = u64{c.m_gpr[2]} << 32 | c.m_gpr[0];
      if (is_signed) {
        const i64 sn = static_cast<i64>(n), d = static_cast<i32>(src);
        if (sn == INT64_MIN && d == -1) c.fault_noerr(0);
        const i64 q = sn / d, r = sn % d;
        if (q > INT32_MAX || q < INT32_MIN) c.fault_noerr(0);
        c.m_gpr[0] = static_cast<u32>(q);
        c.m_gpr[2] = static_cast<u32>(r);
      } else {
        const u64 q = n / src, r = n % src;
        if (q > 0xffffffffull) c.fault_noerr(0);
        c.m_gpr[0] = static_cast<u32>(q);
        c.m_gpr[2] = static_cast<u32>(r);
      }
    }
  }

  // ---- memory fast path: a usable segment whose checks pass, linear ->
  // physical, one RAM page. Anything else takes the general path, which
  // raises the exact fault.
  template <unsigned S>
  [[gnu::always_inline]] static u32 read(Cpu& c, int seg, u32 off) {
    const SegmentCache& s = c.m_seg[seg];
    const u16 a = s.attrs;
    if (((a & 0x9c) == 0x90 || (a & 0x9a) == 0x9a) && off <= s.limit && s.limit - off >= S - 1) {
      const u32 phys = c.translate(s.base + off, false);
      if ((phys & (GuestMemory::kPageSize - 1)) <= GuestMemory::kPageSize - S && phys < c.m_ram_size &&
          !(c.m_page_flags[phys >> GuestMemory::kPageShift] & (GuestMemory::kMmio | Cpu::kDebugWatchPage))) {
        u32 v = 0;
        std::memcpy(&v, c.m_ram + phys, S);
        return v;
      }
    }
    return c.read_mem(seg, off, S);
  }
  template <unsigned S>
  [[gnu::always_inline]] static void write(Cpu& c, int seg, u32 off, u32 value) {
    const SegmentCache& s = c.m_seg[seg];
    if ((s.attrs & 0x9e) == 0x92 && off <= s.limit && s.limit - off >= S - 1) {
      const u32 phys = c.translate(s.base + off, true);
      if ((phys & (GuestMemory::kPageSize - 1)) <= GuestMemory::kPageSize - S && phys < c.m_ram_size) {
        const u8 flags = c.m_page_flags[phys >> GuestMemory::kPageShift];
        // A watched page takes the general path, which has the linear
        // address the watchpoints compare (as read() does).
        if (!(flags & (GuestMemory::kMmio | Cpu::kDebugWatchPage))) {
          if (flags) c.note_flagged_write(phys, S);
          std::memcpy(c.m_ram + phys, &value, S);
          return;
        }
      }
    }
    c.write_mem(seg, off, S, value);
  }
  static void push32(Cpu& c, u32 v) {
    if (c.stack32()) {
      write<4>(c, 2, c.m_gpr[kEsp] - 4, v);
      c.m_gpr[kEsp] -= 4;
    } else {
      c.push(v, 4);
    }
  }
  static u32 pop32(Cpu& c) {
    if (c.stack32()) {
      const u32 v = read<4>(c, 2, c.m_gpr[kEsp]);
      c.m_gpr[kEsp] += 4;
      return v;
    }
    return c.pop(4);
  }
};

}  // namespace reel
