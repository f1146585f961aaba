#pragma once

// Shared helpers for the CPU tests: a machine with nothing but memory, the
// two buses, the clock and the CPU, plus fakes for an I/O device and the
// interrupt controller. Everything goes through the CPU's public API, so
// the tests keep working whatever the interpreter looks like inside.

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/cpu/cpu.h"
#include "core/device.h"
#include "core/guest_memory.h"
#include "core/interrupts.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel::cputest {

inline constexpr u32 kCF = 1u << 0, kPF = 1u << 2, kAF = 1u << 4, kZF = 1u << 6, kSF = 1u << 7, kTF = 1u << 8,
                     kIF = 1u << 9, kDF = 1u << 10, kOF = 1u << 11;
inline constexpr u32 kArithFlags = kCF | kPF | kAF | kZF | kSF | kOF;

inline std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

inline std::string hex_bytes(std::span<const u8> bytes) {
  std::string s;
  for (u8 b : bytes) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x ", b);
    s += buf;
  }
  if (!s.empty()) s.pop_back();
  return s;
}

// "CF PF ZF" for the bits of `mask`, so a flag mismatch names the flags.
inline std::string flag_names(u32 mask) {
  static const std::pair<u32, const char*> kNames[] = {{kCF, "CF"}, {kPF, "PF"}, {kAF, "AF"},
                                                       {kZF, "ZF"}, {kSF, "SF"}, {kTF, "TF"},
                                                       {kIF, "IF"}, {kDF, "DF"}, {kOF, "OF"}};
  std::string s;
  for (const auto& [bit, name] : kNames) {
    if (mask & bit) {
      if (!s.empty()) s += ' ';
      s += name;
    }
  }
  return s.empty() ? "-" : s;
}

// An I/O device that remembers every access. Reads return `read_value`
// shifted by the offset, so a test can tell which port and size were used.
class FakeIoDevice : public Device {
 public:
  struct Access {
    bool write;
    u32 offset;
    unsigned size;
    u32 value;
  };

  FakeIoDevice() : Device("fake_io.0") {}
  void reset() override { accesses.clear(); }
  u32 read(u32 offset, unsigned size) override {
    const u32 mask = size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
    const u32 value = (read_value + offset) & mask;
    accesses.push_back({false, offset, size, value});
    return value;
  }
  void write(u32 offset, unsigned size, u32 value) override {
    accesses.push_back({true, offset, size, value});
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("read_value", read_value));
  }
  REEL_DEVICE_STATE

  u32 read_value = 0x11223344;
  std::vector<Access> accesses;
};

// The CPU's side of an 8259: a level that the test raises and the vector
// that INTA returns. Acknowledging lowers the line, as an edge-triggered PIC
// with a single request does.
class FakeInterruptController : public InterruptController {
 public:
  explicit FakeInterruptController(IntrListener& cpu) : m_cpu(cpu) {}
  bool intr_pending() const override { return m_pending; }
  u8 acknowledge() override {
    ++acks;
    m_pending = false;
    m_cpu.intr_changed();
    return vector;
  }
  void raise(u8 v) {
    vector = v;
    m_pending = true;
    m_cpu.intr_changed();
  }
  void lower() {
    m_pending = false;
    m_cpu.intr_changed();
  }

  u8 vector = 0x20;
  int acks = 0;

 private:
  IntrListener& m_cpu;
  bool m_pending = false;
};

// One CPU and its surroundings.
class CpuFixture {
 public:
  static constexpr u32 kMemBytes = 4u << 20;
  static constexpr u32 kCodeAddr = 0x10000;
  static constexpr u32 kStackTop = 0x90000;

  explicit CpuFixture(u32 mem_bytes = kMemBytes)
      : memory(mem_bytes), cpu(memory, ports, mmio, clock), pic(cpu) {
    cpu.set_interrupt_controller(&pic);
  }

  void load(u32 addr, std::span<const u8> bytes) {
    if (!memory.write(addr, bytes)) std::abort();
  }
  void load(u32 addr, std::initializer_list<u8> bytes) {
    load(addr, std::span<const u8>(bytes.begin(), bytes.size()));
  }

  // Flat 32-bit protected mode at `eip` with a stack at kStackTop; all other
  // registers zero and EFLAGS=2.
  void start(u32 eip = kCodeAddr) {
    cpu.enter_flat_protected_mode(eip);
    CpuRegisters r = cpu.registers();
    for (u32& g : r.gpr) g = 0;
    r.gpr[kEsp] = kStackTop;
    r.eflags = 2;
    cpu.set_registers(r);
  }

  CpuRegisters regs() const { return cpu.registers(); }
  void set_regs(const CpuRegisters& r) { cpu.set_registers(r); }
  u32 gpr(Gpr g) const { return cpu.registers().gpr[g]; }
  void set_gpr(Gpr g, u32 v) {
    CpuRegisters r = cpu.registers();
    r.gpr[g] = v;
    cpu.set_registers(r);
  }
  u32 eflags() const { return cpu.registers().eflags; }
  void set_eflags(u32 f) {
    CpuRegisters r = cpu.registers();
    r.eflags = f;
    cpu.set_registers(r);
  }

  CpuStop run(u64 budget) { return cpu.run(budget); }
  // Runs until HLT (or the safety budget, which a test treats as a failure).
  CpuStop run_to_halt(u64 max_instructions = 1'000'000) {
    CpuStop why = CpuStop::budget;
    u64 left = max_instructions;
    while (left > 0) {
      const u64 before = clock.icount();
      why = cpu.run(left);
      if (why != CpuStop::budget) return why;
      const u64 done = clock.icount() - before;
      left = done >= left ? 0 : left - done;
    }
    return why;
  }

  u8 read8(u32 addr) const { return memory.data()[addr]; }
  u16 read16(u32 addr) const {
    u16 v;
    std::memcpy(&v, memory.data() + addr, 2);
    return v;
  }
  u32 read32(u32 addr) const {
    u32 v;
    std::memcpy(&v, memory.data() + addr, 4);
    return v;
  }
  void write8(u32 addr, u8 v) { memory.write(addr, std::span<const u8>(&v, 1)); }
  void write16(u32 addr, u16 v) {
    u8 b[2];
    std::memcpy(b, &v, 2);
    memory.write(addr, b);
  }
  void write32(u32 addr, u32 v) {
    u8 b[4];
    std::memcpy(b, &v, 4);
    memory.write(addr, b);
  }
  void write64(u32 addr, u64 v) {
    u8 b[8];
    std::memcpy(b, &v, 8);
    memory.write(addr, b);
  }

  GuestMemory memory;
  PortBus ports;
  MmioBus mmio;
  VirtualClock clock;
  Cpu cpu;
  FakeInterruptController pic;
};

inline const char* stop_name(CpuStop s) {
  switch (s) {
    case CpuStop::budget:
      return "budget";
    case CpuStop::halted:
      return "halted";
    case CpuStop::exit_requested:
      return "exit_requested";
    case CpuStop::shutdown:
      return "shutdown";
  }
  return "?";
}

// Segment descriptor: base, limit (in units of G), access byte (P DPL S
// type), flags nibble (G D/B 0 AVL).
inline u64 make_descriptor(u32 base, u32 limit, u8 access, u8 flags) {
  u64 d = 0;
  d |= limit & 0xffff;
  d |= static_cast<u64>(base & 0xffffff) << 16;
  d |= static_cast<u64>(access) << 40;
  d |= static_cast<u64>((limit >> 16) & 0xf) << 48;
  d |= static_cast<u64>(flags & 0xf) << 52;
  d |= static_cast<u64>(base >> 24) << 56;
  return d;
}

// Interrupt or trap gate (type 0xE / 0xF) in the IDT.
inline u64 make_gate(u16 selector, u32 offset, u8 type, u8 dpl = 0) {
  u64 d = 0;
  d |= offset & 0xffff;
  d |= static_cast<u64>(selector) << 16;
  d |= static_cast<u64>(0x80 | (dpl << 5) | type) << 40;
  d |= static_cast<u64>(offset >> 16) << 48;
  return d;
}

}  // namespace reel::cputest
