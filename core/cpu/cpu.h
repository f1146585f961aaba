#pragma once

// PUBLIC API CONTRACT (used by core/machine, harness and tests). The CPU
// helper owns everything private and may add files under core/cpu/, but
// keeps these public declarations working.

#include <functional>
#include <span>

#include "core/interrupts.h"
#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class GuestMemory;
class PortBus;
class MmioBus;
class VirtualClock;

enum class SegReg : u8 { es = 0, cs = 1, ss = 2, ds = 3, fs = 4, gs = 5 };
enum Gpr : u8 { kEax = 0, kEcx, kEdx, kEbx, kEsp, kEbp, kEsi, kEdi };

// A segment register with its hidden descriptor cache.
struct SegmentCache {
  u16 selector = 0;
  u32 base = 0;
  u32 limit = 0xffff;  // byte granular, already scaled by G
  u16 attrs = 0;       // descriptor bits 40..55: type, S, DPL, P, AVL, L, D/B, G
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(selector), REEL_FIELD(base), REEL_FIELD(limit), REEL_FIELD(attrs));
  }
};

struct DescriptorTableReg {
  u32 base = 0;
  u16 limit = 0xffff;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(base), REEL_FIELD(limit));
  }
};

// Architectural state as a debugger or a state dump sees it. EFLAGS here is
// always materialised.
struct CpuRegisters {
  u32 gpr[8] = {};
  u32 eip = 0;
  u32 eflags = 2;
  SegmentCache seg[6];
  DescriptorTableReg gdtr, idtr;
  SegmentCache ldtr, tr;
  u32 cr0 = 0x10, cr2 = 0, cr3 = 0, cr4 = 0;
  u32 dr[8] = {0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400};
};

enum class CpuStop : u8 {
  budget,          // the instruction budget ran out
  halted,          // HLT (or still halted and no interrupt became pending)
  exit_requested,  // a device called request_exit() during the last instruction
  shutdown,        // triple fault
};

class Cpu : public IntrListener {
 public:
  Cpu(GuestMemory& memory, PortBus& ports, MmioBus& mmio, VirtualClock& clock);
  ~Cpu() override;

  void set_interrupt_controller(InterruptController* pic) { m_pic = pic; }

  // Power-on state: real mode, CS:IP = F000:FFF0.
  void reset();
  // The state a multiboot loader leaves: CR0.PE=1, flat 4 GiB 32-bit code
  // and data segments (selectors 0x08 / 0x10), EFLAGS=2, EIP=eip.
  void enter_flat_protected_mode(u32 eip);

  // Runs until `budget` instructions have retired (each REP iteration counts
  // as one and a REP may stop between iterations), HLT, an exit request or
  // a triple fault. Increments clock.icount_ref() after every retired
  // instruction; a device called during an instruction sees the count of
  // instructions retired before it. Checks for interrupts before the first
  // instruction and whenever IF or the INTR line changes.
  CpuStop run(u64 budget);

  bool halted() const;
  // True when an interrupt would be taken now: IF=1, no interrupt shadow
  // pending, and the controller reports INTR.
  bool interrupt_ready() const;
  // Called by a device during I/O: stop after the current instruction.
  void request_exit() { m_exit_requested = true; }
  // IntrListener: the PIC's INTR output changed.
  void intr_changed() override;

  // Architectural registers (flags materialised on read; writing them is
  // used by loaders, tests and the gdb stub).
  CpuRegisters registers() const;
  void set_registers(const CpuRegisters& regs);

  // Called when the CPU decodes a new block (for -d in_asm): linear address
  // of the first instruction, its bytes, and whether code is 32-bit.
  using BlockHook = std::function<void(u32 linear, std::span<const u8> bytes, bool code32)>;
  void set_block_hook(BlockHook hook);

  // Serialize architectural state (not caches) with named fields.
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("placeholder", m_exit_requested));
  }

 private:
  GuestMemory& m_memory;
  PortBus& m_ports;
  MmioBus& m_mmio;
  VirtualClock& m_clock;
  InterruptController* m_pic = nullptr;
  bool m_exit_requested = false;
  // ... the helper adds the rest
};

}  // namespace reel
