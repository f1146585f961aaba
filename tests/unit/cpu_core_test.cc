// The CPU interpreter's own tests: one representative program per
// instruction group, exceptions and interrupts through the IDT, exact
// instruction budgets (also in the middle of a decoded block and of a REP),
// self-modifying code against the decoded-block cache, I/O and MMIO seeing
// the right instruction count, real mode, and serialization.
//
// Programs were assembled with `as --32` (`.code16` for the real-mode ones)
// at the address given with each; the expected values are worked out by
// hand in the comments.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/cpu_test_support.h"

namespace reel {
namespace {

using Bytes = std::vector<u8>;
using cputest::kAF;
using cputest::kCF;
using cputest::kOF;
using cputest::kPF;
using cputest::kSF;
using cputest::kZF;
using cputest::make_descriptor;
using cputest::make_gate;

constexpr u32 kIF = 1u << 9;

// Records every access with the instruction count the device saw.
class CountingDevice : public Device {
 public:
  explicit CountingDevice(const VirtualClock& clock) : Device("counting.0"), m_clock(clock) {}
  struct Access {
    bool write;
    u32 offset;
    unsigned size;
    u32 value;
    u64 icount;
  };
  void reset() override {}
  u32 read(u32 offset, unsigned size) override {
    accesses.push_back({false, offset, size, 0xcafe0000u + offset, m_clock.icount()});
    return 0xcafe0000u + offset;
  }
  void write(u32 offset, unsigned size, u32 value) override {
    accesses.push_back({true, offset, size, value, m_clock.icount()});
    if (on_write) on_write();
  }
  template <class Archive>
  void serialize(Archive&) {}
  REEL_DEVICE_STATE

  std::vector<Access> accesses;
  std::function<void()> on_write;

 private:
  const VirtualClock& m_clock;
};

class CpuCoreTest : public ::testing::Test, public cputest::CpuFixture {
 protected:
  static constexpr u32 kGdt = 0x1000, kIdt = 0x2000, kHandlers = 0x3000;
  static constexpr u16 kSelCode = 0x08, kSelData = 0x10;
  static u32 handler(u8 vector) { return kHandlers + 16u * vector; }

  // Flat protected mode at `eip` with a GDT (null, flat code, flat data,
  // 16-bit code) and an IDT whose every vector runs a HLT.
  void boot(const Bytes& code, u32 addr = kCodeAddr) {
    write64(kGdt + 0x00, 0);
    write64(kGdt + 0x08, make_descriptor(0, 0xfffff, 0x9a, 0xc));
    write64(kGdt + 0x10, make_descriptor(0, 0xfffff, 0x92, 0xc));
    write64(kGdt + 0x18, make_descriptor(0, 0xffff, 0x9a, 0x0));
    for (u32 v = 0; v < 256; ++v) {
      write64(kIdt + 8 * v, make_gate(kSelCode, handler(static_cast<u8>(v)), 0xe));
      write8(handler(static_cast<u8>(v)), 0xf4);
    }
    load(addr, code);
    start(addr);
    CpuRegisters r = regs();
    r.gdtr = {kGdt, 0x1f};
    r.idtr = {kIdt, 256 * 8 - 1};
    set_regs(r);
  }

  // The HLT of `vector`'s handler ran: EIP is just past it.
  bool in_handler(u8 vector) const { return regs().eip == handler(vector) + 1; }
  u32 stack32(u32 offset) const { return read32(regs().gpr[kEsp] + offset); }
};

// ------------------------------------------------------------------ ALU

// at 0x10000
const Bytes kAluProgram = {
    0xb8, 0xff, 0xff, 0xff, 0x7f,        // mov    eax,0x7fffffff
    0x83, 0xc0, 0x01,                    // add    eax,0x1          0x80000000: OF SF AF PF
    0x9c,                                // pushf
    0x5b,                                // pop    ebx              0x896
    0xb9, 0x05, 0x00, 0x00, 0x00,        // mov    ecx,0x5
    0x83, 0xe9, 0x07,                    // sub    ecx,0x7          0xfffffffe CF
    0x83, 0xd1, 0x00,                    // adc    ecx,0x0          0xffffffff
    0xba, 0x78, 0x56, 0x34, 0x12,        // mov    edx,0x12345678
    0x30, 0xf2,                          // xor    dl,dh            dl=0x2e
    0x81, 0xe2, 0x00, 0xff, 0x00, 0xff,  // and    edx,0xff00ff00   0x12005600
    0x66, 0x81, 0xca, 0x34, 0x12,        // or     dx,0x1234        0x12005634
    0xf7, 0xd2,                          // not    edx              0xedffa9cb
    0xf7, 0xd9,                          // neg    ecx              1, CF
    0x19, 0xf6,                          // sbb    esi,esi          0xffffffff, CF
    0x8d, 0x7c, 0x88, 0x10,              // lea    edi,[eax+ecx*4+0x10]
    0x47,                                // inc    edi              0x80000015
    0xfe, 0xcf,                          // dec    bh               0x796, CF kept
    0xf4,                                // hlt
};

TEST_F(CpuCoreTest, AluResultsAndFlags) {
  boot(kAluProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEax], 0x80000000u);
  EXPECT_EQ(r.gpr[kEbx], 0x796u);
  EXPECT_EQ(r.gpr[kEcx], 1u);
  EXPECT_EQ(r.gpr[kEdx], 0xedffa9cbu);
  EXPECT_EQ(r.gpr[kEsi], 0xffffffffu);
  EXPECT_EQ(r.gpr[kEdi], 0x80000015u);
  EXPECT_EQ(r.eflags & cputest::kArithFlags, kCF);
  EXPECT_EQ(clock.icount(), 18u);
}

// at 0x10000
const Bytes kShiftProgram = {
    0xb8, 0x67, 0x45, 0x23, 0x81,  // mov    eax,0x81234567
    0xc1, 0xc0, 0x04,              // rol    eax,0x4          0x12345678
    0xbb, 0x67, 0x45, 0x23, 0x81,  // mov    ebx,0x81234567
    0xc1, 0xcb, 0x08,              // ror    ebx,0x8          0x67812345
    0xb9, 0x03, 0x00, 0x00, 0x00,  // mov    ecx,0x3
    0xba, 0x01, 0x00, 0x00, 0x80,  // mov    edx,0x80000001
    0xf9,                          // stc
    0xd3, 0xd2,                    // rcl    edx,cl           0xe, CF=0
    0xbe, 0x01, 0x00, 0x00, 0x80,  // mov    esi,0x80000001
    0xf8,                          // clc
    0xd1, 0xde,                    // rcr    esi,1            0x40000000, CF=1
    0xbf, 0x00, 0x00, 0x00, 0xf0,  // mov    edi,0xf0000000
    0xc1, 0xff, 0x04,              // sar    edi,0x4          0xff000000
    0xbd, 0x78, 0x56, 0x34, 0x12,  // mov    ebp,0x12345678
    0x0f, 0xa4, 0xc5, 0x08,        // shld   ebp,eax,0x8      0x34567812
    0x0f, 0xac, 0xd8, 0x10,        // shrd   eax,ebx,0x10     0x23451234
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, ShiftsAndRotates) {
  boot(kShiftProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEax], 0x23451234u);
  EXPECT_EQ(r.gpr[kEbx], 0x67812345u);
  EXPECT_EQ(r.gpr[kEdx], 0xeu);
  EXPECT_EQ(r.gpr[kEsi], 0x40000000u);
  EXPECT_EQ(r.gpr[kEdi], 0xff000000u);
  EXPECT_EQ(r.gpr[kEbp], 0x34567812u);
  EXPECT_EQ(r.eflags & kCF, 0u);  // bit 15 of 0x12345678 shifted out last
}

// at 0x10000
const Bytes kMulDivProgram = {
    0xb8, 0x78, 0x56, 0x34, 0x12,  // mov    eax,0x12345678
    0xb9, 0x00, 0x01, 0x00, 0x00,  // mov    ecx,0x100
    0xf7, 0xe1,                    // mul    ecx              edx:eax = 0x12:0x34567800
    0x89, 0xd6,                    // mov    esi,edx
    0x89, 0xc7,                    // mov    edi,eax
    0xb8, 0xf9, 0xff, 0xff, 0xff,  // mov    eax,-7
    0x99,                          // cdq
    0xb9, 0x02, 0x00, 0x00, 0x00,  // mov    ecx,0x2
    0xf7, 0xf9,                    // idiv   ecx              eax=-3 edx=-1
    0x89, 0xc3,                    // mov    ebx,eax
    0x6b, 0xdb, 0x64,              // imul   ebx,ebx,100      -300
    0x89, 0xd5,                    // mov    ebp,edx
    0x0f, 0xaf, 0xeb,              // imul   ebp,ebx          300
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, MultiplyAndDivide) {
  boot(kMulDivProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEsi], 0x12u);
  EXPECT_EQ(r.gpr[kEdi], 0x34567800u);
  EXPECT_EQ(r.gpr[kEax], 0xfffffffdu);
  EXPECT_EQ(r.gpr[kEdx], 0xffffffffu);
  EXPECT_EQ(r.gpr[kEbx], static_cast<u32>(-300));
  EXPECT_EQ(r.gpr[kEbp], 300u);
  EXPECT_EQ(r.eflags & (kCF | kOF), 0u);
}

// at 0x10000
const Bytes kBitProgram = {
    0xc7, 0x05, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,  // mov    DWORD PTR ds:0x20000,0x0
    0xc7, 0x05, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,  // mov    DWORD PTR ds:0x20004,0x0
    0xb8, 0x25, 0x00, 0x00, 0x00,                                // mov    eax,37
    0x0f, 0xab, 0x05, 0x00, 0x00, 0x02, 0x00,  // bts    DWORD PTR ds:0x20000,eax  bit 5 of 0x20004
    0xb8, 0xff, 0xff, 0xff, 0xff,              // mov    eax,-1
    0x0f, 0xab, 0x05, 0x04, 0x00, 0x02, 0x00,  // bts    DWORD PTR ds:0x20004,eax  bit 31 of 0x20000
    0xbb, 0xf0, 0x00, 0x00, 0x00,              // mov    ebx,0xf0
    0x0f, 0xbc, 0xcb,                          // bsf    ecx,ebx   4
    0x0f, 0xbd, 0xd3,                          // bsr    edx,ebx   7
    0x0f, 0xba, 0xe3, 0x04,                    // bt     ebx,0x4   CF=1
    0x0f, 0x92, 0xc0,                          // setb   al
    0x81, 0xfb, 0x00, 0x01, 0x00, 0x00,        // cmp    ebx,0x100
    0x0f, 0x9c, 0xc4,                          // setl   ah
    0xbe, 0x55, 0x00, 0x00, 0x00,              // mov    esi,0x55
    0x0f, 0x42, 0xf3,                          // cmovb  esi,ebx   taken
    0xbf, 0x66, 0x00, 0x00, 0x00,              // mov    edi,0x66
    0x0f, 0x47, 0xfb,                          // cmova  edi,ebx   not taken
    0x0f, 0xcb,                                // bswap  ebx
    0xf4,                                      // hlt
};

TEST_F(CpuCoreTest, BitScanSetccCmovBswap) {
  boot(kBitProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(read32(0x20000), 0x80000000u);
  EXPECT_EQ(read32(0x20004), 0x20u);
  EXPECT_EQ(r.gpr[kEcx], 4u);
  EXPECT_EQ(r.gpr[kEdx], 7u);
  EXPECT_EQ(r.gpr[kEax], 0xffff0101u);
  EXPECT_EQ(r.gpr[kEsi], 0xf0u);
  EXPECT_EQ(r.gpr[kEdi], 0x66u);
  EXPECT_EQ(r.gpr[kEbx], 0xf0000000u);
}

// at 0x10000
const Bytes kCallRet = {
    0xbc, 0x00, 0x00, 0x09, 0x00,  // mov    esp,0x90000
    0x6a, 0x05,                    // push   0x5
    0xe8, 0x04, 0x00, 0x00, 0x00,  // call   10010 <f>
    0x83, 0xc4, 0x04,              // add    esp,0x4
    0xf4,                          // hlt
    0x55,                          // f: push ebp
    0x89, 0xe5,                    // mov    ebp,esp
    0x8b, 0x45, 0x08,              // mov    eax,DWORD PTR [ebp+0x8]
    0xc1, 0xe0, 0x03,              // shl    eax,0x3
    0xc9,                          // leave
    0xc3,                          // ret
};

TEST_F(CpuCoreTest, CallFrameAndReturn) {
  boot(kCallRet);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEax], 40u);
  EXPECT_EQ(r.gpr[kEsp], 0x90000u);
  EXPECT_EQ(read32(0x90000 - 8), 0x1000cu);  // the return address stays below ESP
}

// ------------------------------------------------------------------ budget and exactness

// at 0x10000
const Bytes kLoop = {
    0x83, 0xc0, 0x03,                    // top: add eax,0x3
    0x43,                                // inc    ebx
    0x81, 0xfb, 0xe8, 0x03, 0x00, 0x00,  // cmp    ebx,1000
    0x75, 0xf4,                          // jne    top
    0xf4,                                // hlt
};

TEST_F(CpuCoreTest, BudgetStopsInsideADecodedBlock) {
  boot(kLoop);
  ASSERT_EQ(run(7), CpuStop::budget);
  EXPECT_EQ(clock.icount(), 7u);
  CpuRegisters r = regs();
  EXPECT_EQ(r.eip, 0x1000au);  // on the JNE of the second iteration
  EXPECT_EQ(r.gpr[kEax], 6u);
  EXPECT_EQ(r.gpr[kEbx], 2u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(run(1), CpuStop::budget);
  EXPECT_EQ(clock.icount(), 107u);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  r = regs();
  EXPECT_EQ(r.gpr[kEax], 3000u);
  EXPECT_EQ(r.gpr[kEbx], 1000u);
  EXPECT_EQ(clock.icount(), 4001u);
  // Halted with nothing pending: no instruction retires.
  EXPECT_EQ(run(10), CpuStop::halted);
  EXPECT_EQ(clock.icount(), 4001u);
}

// at 0x10000
const Bytes kRepProgram = {
    0xfc,                          // cld
    0xbe, 0x00, 0x00, 0x02, 0x00,  // mov    esi,0x20000
    0xbf, 0x00, 0x00, 0x03, 0x00,  // mov    edi,0x30000
    0xb9, 0x0a, 0x00, 0x00, 0x00,  // mov    ecx,10
    0xf3, 0xa5,                    // rep movsd
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, RepStopsBetweenIterationsAtTheBudget) {
  boot(kRepProgram);
  for (u32 i = 0; i < 10; ++i) write32(0x20000 + 4 * i, 0x1000 + i);
  ASSERT_EQ(run(4 + 3), CpuStop::budget);
  CpuRegisters r = regs();
  EXPECT_EQ(r.eip, 0x10010u);  // still on the REP
  EXPECT_EQ(r.gpr[kEcx], 7u);
  EXPECT_EQ(r.gpr[kEsi], 0x2000cu);
  EXPECT_EQ(r.gpr[kEdi], 0x3000cu);
  EXPECT_EQ(read32(0x30008), 0x1002u);
  EXPECT_EQ(read32(0x3000c), 0u);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  r = regs();
  EXPECT_EQ(r.gpr[kEcx], 0u);
  EXPECT_EQ(r.gpr[kEdi], 0x30028u);
  EXPECT_EQ(read32(0x30024), 0x1009u);
  EXPECT_EQ(clock.icount(), 4u + 10u + 1u);
}

// at 0x10000
const Bytes kIoProgram = {
    0xb8, 0x01, 0x00, 0x00, 0x00,  // mov    eax,0x1
    0xbb, 0x02, 0x00, 0x00, 0x00,  // mov    ebx,0x2
    0x66, 0xba, 0x00, 0x03,        // mov    dx,0x300
    0xee,                          // out    dx,al
    0xed,                          // in     eax,dx
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, PortIoSeesTheInstructionsRetiredBeforeIt) {
  CountingDevice dev(clock);
  ports.map(0x300, 4, &dev);
  boot(kIoProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  ASSERT_EQ(dev.accesses.size(), 2u);
  EXPECT_TRUE(dev.accesses[0].write);
  EXPECT_EQ(dev.accesses[0].size, 1u);
  EXPECT_EQ(dev.accesses[0].value, 1u);
  EXPECT_EQ(dev.accesses[0].icount, 3u);
  EXPECT_FALSE(dev.accesses[1].write);
  EXPECT_EQ(dev.accesses[1].size, 4u);
  EXPECT_EQ(dev.accesses[1].icount, 4u);
  EXPECT_EQ(regs().gpr[kEax], 0xcafe0000u);
  EXPECT_EQ(clock.icount(), 6u);
}

// at 0x10000
const Bytes kMmioIrq = {
    0xfb,                          // sti
    0xb8, 0x01, 0x00, 0x00, 0x00,  // mov    eax,0x1
    0xa3, 0x00, 0x00, 0x0a, 0x00,  // mov    ds:0xa0000,eax
    0xbb, 0x02, 0x00, 0x00, 0x00,  // mov    ebx,0x2
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, MmioStoreThatRaisesIntrIsFollowedByTheInterrupt) {
  CountingDevice dev(clock);
  mmio.map(0xa0000, 0x1000, &dev);
  dev.on_write = [this] { pic.raise(0x40); };
  boot(kMmioIrq);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  ASSERT_EQ(dev.accesses.size(), 1u);
  EXPECT_EQ(dev.accesses[0].size, 4u);  // one access of the instruction's size
  EXPECT_EQ(dev.accesses[0].value, 1u);
  EXPECT_EQ(dev.accesses[0].icount, 2u);
  EXPECT_TRUE(in_handler(0x40));
  EXPECT_EQ(stack32(0), 0x1000bu);  // the interrupted MOV EBX
  EXPECT_EQ(regs().gpr[kEbx], 0u);
  EXPECT_EQ(pic.acks, 1);
  EXPECT_EQ(clock.icount(), 4u);  // sti, mov, mov, and the handler's hlt
}

// at 0x10000
const Bytes kStiShadow = {
    0xfb,                          // sti
    0xb8, 0x01, 0x00, 0x00, 0x00,  // mov    eax,0x1
    0xbb, 0x02, 0x00, 0x00, 0x00,  // mov    ebx,0x2
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, StiShadowThenInterruptThroughTheIdt) {
  boot(kStiShadow);
  pic.raise(0x30);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(0x30));
  EXPECT_EQ(regs().gpr[kEax], 1u);
  EXPECT_EQ(regs().gpr[kEbx], 0u);
  EXPECT_EQ(stack32(0), 0x10006u);
  EXPECT_EQ(stack32(4), kSelCode);
  EXPECT_TRUE(stack32(8) & kIF);
  EXPECT_FALSE(regs().eflags & kIF);  // interrupt gate
}

TEST_F(CpuCoreTest, HaltedCpuWakesOnlyForAnInterrupt) {
  boot({0xfb, 0xf4, 0xf4});  // sti; hlt; hlt
  ASSERT_EQ(run(10), CpuStop::halted);
  EXPECT_EQ(clock.icount(), 2u);
  EXPECT_TRUE(cpu.halted());
  EXPECT_FALSE(cpu.interrupt_ready());
  EXPECT_EQ(run(10), CpuStop::halted);
  EXPECT_EQ(clock.icount(), 2u);
  pic.raise(0x21);
  EXPECT_TRUE(cpu.interrupt_ready());
  EXPECT_EQ(run(10), CpuStop::halted);
  EXPECT_TRUE(in_handler(0x21));
  EXPECT_EQ(stack32(0), 0x10002u);  // after the HLT
  EXPECT_EQ(clock.icount(), 3u);    // delivery is not an instruction
}

// ------------------------------------------------------------------ exceptions

// at 0x10000
const Bytes kDivFault = {
    0xb8, 0x01, 0x00, 0x00, 0x00,  // mov    eax,0x1
    0xbb, 0x02, 0x00, 0x00, 0x00,  // mov    ebx,0x2
    0x31, 0xc9,                    // xor    ecx,ecx
    0xf7, 0xf1,                    // div    ecx
    0xb8, 0x03, 0x00, 0x00, 0x00,  // mov    eax,0x3
    0xf4,                          // hlt
};

TEST_F(CpuCoreTest, DivideErrorInTheMiddleOfABlock) {
  boot(kDivFault);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(0));
  EXPECT_EQ(stack32(0), 0x1000cu);  // a fault: the DIV itself
  EXPECT_EQ(regs().gpr[kEax], 1u);
  EXPECT_EQ(regs().gpr[kEbx], 2u);
  EXPECT_EQ(clock.icount(), 4u);  // three movs/xor and the handler's hlt
  EXPECT_EQ(cpu.exceptions()[0], 1u);
}

TEST_F(CpuCoreTest, Ud2AndUnknownOpcodeRaiseUd) {
  boot({0x90, 0x0f, 0x0b});  // nop; ud2
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(6));
  EXPECT_EQ(stack32(0), 0x10001u);
  EXPECT_EQ(regs().gpr[kEsp], kStackTop - 12);  // no error code
}

// at 0x10000
const Bytes kBadSelector = {
    0x66, 0xb8, 0x28, 0x00,  // mov    ax,0x28
    0x8e, 0xd8,              // mov    ds,ax    beyond the GDT limit
    0xf4,                    // hlt
};

TEST_F(CpuCoreTest, SegmentLoadPastTheGdtLimitRaisesGpWithTheSelector) {
  boot(kBadSelector);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(13));
  EXPECT_EQ(stack32(0), 0x28u);  // error code
  EXPECT_EQ(stack32(4), 0x10004u);
  EXPECT_EQ(regs().seg[3].selector, kSelData);
}

TEST_F(CpuCoreTest, NotPresentSegmentRaisesNp) {
  boot({0x66, 0xb8, 0x18, 0x00, 0x8e, 0xe0, 0xf4});              // mov ax,0x18; mov fs,ax
  write64(kGdt + 0x18, make_descriptor(0, 0xfffff, 0x12, 0xc));  // data, not present
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(11));
  EXPECT_EQ(stack32(0), 0x18u);
}

TEST_F(CpuCoreTest, TripleFaultShutsDown) {
  boot({0x0f, 0x0b});  // ud2 with an empty IDT
  CpuRegisters r = regs();
  r.idtr = {kIdt, 0};
  set_regs(r);
  EXPECT_EQ(run(10), CpuStop::shutdown);
}

// A code segment whose limit ends inside a decoded block: the fetch of the
// first instruction past the limit faults, the ones before it run.
TEST_F(CpuCoreTest, CodeSegmentLimitCutsADecodedBlock) {
  const Bytes code = {
      0xb8, 0x01, 0x00, 0x00, 0x00,  // mov eax,1
      0xbb, 0x02, 0x00, 0x00, 0x00,  // mov ebx,2
      0xb9, 0x03, 0x00, 0x00, 0x00,  // mov ecx,3
      0xba, 0x04, 0x00, 0x00, 0x00,  // mov edx,4   (offset 15: past the limit)
      0xf4,                          // hlt
  };
  boot(code, 0x40000);
  CpuRegisters r = regs();
  r.seg[1] = SegmentCache{0x18, 0x40000, 0x0e, 0x409b};
  r.eip = 0;
  set_regs(r);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(13));
  EXPECT_EQ(stack32(0), 0u);
  EXPECT_EQ(stack32(4), 15u);
  EXPECT_EQ(regs().gpr[kEcx], 3u);
  EXPECT_EQ(regs().gpr[kEdx], 0u);
}

// ------------------------------------------------------------------ self-modifying code

// at 0x10000: the store rewrites the immediate of the next instruction,
// which was decoded in the same block.
const Bytes kSmcProgram = {
    0xc6, 0x05, 0x08, 0x00, 0x01, 0x00, 0x42,  // mov    BYTE PTR ds:0x10008,0x42
    0xb8, 0x11, 0x11, 0x11, 0x11,              // mov    eax,0x11111111
    0xbb, 0x02, 0x00, 0x00, 0x00,              // mov    ebx,0x2
    0xf4,                                      // hlt
};

TEST_F(CpuCoreTest, StoreIntoTheNextInstructionIsSeen) {
  boot(kSmcProgram);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(regs().gpr[kEax], 0x11111142u);
  EXPECT_EQ(regs().gpr[kEbx], 2u);
}

// at 0xfff0: the MOV EAX at 0xfffd straddles two pages; the loop rewrites
// its immediate across the boundary and runs it again.
const Bytes kSmcCrossPage = {
    0xb9, 0x02, 0x00, 0x00, 0x00,                                // mov    ecx,0x2
    0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,              // nop x 8
    0xb8, 0x11, 0x11, 0x11, 0x11,                                // again: mov eax,0x11111111
    0x01, 0xc3,                                                  // add    ebx,eax
    0xc7, 0x05, 0xfe, 0xff, 0x00, 0x00, 0x22, 0x22, 0x22, 0x22,  // mov    DWORD PTR ds:0xfffe,0x22222222
    0x49,                                                        // dec    ecx
    0x75, 0xec,                                                  // jne    again
    0xf4,                                                        // hlt
};

TEST_F(CpuCoreTest, SelfModifyingCodeAcrossAPageBoundary) {
  boot(kSmcCrossPage, 0xfff0);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(regs().gpr[kEax], 0x22222222u);
  EXPECT_EQ(regs().gpr[kEbx], 0x33333333u);
}

TEST_F(CpuCoreTest, CodeRewrittenFromOutsideIsRedecoded) {
  boot(kLoop);
  ASSERT_EQ(run(40), CpuStop::budget);  // the loop is decoded and cached
  // The host (a loader, DMA) patches "add eax,3" into "add eax,5".
  write8(0x10002, 5);
  const u32 eax = regs().gpr[kEax];
  ASSERT_EQ(run(4), CpuStop::budget);
  EXPECT_EQ(regs().gpr[kEax], eax + 5);
}

// ------------------------------------------------------------------ no FPU

// at 0x10000
const Bytes kFpuProbe = {
    0x66, 0xb8, 0x5a, 0x5a,                                // mov    ax,0x5a5a
    0xdb, 0xe3,                                            // fninit
    0xdf, 0xe0,                                            // fnstsw ax
    0x66, 0xc7, 0x05, 0x00, 0x00, 0x02, 0x00, 0x5a, 0x5a,  // mov    WORD PTR ds:0x20000,0x5a5a
    0xd9, 0x3d, 0x00, 0x00, 0x02, 0x00,                    // fnstcw WORD PTR ds:0x20000
    0x9b,                                                  // fwait
    0xf4,                                                  // hlt
};

TEST_F(CpuCoreTest, FpuProbeFindsNoCoprocessor) {
  boot(kFpuProbe);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(regs().gpr[kEax] & 0xffff, 0x5a5au);
  EXPECT_EQ(read16(0x20000), 0x5a5au);
  EXPECT_EQ(regs().eip, 0x10019u);
}

TEST_F(CpuCoreTest, EscapeWithEmulationSetRaisesNm) {
  boot(kFpuProbe);
  CpuRegisters r = regs();
  r.cr0 |= 4;  // EM
  set_regs(r);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_TRUE(in_handler(7));
  EXPECT_EQ(stack32(0), 0x10004u);
}

TEST_F(CpuCoreTest, CpuidIsA486WithTscAndCx8) {
  boot({0x31, 0xc0, 0x0f, 0xa2, 0x89, 0xde, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0xf4});
  // xor eax,eax; cpuid; mov esi,ebx; mov eax,1; cpuid; hlt
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEsi], 0x756e6547u);  // "Genu"
  EXPECT_EQ((r.gpr[kEax] >> 8) & 0xf, 4u);
  EXPECT_EQ(r.gpr[kEdx] & 0x111, 0x110u);  // TSC, CX8, no FPU
}

// ------------------------------------------------------------------ real mode

// at 0x7c00, .code16
const Bytes kRealMode = {
    0xb8, 0x34, 0x12,  // mov    ax,0x1234
    0xbb, 0x10, 0x00,  // mov    bx,0x10
    0x8e, 0xdb,        // mov    ds,bx
    0xa3, 0x20, 0x00,  // mov    [0x20],ax     linear 0x120
    0xcd, 0x21,        // int    0x21
    0x01, 0xc8,        // add    ax,cx
    0xf4,              // hlt
};
// at 0x600, .code16
const Bytes kRealHandler = {
    0xb9, 0x77, 0x00,  // mov    cx,0x77
    0xcf,              // iret
};

TEST_F(CpuCoreTest, RealModeSegmentsAndIvtInterrupts) {
  cpu.reset();
  const CpuRegisters reset_state = regs();
  EXPECT_EQ(reset_state.eip, 0xfff0u);
  EXPECT_EQ(reset_state.seg[1].selector, 0xf000u);
  EXPECT_EQ(reset_state.seg[1].base, 0xffff0000u);
  load(0x7c00, kRealMode);
  load(0x600, kRealHandler);
  write32(0x21 * 4, 0x00000600);  // IVT: 0000:0600
  CpuRegisters r = reset_state;
  r.seg[1] = SegmentCache{0, 0, 0xffff, 0x9b};
  r.seg[2] = SegmentCache{0, 0, 0xffff, 0x93};
  r.gpr[kEsp] = 0x7000;
  r.eip = 0x7c00;
  set_regs(r);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  r = regs();
  EXPECT_EQ(r.gpr[kEax] & 0xffff, 0x12abu);
  EXPECT_EQ(read16(0x120), 0x1234u);
  EXPECT_EQ(r.seg[3].base, 0x100u);
  EXPECT_EQ(r.gpr[kEsp] & 0xffff, 0x7000u);
  EXPECT_EQ(r.eip, 0x7c10u);
}

// ------------------------------------------------------------------ state

TEST_F(CpuCoreTest, SerializeRoundTripAndNamedJsonFields) {
  boot(kLoop);
  ASSERT_EQ(run(10), CpuStop::budget);  // leaves lazy flags behind (CMP)
  const CpuRegisters before = regs();
  std::stringstream bin;
  {
    BinaryOut ar(bin);
    ar(cpu);
  }
  cputest::CpuFixture other;
  {
    BinaryIn ar(bin);
    ar(other.cpu);
  }
  const CpuRegisters after = other.cpu.registers();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(after.gpr[i], before.gpr[i]) << "gpr " << i;
  EXPECT_EQ(after.eip, before.eip);
  EXPECT_EQ(after.eflags, before.eflags);
  for (int s = 0; s < 6; ++s) {
    EXPECT_EQ(after.seg[s].selector, before.seg[s].selector);
    EXPECT_EQ(after.seg[s].base, before.seg[s].base);
    EXPECT_EQ(after.seg[s].limit, before.seg[s].limit);
    EXPECT_EQ(after.seg[s].attrs, before.seg[s].attrs);
  }
  EXPECT_EQ(after.gdtr.base, kGdt);
  EXPECT_EQ(after.idtr.base, kIdt);
  EXPECT_EQ(after.cr0, before.cr0);

  // The copy runs on exactly like the original.
  other.load(kCodeAddr, kLoop);
  ASSERT_EQ(run(33), CpuStop::budget);
  ASSERT_EQ(other.cpu.run(33), CpuStop::budget);
  EXPECT_EQ(other.cpu.registers().gpr[kEax], regs().gpr[kEax]);
  EXPECT_EQ(other.cpu.registers().eflags, regs().eflags);
  EXPECT_EQ(other.cpu.registers().eip, regs().eip);

  std::stringstream json;
  {
    JsonOut ar(json);
    ar(cereal::make_nvp("cpu", cpu));
  }
  const std::string text = json.str();
  for (const char* field :
       {"\"eax\"",  "\"edi\"",   "\"eip\"",  "\"eflags\"", "\"cs\"",     "\"ss\"",     "\"selector\"",
        "\"base\"", "\"limit\"", "\"gdtr\"", "\"idtr\"",   "\"ldtr\"",   "\"tr\"",     "\"cr0\"",
        "\"cr2\"",  "\"cr3\"",   "\"cr4\"",  "\"dr\"",     "\"halted\"", "\"inhibit\""}) {
    EXPECT_NE(text.find(field), std::string::npos) << field;
  }
}

// ------------------------------------------------------------------ differential

// The decoded-block handlers against the general decoder: the same random
// programs run once normally and once with a block hook installed (which
// sends every instruction through the general decoder), in slices of odd
// sizes. Any difference in registers, flags, instruction count or RAM is a
// bug in one of the two.
class Lcg {
 public:
  explicit Lcg(u32 seed) : m_state(seed) {}
  u32 next() {
    m_state = m_state * 1664525u + 1013904223u;
    return m_state >> 8;
  }
  u32 below(u32 n) { return next() % n; }

 private:
  u32 m_state;
};

// One random instruction from the forms the block decoder knows, with
// memory operands based on EBX, ESI or EDI (which start in a data area).
void random_instruction(Lcg& rng, Bytes& out) {
  static const u8 kOneByte[] = {
      0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x10, 0x11, 0x12, 0x13, 0x14,
      0x15, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2a, 0x2b,
      0x2c, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x40, 0x43, 0x48,
      0x4a, 0x50, 0x53, 0x56, 0x58, 0x5a, 0x5f, 0x68, 0x69, 0x6a, 0x6b, 0x70, 0x72, 0x74, 0x75, 0x77, 0x7c,
      0x7f, 0x80, 0x81, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8d, 0x90, 0x91, 0x93, 0x98,
      0x99, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xaa, 0xab, 0xac, 0xad, 0xa8, 0xa9, 0xb0, 0xb4, 0xb9, 0xbd,
      0xc0, 0xc1, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3, 0xeb, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfc, 0xfd, 0xfe,
      0xff, 0x0f, 0x0f, 0x0f, 0x0f, 0xf3, 0x66, 0xc9, 0xe8, 0xc3};
  static const u8 kTwoByte[] = {0x40, 0x42, 0x44, 0x47, 0x4c, 0x4f, 0x82, 0x85, 0x8c, 0x90, 0x93, 0x95, 0x9e,
                                0xaf, 0xb6, 0xb7, 0xbe, 0xbf, 0xa3, 0xab, 0xba, 0xbc, 0xbd, 0xa4, 0xac, 0xc8};
  auto imm = [&](unsigned n) {
    for (unsigned i = 0; i < n; ++i) out.push_back(static_cast<u8>(rng.next()));
  };
  auto modrm = [&] {
    const unsigned mod = rng.below(4), reg = rng.below(8);
    if (mod == 3) {
      out.push_back(static_cast<u8>(0xc0 | reg << 3 | rng.below(8)));
      return;
    }
    static const u8 kBases[] = {3, 6, 7};  // ebx, esi, edi
    const unsigned base = kBases[rng.below(3)];
    if (rng.below(4) == 0) {
      out.push_back(static_cast<u8>(mod << 6 | reg << 3 | 4));
      out.push_back(static_cast<u8>(rng.below(4) << 6 | 4 << 3 | base));  // SIB without an index
    } else {
      out.push_back(static_cast<u8>(mod << 6 | reg << 3 | base));
    }
    if (mod == 1) imm(1);
    if (mod == 2) {
      out.push_back(static_cast<u8>(rng.below(0x40)));
      out.push_back(0);
      out.push_back(0);
      out.push_back(0);
    }
  };
  // Operand- and address-size prefixes in front of anything.
  if (rng.below(6) == 0) out.push_back(0x66);
  if (rng.below(10) == 0) out.push_back(0x67);
  const u8 op = kOneByte[rng.below(sizeof kOneByte)];
  out.push_back(op);
  if (op == 0xf3) {
    if (rng.below(3) == 0) out.back() = 0xf2;
    if (rng.below(4) == 0) out.pop_back();  // no prefix: one iteration
    static const u8 kStrings[] = {0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
    out.push_back(kStrings[rng.below(sizeof kStrings)]);
    return;
  }
  if (op == 0x66) {
    out.push_back(0x01);  // add r/m16, r16: the general decoder's business
    modrm();
    return;
  }
  if (op == 0x0f) {
    const u8 op2 = kTwoByte[rng.below(sizeof kTwoByte)];
    out.push_back(op2);
    if (op2 >= 0x80 && op2 <= 0x8f) {
      out.push_back(static_cast<u8>(rng.below(0x20)));
      out.push_back(0);
      out.push_back(0);
      out.push_back(0);
      return;
    }
    modrm();
    if (op2 == 0xba || op2 == 0xa4 || op2 == 0xac) imm(1);
    return;
  }
  if (op < 0x40 && (op & 7) == 4) return imm(1);
  if (op < 0x40 && (op & 7) == 5) return imm(4);
  if (op < 0x40) return modrm();
  if (op >= 0x70 && op <= 0x7f) {
    out.push_back(static_cast<u8>(rng.below(0x30)));  // forward only, so programs end
    return;
  }
  switch (op) {
    case 0x68:
      return imm(4);
    case 0x6a:
      return imm(1);
    case 0x69:
      modrm();
      return imm(4);
    case 0x6b:
      modrm();
      return imm(1);
    case 0x80:
      modrm();
      return imm(1);
    case 0x81:
      modrm();
      return imm(4);
    case 0x83:
      modrm();
      return imm(1);
    case 0xa0:
    case 0xa1:
    case 0xa2:
    case 0xa3:
      out.push_back(static_cast<u8>(rng.below(0x100)));
      out.push_back(0x00);
      out.push_back(0x02);
      out.push_back(0x00);
      return;
    case 0xa8:
      return imm(1);
    case 0xa9:
      return imm(4);
    case 0xb0:
    case 0xb4:
      return imm(1);
    case 0xb9:
      out.push_back(static_cast<u8>(rng.below(16)));  // small counts for REP
      out.push_back(0);
      out.push_back(0);
      out.push_back(0);
      return;
    case 0xbd:
      return imm(4);
    case 0xc0:
    case 0xc1:
      modrm();
      return imm(1);
    case 0xc6: {
      modrm();
      out[out.size() - 1 - 0] &= 0xff;  // keep the operand; reg must be 0 below
      return imm(1);
    }
    case 0xc7:
      modrm();
      return imm(4);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
    case 0x84:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x88:
    case 0x89:
    case 0x8a:
    case 0x8b:
    case 0x8d:
    case 0xfe:
    case 0xff:
      return modrm();
    case 0xf6: {
      const size_t at = out.size();
      modrm();
      if (((out[at] >> 3) & 7) <= 1) imm(1);
      return;
    }
    case 0xf7: {
      const size_t at = out.size();
      modrm();
      if (((out[at] >> 3) & 7) <= 1) imm(4);
      return;
    }
    case 0xeb:
      out.push_back(static_cast<u8>(rng.below(0x30)));
      return;
    case 0xe8:
      out.push_back(static_cast<u8>(rng.below(0x30)));
      out.push_back(0);
      out.push_back(0);
      out.push_back(0);
      return;
    default:
      return;
  }
}

struct DiffMachine : cputest::CpuFixture {
  void boot(const Bytes& program, const Bytes& data, bool general_only, bool code16) {
    for (u32 v = 0; v < 256; ++v) {
      write64(0x2000 + 8 * v, make_gate(0x08, 0x3000 + 16 * v, 0xe));
      write8(0x3000 + 16 * v, 0xf4);
    }
    write64(0x1008, make_descriptor(0, 0xfffff, 0x9a, 0xc));
    write64(0x1010, make_descriptor(0, 0xfffff, 0x92, 0xc));
    write64(0x1018, make_descriptor(kCodeAddr, 0xffff, 0x9a, 0x0));
    load(0x20000, data);
    load(kCodeAddr, program);
    start(kCodeAddr);
    CpuRegisters r = regs();
    r.gdtr = {0x1000, 0x1f};
    r.idtr = {0x2000, 0x7ff};
    for (int i = 0; i < 8; ++i) r.gpr[i] = 0x20000 + 0x100 * i;
    r.gpr[kEcx] = 5;
    r.gpr[kEsp] = kStackTop;
    if (code16) {
      // A 16-bit code segment based at the program.
      r.seg[1] = SegmentCache{0x18, kCodeAddr, 0xffff, 0x009b};
      r.eip = 0;
    }
    set_regs(r);
    if (general_only) cpu.set_block_hook([](u32, std::span<const u8>, bool) {});
  }
  // Runs `total` instructions in slices; stops early on HLT or shutdown.
  CpuStop run_sliced(u64 total, u32 slice) {
    CpuStop why = CpuStop::budget;
    while (clock.icount() < total) {
      why = run(std::min<u64>(slice, total - clock.icount()));
      if (why != CpuStop::budget) break;
    }
    return why;
  }
};

std::string diff_machines(DiffMachine& a, DiffMachine& b) {
  std::string out;
  const CpuRegisters ra = a.regs(), rb = b.regs();
  static const char* kNames[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  for (int i = 0; i < 8; ++i) {
    if (ra.gpr[i] != rb.gpr[i])
      out += std::string(kNames[i]) + " " + cputest::hex(ra.gpr[i]) + " != " + cputest::hex(rb.gpr[i]) + "; ";
  }
  if (ra.eip != rb.eip) out += "eip " + cputest::hex(ra.eip) + " != " + cputest::hex(rb.eip) + "; ";
  if (ra.eflags != rb.eflags)
    out += "eflags " + cputest::hex(ra.eflags) + " != " + cputest::hex(rb.eflags) + "; ";
  if (a.clock.icount() != b.clock.icount()) out += "icount differs; ";
  if (a.cpu.halted() != b.cpu.halted()) out += "halted differs; ";
  if (std::memcmp(a.memory.data(), b.memory.data(), a.memory.size()) != 0) {
    for (u32 i = 0; i < a.memory.size(); ++i) {
      if (a.memory.data()[i] != b.memory.data()[i]) {
        out += "ram at " + cputest::hex(i) + "; ";
        break;
      }
    }
  }
  return out;
}

TEST(CpuDifferentialTest, BlockHandlersMatchTheGeneralDecoder) {
  Lcg rng(20261125);
  const int programs =
      std::getenv("REEL_CPU_DIFF_PROGRAMS") ? std::atoi(std::getenv("REEL_CPU_DIFF_PROGRAMS")) : 300;
  for (int program_no = 0; program_no < programs; ++program_no) {
    Bytes program;
    while (program.size() < 200) random_instruction(rng, program);
    program.push_back(0xf4);
    Bytes data(0x1000);
    for (u8& byte : data) byte = static_cast<u8>(rng.next());
    const u32 slice = std::getenv("REEL_CPU_DIFF_STEP") ? (rng.below(40), 1u) : 1 + rng.below(40);
    const bool code16 = rng.below(3) == 0;
    DiffMachine fast, general;
    fast.boot(program, data, false, code16);
    general.boot(program, data, true, code16);
    // Lockstep, so a difference is reported near the instruction that made it.
    std::string diff;
    u32 eip_before = cputest::CpuFixture::kCodeAddr;
    while (fast.clock.icount() < 3000 && diff.empty()) {
      eip_before = fast.regs().eip;
      const CpuRegisters dbg = fast.regs();
      const u64 budget = std::min<u64>(slice, 3000 - fast.clock.icount());
      const CpuStop why_fast = fast.run(budget);
      const CpuStop why_general = general.run(budget);
      if (why_fast != why_general) diff = "stop reasons differ; ";
      diff += diff_machines(fast, general);
      if (!diff.empty()) {
        diff += "registers before the slice:";
        for (int i = 0; i < 8; ++i) {
          diff += ' ';
          diff += cputest::hex(dbg.gpr[i]);
        }
      }
      if (why_fast != CpuStop::budget) break;
    }
    EXPECT_EQ(diff, "") << "program " << program_no << ", slice of " << slice << " from EIP "
                        << cputest::hex(eip_before) << ": " << cputest::hex_bytes(program);
    if (!diff.empty()) break;
  }
}

}  // namespace
}  // namespace reel
