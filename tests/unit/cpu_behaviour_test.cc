// CPU behaviour that the oracle cannot check: instruction counting, REP
// interrupted by the budget, interrupts and their shadows, HLT, self-
// modifying code, real mode, triple faults, and state round trips.

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "core/cpu/cpu.h"
#include "core/guest_memory.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel {
namespace {

class FakePic : public InterruptController {
 public:
  bool intr_pending() const override { return pending; }
  u8 acknowledge() override {
    pending = false;
    ++acks;
    if (cpu) cpu->intr_changed();  // as the 8259's INTA lowers INTR
    return vector;
  }
  IntrListener* cpu = nullptr;
  bool pending = false;
  u8 vector = 0x20;
  int acks = 0;
};

class CpuTest : public ::testing::Test {
 protected:
  CpuTest() : mem(2 << 20), cpu(mem, ports, mmio, clock) {
    cpu.set_interrupt_controller(&pic);
    pic.cpu = &cpu;
  }

  void load(u32 at, std::vector<u8> code) { mem.write(at, code); }
  void boot(u32 eip) {
    cpu.enter_flat_protected_mode(eip);
    CpuRegisters r = cpu.registers();
    r.gpr[kEsp] = 0x9000;
    cpu.set_registers(r);
  }
  // A flat GDT at 0x500 and an IDT at 0x600 whose vectors 0x00-0x3f all
  // point at `handler`.
  void install_idt(u32 handler, u16 idt_limit = 0x3f * 8 + 7) {
    const u64 gdt[3] = {0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull};
    mem.write(0x500, std::span<const u8>(reinterpret_cast<const u8*>(gdt), sizeof gdt));
    for (u32 v = 0; v < 0x40; ++v) {
      const u64 gate = (handler & 0xffff) | (u64{0x08} << 16) | (u64{0x8e} << 40) | (u64{handler >> 16} << 48);
      mem.write(0x600 + v * 8, std::span<const u8>(reinterpret_cast<const u8*>(&gate), 8));
    }
    CpuRegisters r = cpu.registers();
    r.gdtr = DescriptorTableReg{0x500, 23};
    r.idtr = DescriptorTableReg{0x600, idt_limit};
    cpu.set_registers(r);
  }
  u32 reg(Gpr g) { return cpu.registers().gpr[g]; }
  u8 byte(u32 at) {
    u8 b = 0;
    mem.read(at, std::span<u8>(&b, 1));
    return b;
  }

  GuestMemory mem;
  PortBus ports;
  MmioBus mmio;
  VirtualClock clock;
  FakePic pic;
  Cpu cpu;
};

TEST_F(CpuTest, RunRetiresExactlyTheBudget) {
  load(0x1000, {0x40, 0xeb, 0xfd});  // inc eax; jmp back
  boot(0x1000);
  EXPECT_EQ(cpu.run(1001), CpuStop::budget);
  EXPECT_EQ(clock.icount(), 1001u);
  EXPECT_EQ(reg(kEax), 501u);
}

TEST_F(CpuTest, RepStopsBetweenIterationsAndResumesToTheSameResult) {
  std::vector<u8> src(300);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<u8>(i * 7);
  mem.write(0x20000, src);
  // mov esi, 0x20000; mov edi, 0x30000; mov ecx, 300; rep movsb; hlt
  load(0x1000, {0xbe, 0x00, 0x00, 0x02, 0x00, 0xbf, 0x00, 0x00, 0x03, 0x00, 0xb9, 0x2c, 0x01, 0x00, 0x00, 0xf3, 0xa4,
                0xf4});
  boot(0x1000);
  EXPECT_EQ(cpu.run(3 + 100), CpuStop::budget);
  EXPECT_EQ(reg(kEcx), 200u);  // 100 iterations, each one retired instruction
  EXPECT_EQ(cpu.registers().eip, 0x100fu);  // still on the REP
  EXPECT_EQ(cpu.run(1000), CpuStop::halted);
  EXPECT_EQ(clock.icount(), 3u + 300 + 1);
  std::vector<u8> dst(300);
  mem.read(0x30000, dst);
  EXPECT_EQ(dst, src);
}

TEST_F(CpuTest, ExternalInterruptHonoursIfAndTheStiShadow) {
  // Handler at 0x3000: inc ebx; iret.
  load(0x3000, {0x43, 0xcf});
  install_idt(0x3000);
  // sti; nop; nop; cli; hlt
  load(0x1000, {0xfb, 0x90, 0x90, 0xfa, 0xf4});
  boot(0x1000);
  pic.pending = true;
  cpu.intr_changed();
  EXPECT_EQ(cpu.run(1), CpuStop::budget);  // IF was clear: nothing taken
  EXPECT_EQ(pic.acks, 0);
  EXPECT_EQ(cpu.run(1), CpuStop::budget);  // the instruction after STI runs first
  EXPECT_EQ(pic.acks, 0);
  EXPECT_EQ(cpu.registers().eip, 0x1002u);
  cpu.intr_changed();
  cpu.run(1);  // now the interrupt is taken, then inc ebx runs
  EXPECT_EQ(pic.acks, 1);
  EXPECT_EQ(pic.vector, 0x20);
  cpu.intr_changed();
  cpu.run(10);
  EXPECT_EQ(reg(kEbx), 1u);
  EXPECT_TRUE(cpu.halted());
}

TEST_F(CpuTest, HaltWakesOnInterrupt) {
  load(0x3000, {0x43, 0xcf});
  install_idt(0x3000);
  load(0x1000, {0xfb, 0xf4, 0x40, 0xf4});  // sti; hlt; inc eax; hlt
  boot(0x1000);
  EXPECT_EQ(cpu.run(100), CpuStop::halted);
  EXPECT_FALSE(cpu.interrupt_ready());
  EXPECT_EQ(cpu.run(100), CpuStop::halted);  // nothing pending: stays halted, retires nothing
  EXPECT_EQ(clock.icount(), 2u);
  pic.pending = true;
  cpu.intr_changed();
  EXPECT_TRUE(cpu.interrupt_ready());
  EXPECT_EQ(cpu.run(100), CpuStop::halted);
  EXPECT_EQ(reg(kEbx), 1u);
  EXPECT_EQ(reg(kEax), 1u);
}

TEST_F(CpuTest, ExceptionPushesErrorCodeAndFaultingEip) {
  // Handler: pop ecx (error code); pop edx (eip); hlt
  load(0x3000, {0x59, 0x5a, 0xf4});
  install_idt(0x3000);
  // mov ax, 0x7f8; mov ds, ax  -> #GP(0x7f8) at the mov ds
  load(0x1000, {0x66, 0xb8, 0xf8, 0x07, 0x8e, 0xd8});
  boot(0x1000);
  EXPECT_EQ(cpu.run(100), CpuStop::halted);
  EXPECT_EQ(reg(kEcx), 0x7f8u);
  EXPECT_EQ(reg(kEdx), 0x1004u);
  EXPECT_EQ(cpu.exceptions()[13], 1u);
}

TEST_F(CpuTest, TripleFaultShutsDown) {
  install_idt(0x3000, 0);  // an IDT too short for anything
  load(0x1000, {0x0f, 0x0b});  // ud2
  boot(0x1000);
  EXPECT_EQ(cpu.run(100), CpuStop::shutdown);
}

TEST_F(CpuTest, SelfModifyingCode) {
  // mov byte [0x1008], 0x41 (inc ecx); nop; ... at 0x1008: originally inc eax
  load(0x1000, {0xc6, 0x05, 0x08, 0x10, 0x00, 0x00, 0x41, 0x90, 0x40, 0xf4});
  boot(0x1000);
  cpu.run(100);
  EXPECT_EQ(reg(kEax), 0u);
  EXPECT_EQ(reg(kEcx), 1u);
}

TEST_F(CpuTest, CpuidAndRdtsc) {
  load(0x1000, {0x31, 0xc0, 0x40, 0x0f, 0xa2, 0xf4});  // xor eax,eax; inc eax; cpuid; hlt
  boot(0x1000);
  cpu.run(10);
  EXPECT_EQ((reg(kEax) >> 8) & 0xf, 4u);  // a 486
  EXPECT_EQ(reg(kEdx) & 1, 0u);           // no FPU
  clock.advance_idle_to(123456789);
  load(0x2000, {0x0f, 0x31, 0xf4});
  boot(0x2000);
  const u64 before = clock.now_ns();
  cpu.run(10);
  EXPECT_EQ(u64{reg(kEdx)} << 32 | reg(kEax), before);
}

TEST_F(CpuTest, RealModeFromReset) {
  cpu.reset();
  // At F000:FFF0 (0xffff0): jmp 0000:7c00
  load(0xffff0, {0xea, 0x00, 0x7c, 0x00, 0x00});
  // mov ax, 0x1234; mov ds, ax; mov [0x10], ax; mov bx, [0x10]; int 0x21; hlt
  load(0x7c00, {0xb8, 0x34, 0x12, 0x8e, 0xd8, 0xa3, 0x10, 0x00, 0x8b, 0x1e, 0x10, 0x00, 0xcd, 0x21, 0xf4});
  // IVT entry 0x21 -> 0000:0x500: inc cx; iret
  load(0x21 * 4, {0x00, 0x05, 0x00, 0x00});
  load(0x500, {0x41, 0xcf});
  CpuRegisters r = cpu.registers();
  r.gpr[kEsp] = 0x7000;
  // Without firmware at 4 GiB - 16, start from the BIOS alias below 1 MiB.
  r.seg[static_cast<int>(SegReg::cs)].base = 0xf0000;
  cpu.set_registers(r);
  EXPECT_EQ(cpu.run(100), CpuStop::halted);
  EXPECT_EQ(byte(0x12340 + 0x10), 0x34);
  EXPECT_EQ(reg(kEbx) & 0xffff, 0x1234u);
  EXPECT_EQ(reg(kEcx) & 0xffff, 1u);
}

TEST_F(CpuTest, SixteenBitAddressingInProtectedMode) {
  // mov bx, 0x2000; mov si, 0x10; mov byte [bx+si+5], 0x77 (67-prefixed); hlt
  load(0x1000, {0x66, 0xbb, 0x00, 0x20, 0x66, 0xbe, 0x10, 0x00, 0x67, 0xc6, 0x40, 0x05, 0x77, 0xf4});
  boot(0x1000);
  cpu.run(10);
  EXPECT_EQ(byte(0x2015), 0x77);
}

TEST_F(CpuTest, StateRoundTripsThroughTheArchive) {
  load(0x1000, {0xb8, 0x78, 0x56, 0x34, 0x12, 0x01, 0xc0, 0xf4});  // mov eax, imm; add eax, eax; hlt
  boot(0x1000);
  cpu.run(10);
  std::stringstream ss;
  {
    BinaryOut ar(ss);
    ar(cpu);
  }
  VirtualClock clock2;
  Cpu copy(mem, ports, mmio, clock2);
  {
    BinaryIn ar(ss);
    ar(copy);
  }
  const CpuRegisters a = cpu.registers(), b = copy.registers();
  EXPECT_EQ(0, std::memcmp(a.gpr, b.gpr, sizeof a.gpr));
  EXPECT_EQ(a.eip, b.eip);
  EXPECT_EQ(a.eflags, b.eflags);
  EXPECT_TRUE(copy.halted());
  std::stringstream js;
  {
    JsonOut ar(js);
    ar(cereal::make_nvp("cpu", cpu));
  }
  EXPECT_NE(js.str().find("\"eax\": 610839792"), std::string::npos) << js.str();
}

}  // namespace
}  // namespace reel
