// The host is x86-64, so it is a free oracle for integer arithmetic: run
// the same instruction on the same operands and flags in the reel CPU and
// on the host, and compare the result and every flag the architecture
// defines for it. (Flags the manuals leave undefined are excluded; reel's
// choices for those are documented where it computes them.)

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/cpu/cpu.h"
#include "core/guest_memory.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel {
namespace {

constexpr u32 CF = 1, PF = 4, AF = 16, ZF = 64, SF = 128, OF = 2048;
constexpr u32 ALL = CF | PF | AF | ZF | SF | OF;

using HostFn = void (*)(u64 flags_in, u32& eax, u32& edx, u32 ecx, u64& flags_out);

// Runs `text` with EAX, EDX, ECX and the flags loaded; the red zone below
// RSP is skipped because the sequence pushes.
#define HOST_OP(fn, text)                                                                                   \
  void fn(u64 fin, u32& a, u32& d, u32 c, u64& fout) {                                                      \
    asm volatile("sub $128, %%rsp\n\tpush %[fin]\n\tpopfq\n\t" text "\n\tpushfq\n\tpop %[fout]\n\tadd $128, %%rsp" \
                 : "+a"(a), "+d"(d), [fout] "=&r"(fout)                                                     \
                 : [fin] "r"(fin), "c"(c)                                                                  \
                 : "cc", "memory");                                                                        \
  }

#define SIZED(name, l, w, b) \
  HOST_OP(name##32, l)       \
  HOST_OP(name##16, w)       \
  HOST_OP(name##8, b)

SIZED(h_add, "addl %%ecx, %%eax", "addw %%cx, %%ax", "addb %%cl, %%al")
SIZED(h_adc, "adcl %%ecx, %%eax", "adcw %%cx, %%ax", "adcb %%cl, %%al")
SIZED(h_sub, "subl %%ecx, %%eax", "subw %%cx, %%ax", "subb %%cl, %%al")
SIZED(h_sbb, "sbbl %%ecx, %%eax", "sbbw %%cx, %%ax", "sbbb %%cl, %%al")
SIZED(h_and, "andl %%ecx, %%eax", "andw %%cx, %%ax", "andb %%cl, %%al")
SIZED(h_or, "orl %%ecx, %%eax", "orw %%cx, %%ax", "orb %%cl, %%al")
SIZED(h_xor, "xorl %%ecx, %%eax", "xorw %%cx, %%ax", "xorb %%cl, %%al")
SIZED(h_cmp, "cmpl %%ecx, %%eax", "cmpw %%cx, %%ax", "cmpb %%cl, %%al")
SIZED(h_test, "testl %%ecx, %%eax", "testw %%cx, %%ax", "testb %%cl, %%al")
SIZED(h_inc, "incl %%eax", "incw %%ax", "incb %%al")
SIZED(h_dec, "decl %%eax", "decw %%ax", "decb %%al")
SIZED(h_neg, "negl %%eax", "negw %%ax", "negb %%al")
SIZED(h_not, "notl %%eax", "notw %%ax", "notb %%al")
SIZED(h_shl, "shll %%cl, %%eax", "shlw %%cl, %%ax", "shlb %%cl, %%al")
SIZED(h_shr, "shrl %%cl, %%eax", "shrw %%cl, %%ax", "shrb %%cl, %%al")
SIZED(h_sar, "sarl %%cl, %%eax", "sarw %%cl, %%ax", "sarb %%cl, %%al")
SIZED(h_rol, "roll %%cl, %%eax", "rolw %%cl, %%ax", "rolb %%cl, %%al")
SIZED(h_ror, "rorl %%cl, %%eax", "rorw %%cl, %%ax", "rorb %%cl, %%al")
SIZED(h_rcl, "rcll %%cl, %%eax", "rclw %%cl, %%ax", "rclb %%cl, %%al")
SIZED(h_rcr, "rcrl %%cl, %%eax", "rcrw %%cl, %%ax", "rcrb %%cl, %%al")
SIZED(h_mul, "mull %%ecx", "mulw %%cx", "mulb %%cl")
SIZED(h_imul1, "imull %%ecx", "imulw %%cx", "imulb %%cl")
HOST_OP(h_imul2_32, "imull %%ecx, %%eax")
HOST_OP(h_imul2_16, "imulw %%cx, %%ax")
HOST_OP(h_bt32, "btl %%ecx, %%eax")
HOST_OP(h_bt16, "btw %%cx, %%ax")
HOST_OP(h_bts32, "btsl %%ecx, %%eax")
HOST_OP(h_btr32, "btrl %%ecx, %%eax")
HOST_OP(h_btc32, "btcl %%ecx, %%eax")
HOST_OP(h_bsf32, "bsfl %%ecx, %%eax")
HOST_OP(h_bsr32, "bsrl %%ecx, %%eax")
HOST_OP(h_shld32, "shldl %%cl, %%edx, %%eax")
HOST_OP(h_shrd32, "shrdl %%cl, %%edx, %%eax")
HOST_OP(h_xadd32, "xaddl %%ecx, %%eax")
HOST_OP(h_bswap32, "bswapl %%eax")
HOST_OP(h_movsx8, "movsbl %%cl, %%eax")
HOST_OP(h_movzx16, "movzwl %%cx, %%eax")
HOST_OP(h_cdq, "cltd")
#define SETCC(cc) HOST_OP(h_set##cc, "cmpl %%ecx, %%eax\n\tset" #cc " %%dl")
#define TESTCC(cc) HOST_OP(h_tset##cc, "testl %%ecx, %%eax\n\tset" #cc " %%dl")
SETCC(o) SETCC(no) SETCC(b) SETCC(ae) SETCC(e) SETCC(ne) SETCC(be) SETCC(a)
SETCC(s) SETCC(ns) SETCC(p) SETCC(np) SETCC(l) SETCC(ge) SETCC(le) SETCC(g)
TESTCC(e) TESTCC(s) TESTCC(p) TESTCC(le) TESTCC(g)

struct Case {
  const char* name;
  std::vector<u8> guest;  // the instruction, operating on EAX, EDX, ECX
  HostFn host;
  unsigned size;
  enum Kind { arith, logic, incdec, unchanged, shift, rotate, rotate_carry, mul, bit, bsf, dshift, plain } kind;
};

std::vector<Case> cases() {
  std::vector<Case> v;
  auto sized = [&](const char* name, u8 op32, std::vector<u8> tail, HostFn f32, HostFn f16, HostFn f8, Case::Kind k,
                   u8 op8) {
    std::vector<u8> g32 = {op32};
    g32.insert(g32.end(), tail.begin(), tail.end());
    std::vector<u8> g16 = {0x66, op32};
    g16.insert(g16.end(), tail.begin(), tail.end());
    std::vector<u8> g8 = {op8};
    g8.insert(g8.end(), tail.begin(), tail.end());
    v.push_back({name, g32, f32, 4, k});
    v.push_back({name, g16, f16, 2, k});
    v.push_back({name, g8, f8, 1, k});
  };
  sized("add", 0x01, {0xc8}, h_add32, h_add16, h_add8, Case::arith, 0x00);
  sized("adc", 0x11, {0xc8}, h_adc32, h_adc16, h_adc8, Case::arith, 0x10);
  sized("sub", 0x29, {0xc8}, h_sub32, h_sub16, h_sub8, Case::arith, 0x28);
  sized("sbb", 0x19, {0xc8}, h_sbb32, h_sbb16, h_sbb8, Case::arith, 0x18);
  sized("and", 0x21, {0xc8}, h_and32, h_and16, h_and8, Case::logic, 0x20);
  sized("or", 0x09, {0xc8}, h_or32, h_or16, h_or8, Case::logic, 0x08);
  sized("xor", 0x31, {0xc8}, h_xor32, h_xor16, h_xor8, Case::logic, 0x30);
  sized("cmp", 0x39, {0xc8}, h_cmp32, h_cmp16, h_cmp8, Case::arith, 0x38);
  sized("test", 0x85, {0xc8}, h_test32, h_test16, h_test8, Case::logic, 0x84);
  sized("inc", 0xff, {0xc0}, h_inc32, h_inc16, h_inc8, Case::incdec, 0xfe);
  sized("dec", 0xff, {0xc8}, h_dec32, h_dec16, h_dec8, Case::incdec, 0xfe);
  sized("neg", 0xf7, {0xd8}, h_neg32, h_neg16, h_neg8, Case::arith, 0xf6);
  sized("not", 0xf7, {0xd0}, h_not32, h_not16, h_not8, Case::unchanged, 0xf6);
  sized("shl", 0xd3, {0xe0}, h_shl32, h_shl16, h_shl8, Case::shift, 0xd2);
  sized("shr", 0xd3, {0xe8}, h_shr32, h_shr16, h_shr8, Case::shift, 0xd2);
  sized("sar", 0xd3, {0xf8}, h_sar32, h_sar16, h_sar8, Case::shift, 0xd2);
  sized("rol", 0xd3, {0xc0}, h_rol32, h_rol16, h_rol8, Case::rotate, 0xd2);
  sized("ror", 0xd3, {0xc8}, h_ror32, h_ror16, h_ror8, Case::rotate, 0xd2);
  sized("rcl", 0xd3, {0xd0}, h_rcl32, h_rcl16, h_rcl8, Case::rotate_carry, 0xd2);
  sized("rcr", 0xd3, {0xd8}, h_rcr32, h_rcr16, h_rcr8, Case::rotate_carry, 0xd2);
  sized("mul", 0xf7, {0xe1}, h_mul32, h_mul16, h_mul8, Case::mul, 0xf6);
  sized("imul", 0xf7, {0xe9}, h_imul132, h_imul116, h_imul18, Case::mul, 0xf6);
  v.push_back({"imul2", {0x0f, 0xaf, 0xc1}, h_imul2_32, 4, Case::mul});
  v.push_back({"imul2", {0x66, 0x0f, 0xaf, 0xc1}, h_imul2_16, 2, Case::mul});
  v.push_back({"bt", {0x0f, 0xa3, 0xc8}, h_bt32, 4, Case::bit});
  v.push_back({"bt", {0x66, 0x0f, 0xa3, 0xc8}, h_bt16, 2, Case::bit});
  v.push_back({"bts", {0x0f, 0xab, 0xc8}, h_bts32, 4, Case::bit});
  v.push_back({"btr", {0x0f, 0xb3, 0xc8}, h_btr32, 4, Case::bit});
  v.push_back({"btc", {0x0f, 0xbb, 0xc8}, h_btc32, 4, Case::bit});
  v.push_back({"bsf", {0x0f, 0xbc, 0xc1}, h_bsf32, 4, Case::bsf});
  v.push_back({"bsr", {0x0f, 0xbd, 0xc1}, h_bsr32, 4, Case::bsf});
  v.push_back({"shld", {0x0f, 0xa5, 0xd0}, h_shld32, 4, Case::dshift});
  v.push_back({"shrd", {0x0f, 0xad, 0xd0}, h_shrd32, 4, Case::dshift});
  v.push_back({"xadd", {0x0f, 0xc1, 0xc8}, h_xadd32, 4, Case::arith});
  v.push_back({"bswap", {0x0f, 0xc8}, h_bswap32, 4, Case::unchanged});
  v.push_back({"movsx", {0x0f, 0xbe, 0xc1}, h_movsx8, 4, Case::unchanged});
  v.push_back({"movzx", {0x0f, 0xb7, 0xc1}, h_movzx16, 4, Case::unchanged});
  v.push_back({"cdq", {0x99}, h_cdq, 4, Case::unchanged});
  // Conditions straight after CMP and TEST (reel evaluates them from the
  // lazy operands), each followed by SETcc DL.
  const HostFn setcc[16] = {h_seto, h_setno, h_setb, h_setae, h_sete, h_setne, h_setbe, h_seta,
                            h_sets, h_setns, h_setp, h_setnp, h_setl, h_setge, h_setle, h_setg};
  for (u8 cc = 0; cc < 16; ++cc) {
    v.push_back({"cmp+setcc", {0x39, 0xc8, 0x0f, static_cast<u8>(0x90 + cc), 0xc2}, setcc[cc], 4, Case::arith});
  }
  const std::pair<u8, HostFn> testcc[] = {{4, h_tsete}, {8, h_tsets}, {10, h_tsetp}, {14, h_tsetle}, {15, h_tsetg}};
  for (const auto& [cc, fn] : testcc) {
    v.push_back({"test+setcc", {0x85, 0xc8, 0x0f, static_cast<u8>(0x90 + cc), 0xc2}, fn, 4, Case::logic});
  }
  return v;
}

// The flags an instruction defines, given its shift count.
u32 defined_flags(const Case& c, u32 count) {
  const unsigned bits = c.size * 8;
  switch (c.kind) {
    case Case::arith: return ALL;
    case Case::logic: return ALL & ~AF;
    case Case::incdec: return ALL;
    case Case::unchanged: return ALL;
    case Case::shift: {
      const u32 n = count & 31;
      if (n == 0) return ALL;
      u32 f = SF | ZF | PF;
      if (n < bits) f |= CF;  // CF is undefined once everything was shifted out
      if (n == 1) f |= OF;
      return f;
    }
    case Case::rotate:
    case Case::rotate_carry: {
      const u32 n = count & 31;
      if (n == 0) return ALL;
      return CF | (n == 1 ? OF : 0) | SF | ZF | PF | AF;  // SF/ZF/PF/AF are preserved
    }
    case Case::mul: return CF | OF;
    case Case::bit: return CF;
    case Case::bsf: return ZF;
    case Case::dshift: {
      const u32 n = count & 31;
      if (n == 0) return ALL;
      return CF | SF | ZF | PF | (n == 1 ? OF : 0);
    }
    case Case::plain: return 0;
  }
  return 0;
}

class Oracle : public ::testing::Test {
 protected:
  Oracle() : mem(1 << 20), cpu(mem, ports, mmio, clock) {}

  // Runs the instruction in reel; returns EAX, EDX and EFLAGS.
  void run_guest(const std::vector<u8>& insn, u32 flags_in, u32& a, u32& d, u32 c, u32& flags_out) {
    std::vector<u8> code;
    code.insert(code.end(), insn.begin(), insn.end());
    code.push_back(0xf4);  // hlt
    mem.write(0x1000, code);
    cpu.enter_flat_protected_mode(0x1000);
    CpuRegisters r = cpu.registers();
    r.gpr[kEax] = a;
    r.gpr[kEdx] = d;
    r.gpr[kEcx] = c;
    r.gpr[kEsp] = 0x8000;
    r.eflags = flags_in | 2;
    cpu.set_registers(r);
    cpu.run(2);
    r = cpu.registers();
    a = r.gpr[kEax];
    d = r.gpr[kEdx];
    flags_out = r.eflags;
  }

  GuestMemory mem;
  PortBus ports;
  MmioBus mmio;
  VirtualClock clock;
  Cpu cpu;
};

TEST_F(Oracle, IntegerInstructionsMatchTheHost) {
  std::mt19937 rng(20261125);
  const u32 edges[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff};
  int failures = 0;
  int checked = 0;
  for (const Case& c : cases()) {
    for (int i = 0; i < 3000 && failures < 20; ++i) {
      u32 a = i < 144 ? edges[i % 12] : rng();
      u32 cx = i < 144 ? edges[(i / 12) % 12] : rng();
      u32 d = rng();
      if (c.kind == Case::shift || c.kind == Case::rotate || c.kind == Case::rotate_carry ||
          c.kind == Case::dshift) {
        cx = (cx & ~0xffu) | (i % 40);  // every count 0..39 plus random upper bits
      }
      if (c.kind == Case::bsf && cx == 0) cx = 1;  // BSF/BSR of 0 leave the destination undefined
      const u32 fin = (rng() & ALL) | 2;
      u32 ga = a, gd = d, gflags = 0;
      run_guest(c.guest, fin, ga, gd, cx, gflags);
      u32 ha = a, hd = d;
      u64 hflags = 0;
      c.host(fin, ha, hd, cx, hflags);
      const u32 mask = defined_flags(c, cx);
      ++checked;
      if (ga != ha || gd != hd || (gflags & mask) != (static_cast<u32>(hflags) & mask)) {
        ++failures;
        ADD_FAILURE() << c.name << "/" << c.size * 8 << " a=" << std::hex << a << " c=" << cx << " d=" << d
                      << " flags_in=" << fin << ": reel eax=" << ga << " edx=" << gd << " flags=" << (gflags & mask)
                      << ", host eax=" << ha << " edx=" << hd << " flags=" << (hflags & mask);
      }
    }
  }
  EXPECT_GT(checked, 100000);
}

TEST_F(Oracle, DivisionMatchesTheHostAndFaultsOnOverflow) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    u32 a = rng(), d = rng() % 0x1000, c = rng() | 1;
    const bool is_signed = i & 1;
    u32 ga = a, gd = d, gf = 0;
    run_guest({0xf7, static_cast<u8>(is_signed ? 0xf9 : 0xf1)}, 2, ga, gd, c, gf);
    if (is_signed) {
      const i64 n = static_cast<i64>(u64{d} << 32 | a);
      const i64 q = n / static_cast<i32>(c), r = n % static_cast<i32>(c);
      if (q < INT32_MIN || q > INT32_MAX) continue;  // faults; covered below
      EXPECT_EQ(ga, static_cast<u32>(q));
      EXPECT_EQ(gd, static_cast<u32>(r));
    } else {
      const u64 n = u64{d} << 32 | a;
      EXPECT_EQ(ga, static_cast<u32>(n / c));
      EXPECT_EQ(gd, static_cast<u32>(n % c));
    }
  }
}

}  // namespace
}  // namespace reel
