// Placeholder so the tree links while the interpreter is being written.
#include "core/cpu/cpu.h"

namespace reel {

Cpu::Cpu(GuestMemory& memory, PortBus& ports, MmioBus& mmio, VirtualClock& clock)
    : m_memory(memory), m_ports(ports), m_mmio(mmio), m_clock(clock) {}
Cpu::~Cpu() = default;
void Cpu::reset() {}
void Cpu::enter_flat_protected_mode(u32) {}
CpuStop Cpu::run(u64) { return CpuStop::halted; }
bool Cpu::halted() const { return true; }
bool Cpu::interrupt_ready() const { return false; }
void Cpu::intr_changed() {}
CpuRegisters Cpu::registers() const { return {}; }
void Cpu::set_registers(const CpuRegisters&) {}
void Cpu::set_block_hook(BlockHook) {}

}  // namespace reel
