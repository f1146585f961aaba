// Decode and dispatch micro-benchmarks: guest instructions per second on
// small loops that stress one part of the interpreter each. Run:
//   build/release/tests/bench/cpu_bench
// (items_per_second is guest instructions per second).

#include <benchmark/benchmark.h>

#include <vector>

#include "core/cpu/cpu.h"
#include "core/guest_memory.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/virtual_clock.h"

namespace reel {
namespace {

void run_loop(benchmark::State& state, const std::vector<u8>& code) {
  GuestMemory mem(4 << 20);
  PortBus ports;
  MmioBus mmio;
  VirtualClock clock;
  Cpu cpu(mem, ports, mmio, clock);
  mem.write(0x10000, code);
  cpu.enter_flat_protected_mode(0x10000);
  CpuRegisters r = cpu.registers();
  r.gpr[kEsp] = 0x80000;
  r.gpr[kEsi] = 0x100000;
  r.gpr[kEdi] = 0x200000;
  cpu.set_registers(r);
  constexpr u64 kSlice = 1'000'000;
  for (auto _ : state) {
    cpu.run(kSlice);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSlice));
}

// add eax, ecx; xor edx, eax; inc ecx; cmp ecx, edx; jne -> loop
void BM_AluLoop(benchmark::State& state) {
  run_loop(state, {0x01, 0xc8, 0x31, 0xc2, 0x41, 0x39, 0xd1, 0xeb, 0xf7});
}
BENCHMARK(BM_AluLoop);

// mov eax, [esi]; add [edi], eax; add esi, 4; and esi, 0x1fffff|0x100000...; jmp
void BM_MemoryLoop(benchmark::State& state) {
  run_loop(state, {0x8b, 0x06,                          // mov eax, [esi]
                   0x01, 0x07,                          // add [edi], eax
                   0x83, 0xc6, 0x04,                    // add esi, 4
                   0x81, 0xe6, 0xff, 0xff, 0x1f, 0x00,  // and esi, 0x1fffff
                   0x81, 0xce, 0x00, 0x00, 0x10, 0x00,  // or esi, 0x100000
                   0xeb, 0xeb});                        // jmp start
}
BENCHMARK(BM_MemoryLoop);

// call f; jmp back; f: ret
void BM_CallRet(benchmark::State& state) {
  run_loop(state, {0xe8, 0x02, 0x00, 0x00, 0x00, 0xeb, 0xf9, 0xc3});
}
BENCHMARK(BM_CallRet);

// mov ecx, 1024; rep movsd; sub esi, 4096; sub edi, 4096; jmp
void BM_RepMovsd(benchmark::State& state) {
  run_loop(state, {0xb9, 0x00, 0x04, 0x00, 0x00, 0xf3, 0xa5, 0x81, 0xee, 0x00, 0x10, 0x00, 0x00, 0x81, 0xef, 0x00,
                   0x10, 0x00, 0x00, 0xeb, 0xeb});
}
BENCHMARK(BM_RepMovsd);

// Self-modifying: inc byte [0x10007] rewrites an immediate in the loop.
void BM_SelfModifyingLoop(benchmark::State& state) {
  run_loop(state, {0xfe, 0x05, 0x07, 0x00, 0x01, 0x00,  // inc byte [0x10007]
                   0xb0, 0x00,                          // mov al, imm (patched)
                   0xeb, 0xf6});
}
BENCHMARK(BM_SelfModifyingLoop);

}  // namespace
}  // namespace reel
