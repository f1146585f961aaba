// Decode-and-dispatch speed of the CPU interpreter on small guest loops.
// Each benchmark reports guest instructions retired per second (items/s)
// and the same figure as MIPS. The loops never halt, so every run() spends
// its whole budget; budget slices are as long as the machine's main loop
// uses, so slice overhead is included the way a real run pays it.
//
// The loops were assembled with `as --32` at 0x11000 when the benchmark was
// written.

#include <benchmark/benchmark.h>

#include <vector>

#include "tests/unit/cpu_test_support.h"

namespace reel {
namespace {

using Bytes = std::vector<u8>;

// alu_loop, assembled with `as --32` at 0x11000:
const Bytes kAluLoop = {
    0x01, 0xc8,  // 0x11000: add eax,ecx
    0x31, 0xc2,  // 0x11002: xor edx,eax
    0x29, 0xd3,  // 0x11004: sub ebx,edx
    0xd1, 0xe6,  // 0x11006: shl esi,1
    0x11, 0xf7,  // 0x11008: adc edi,esi
    0x45,        // 0x1100a: inc ebp
    0x39, 0xc5,  // 0x1100b: cmp ebp,eax
    0xeb, 0xf1,  // 0x1100d: jmp 11000 <_start>
};

// memory_loop, assembled with `as --32` at 0x11000:
const Bytes kMemoryLoop = {
    0x81, 0xe6, 0xfc, 0xff, 0x00, 0x00,  // 0x11000: and esi,0xfffc
    0x81, 0xce, 0x00, 0x00, 0x20, 0x00,  // 0x11006: or esi,0x200000
    0x8b, 0x06,                          // 0x1100c: mov eax,DWORD PTR [esi]
    0x01, 0x86, 0x00, 0x00, 0x01, 0x00,  // 0x1100e: add DWORD PTR [esi+0x10000],eax
    0x89, 0x9e, 0x00, 0x00, 0x02, 0x00,  // 0x11014: mov DWORD PTR [esi+0x20000],ebx
    0x50,                                // 0x1101a: push eax
    0x5b,                                // 0x1101b: pop ebx
    0x83, 0xc6, 0x04,                    // 0x1101c: add esi,0x4
    0xeb, 0xdf,                          // 0x1101f: jmp 11000 <_start>
};

// call_ret_loop, assembled with `as --32` at 0x11000:
const Bytes kCallRetLoop = {
    0xe8, 0x03, 0x00, 0x00, 0x00,  // 0x11000: call 11008 <func>
    0x40,                          // 0x11005: inc eax
    0xeb, 0xf8,                    // 0x11006: jmp 11000 <_start>
    0x55,                          // 0x11008: push ebp
    0x89, 0xe5,                    // 0x11009: mov ebp,esp
    0x5d,                          // 0x1100b: pop ebp
    0xc3,                          // 0x1100c: ret
};

// rep_movsd_loop, assembled with `as --32` at 0x11000:
const Bytes kRepMovsdLoop = {
    0xbe, 0x00, 0x00, 0x20, 0x00,  // 0x11000: mov esi,0x200000
    0xbf, 0x00, 0x00, 0x30, 0x00,  // 0x11005: mov edi,0x300000
    0xb9, 0x00, 0x04, 0x00, 0x00,  // 0x1100a: mov ecx,0x400
    0xf3, 0xa5,                    // 0x1100f: rep movs DWORD PTR es:[edi],DWORD PTR ds:[esi]
    0xeb, 0xed,                    // 0x11011: jmp 11000 <_start>
};

// smc_loop, assembled with `as --32` at 0x11000:
const Bytes kSmcLoop = {
    0xa2, 0x07, 0x10, 0x01, 0x00,  // 0x11000: mov ds:0x11007,al
    0x40,                          // 0x11005: inc eax
    0xbb, 0x00, 0x00, 0x00, 0x00,  // 0x11006: mov ebx,0x0
    0xeb, 0xf3,                    // 0x1100b: jmp 11000 <_start>
};

constexpr u64 kSlice = 100'000;

// With `paged`, the loop runs with paging on: the first 4 MiB identity
// mapped through 4 KiB pages (a page directory at 0x1000, one table at
// 0x2000), so every access and fetch goes through the TLB.
void run_loop(benchmark::State& state, const Bytes& code, bool paged = false) {
  cputest::CpuFixture f;
  for (u32 i = 0; i < 0x40000; i += 4) f.write32(0x200000 + i, i * 2654435761u);
  f.load(cputest::CpuFixture::kCodeAddr, code);
  f.start();
  if (paged) {
    for (u32 page = 0; page < 1024; ++page) f.write32(0x2000 + 4 * page, (page << 12) | 0x3);
    f.write32(0x1000, 0x2000 | 0x3);
    CpuRegisters r = f.regs();
    r.cr3 = 0x1000;
    r.cr0 |= 0x80000000u;
    f.set_regs(r);
  }
  u64 retired = 0;
  for (auto _ : state) {
    const u64 before = f.clock.icount();
    const CpuStop why = f.run(kSlice);
    if (why != CpuStop::budget) {
      state.SkipWithError("the guest loop stopped");
      break;
    }
    retired += f.clock.icount() - before;
  }
  state.SetItemsProcessed(static_cast<int64_t>(retired));
  state.counters["MIPS"] =
      benchmark::Counter(static_cast<double>(retired) / 1e6, benchmark::Counter::kIsRate);
}

// Register-only ALU work: the pure decode and dispatch cost.
void BM_AluLoop(benchmark::State& state) { run_loop(state, kAluLoop); }
// Loads, read-modify-write and stores to RAM plus a push/pop pair.
void BM_MemoryLoop(benchmark::State& state) { run_loop(state, kMemoryLoop); }
// Near CALL/RET with a frame set-up: control transfers every few instructions.
void BM_CallRetLoop(benchmark::State& state) { run_loop(state, kCallRetLoop); }
// REP MOVSD of 4 KiB: each iteration counts as one instruction.
void BM_RepMovsd(benchmark::State& state) { run_loop(state, kRepMovsdLoop); }
// Worst case for decoded-code caches: every iteration stores into the
// immediate of an instruction it is about to execute.
void BM_SelfModifyingLoop(benchmark::State& state) { run_loop(state, kSmcLoop); }

// The same loops with paging on (issue 7: paging must not halve MIPS).
void BM_AluLoopPaged(benchmark::State& state) { run_loop(state, kAluLoop, true); }
void BM_MemoryLoopPaged(benchmark::State& state) { run_loop(state, kMemoryLoop, true); }
void BM_CallRetLoopPaged(benchmark::State& state) { run_loop(state, kCallRetLoop, true); }
void BM_RepMovsdPaged(benchmark::State& state) { run_loop(state, kRepMovsdLoop, true); }

BENCHMARK(BM_AluLoop);
BENCHMARK(BM_MemoryLoop);
BENCHMARK(BM_CallRetLoop);
BENCHMARK(BM_RepMovsd);
BENCHMARK(BM_SelfModifyingLoop);
BENCHMARK(BM_AluLoopPaged);
BENCHMARK(BM_MemoryLoopPaged);
BENCHMARK(BM_CallRetLoopPaged);
BENCHMARK(BM_RepMovsdPaged);

}  // namespace
}  // namespace reel
