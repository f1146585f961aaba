// Paging on the CPU, driven by guest code: translation through the page
// directory and page tables built here in guest memory, accessed and dirty
// bits, #PF with CR2 and the architecture's error code (not present, write,
// user), CR0.WP, ring 3 against supervisor pages, INT 0x80 from ring 3
// through a supervisor IDT with the stack switch from the TSS, CR3 reloads,
// INVLPG, 4 MiB pages under CR4.PSE, instructions straddling two pages,
// a REP stopped by a page fault, the TLB's coherence with page-table writes
// (what keeps it out of the machine state), a restore into a fresh CPU, and
// random page tables that must never crash reel.
//
// The code snippets were assembled with `as --32` (and linked with
// `ld -m elf_i386 -Ttext=<address>`) when the test was written; each line
// keeps its source instruction.

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "core/state_archive.h"
#include "tests/unit/cpu_test_support.h"

namespace reel {
namespace {

using namespace cputest;
using Bytes = std::vector<u8>;

// Guest memory layout.
constexpr u32 kGdt = 0x1000;
constexpr u32 kIdt = 0x2000;
constexpr u32 kTss = 0x3000;
constexpr u32 kHandlers = 0x5000;  // 16 bytes per vector, a HLT unless a test puts code there
constexpr u32 kPageDir = 0x8000;
constexpr u32 kPt0 = 0x9000;        // identity map of 0-4 MiB
constexpr u32 kPt1 = 0xa000;        // 4-8 MiB: what each test maps
constexpr u32 kPageDir2 = 0xb000;   // a second address space
constexpr u32 kPt1Other = 0xc000;   // its 4-8 MiB table
constexpr u32 kCode = 0x10000;      // supervisor code
constexpr u32 kUserCode = 0x20000;  // user pages: code, stack, a read-only page
constexpr u32 kUserStack = 0x30000;
constexpr u32 kUserReadOnly = 0x32000;
constexpr u32 kKernelStackTop = 0x90000;
constexpr u32 kTssStackTop = 0x80000;

constexpr u16 kSelCode = 0x08, kSelData = 0x10, kSelUserCode = 0x1b, kSelUserData = 0x23, kSelTss = 0x28;

// Page table entry bits.
constexpr u32 kP = 1, kW = 2, kU = 4, kA = 0x20, kD = 0x40, kPs = 0x80;

constexpr u32 kCr0Pg = 0x80000000u, kCr0Wp = 0x00010000u, kCr4Pse = 0x10;

u32 handler_addr(u8 vector) { return kHandlers + vector * 16u; }

// map_access, assembled with `as --32` at 0x10000:
const Bytes kMapAccess = {
    0xa1, 0x10, 0x00, 0x40, 0x00,  // 0x10000: mov eax,ds:0x400010
    0xc7, 0x05, 0x20, 0x00, 0x40,
    0x00, 0x78, 0x56, 0x34, 0x12,  // 0x10005: mov DWORD PTR ds:0x400020,0x12345678
    0xf4,                          // 0x1000f: hlt
};

// read_unmapped, assembled with `as --32` at 0x10000:
const Bytes kReadUnmapped = {
    0xa1, 0x00, 0x10, 0x40, 0x00,  // 0x10000: mov eax,ds:0x401000
    0xf4,                          // 0x10005: hlt
};

// write_unmapped, assembled with `as --32` at 0x10000:
const Bytes kWriteUnmapped = {
    0xa3, 0x04, 0x10, 0x40, 0x00,  // 0x10000: mov ds:0x401004,eax
    0xf4,                          // 0x10005: hlt
};

// write_read_only, assembled with `as --32` at 0x10000:
const Bytes kWriteReadOnly = {
    0xa3, 0x00, 0x20, 0x40, 0x00,  // 0x10000: mov ds:0x402000,eax
    0xf4,                          // 0x10005: hlt
};

// user_reads_supervisor, assembled with `as --32` at 0x20000:
const Bytes kUserReadsSupervisor = {
    0xa1, 0x10, 0x00, 0x40, 0x00,  // 0x20000: mov eax,ds:0x400010
    0xeb, 0xfe,                    // 0x20005: jmp 20005
};

// user_reads_and_writes, assembled with `as --32` at 0x20000:
const Bytes kUserReadsAndWrites = {
    0xa1, 0x00, 0x20, 0x03, 0x00,  // 0x20000: mov eax,ds:0x32000
    0xa3, 0x10, 0x00, 0x03, 0x00,  // 0x20005: mov ds:0x30010,eax
    0xa3, 0x00, 0x20, 0x03, 0x00,  // 0x2000a: mov ds:0x32000,eax
    0xeb, 0xfe,                    // 0x2000f: jmp 2000f
};

// int80_from_user, assembled with `as --32` at 0x20000:
const Bytes kInt80FromUser = {
    0xb8, 0x01, 0x00, 0x00, 0x00,  // 0x20000: mov eax,0x1
    0xcd, 0x80,                    // 0x20005: int 0x80
    0x89, 0xde,                    // 0x20007: mov esi,ebx
    0xeb, 0xfe,                    // 0x20009: jmp 20009
};

// syscall_handler, assembled with `as --32` at 0x5800:
const Bytes kSyscallHandler = {
    0xbb, 0x34, 0x12, 0x00, 0x00,  // 0x5800: mov ebx,0x1234
    0xcf,                          // 0x5805: iret
};

// pf_handler, assembled with `as --32` at 0x50e0:
const Bytes kPfHandler = {
    0x0f, 0x20, 0xd2,  // 0x50e0: mov edx,cr2
    0xf4,              // 0x50e3: hlt
};

// pte_rewrite, assembled with `as --32` at 0x10000:
const Bytes kPteRewrite = {
    0xa1, 0x10, 0x00, 0x40, 0x00,                                // 0x10000: mov eax,ds:0x400010
    0xc7, 0x05, 0x00, 0xa0, 0x00, 0x00, 0x03, 0x10, 0x20, 0x00,  // 0x10005: mov DWORD PTR ds:0xa000,0x201003
    0x8b, 0x1d, 0x10, 0x00, 0x40, 0x00,                          // 0x1000f: mov ebx,DWORD PTR ds:0x400010
    0x0f, 0x01, 0x3d, 0x00, 0x00, 0x40, 0x00,                    // 0x10015: invlpg BYTE PTR ds:0x400000
    0x8b, 0x0d, 0x10, 0x00, 0x40, 0x00,                          // 0x1001c: mov ecx,DWORD PTR ds:0x400010
    0xf4,                                                        // 0x10022: hlt
};

// cr3_switch, assembled with `as --32` at 0x10000:
const Bytes kCr3Switch = {
    0xa1, 0x10, 0x00, 0x40, 0x00,        // 0x10000: mov eax,ds:0x400010
    0xb9, 0x00, 0xb0, 0x00, 0x00,        // 0x10005: mov ecx,0xb000
    0x0f, 0x22, 0xd9,                    // 0x1000a: mov cr3,ecx
    0x8b, 0x1d, 0x10, 0x00, 0x40, 0x00,  // 0x1000d: mov ebx,DWORD PTR ds:0x400010
    0xf4,                                // 0x10013: hlt
};

// large_page, assembled with `as --32` at 0x10000:
const Bytes kLargePage = {
    0xa1, 0x00, 0x00, 0x81, 0x00,  // 0x10000: mov eax,ds:0x810000
    0xa3, 0x00, 0x01, 0x81, 0x00,  // 0x10005: mov ds:0x810100,eax
    0xf4,                          // 0x1000a: hlt
};

// straddle, assembled with `as --32` at 0x400ffd:
const Bytes kStraddle = {
    0xb8, 0x44, 0x33, 0x22, 0x11,  // 0x400ffd: mov eax,0x11223344
    0xf4,                          // 0x401002: hlt
};

// rep_movs_into_unmapped, assembled with `as --32` at 0x10000:
const Bytes kRepMovsIntoUnmapped = {
    0xbe, 0x00, 0x00, 0x01, 0x00,  // 0x10000: mov esi,0x10000
    0xbf, 0xf0, 0x0f, 0x40, 0x00,  // 0x10005: mov edi,0x400ff0
    0xb9, 0x20, 0x00, 0x00, 0x00,  // 0x1000a: mov ecx,0x20
    0xfc,                          // 0x1000f: cld
    0xf3, 0xa4,                    // 0x10010: rep movs BYTE PTR es:[edi],BYTE PTR ds:[esi]
    0xf4,                          // 0x10012: hlt
};

// paged_loop, assembled with `as --32` at 0x400000:
const Bytes kPagedLoop = {
    0xb9, 0xe8, 0x03, 0x00, 0x00,              // 0x400000: mov ecx,0x3e8
    0x03, 0x05, 0x00, 0x08, 0x40, 0x00,        // 0x400005: add eax,DWORD PTR ds:0x400800
    0x89, 0x04, 0x8d, 0x04, 0x08, 0x40, 0x00,  // 0x40000b: mov DWORD PTR [ecx*4+0x400804],eax
    0xe2, 0xf1,                                // 0x400012: loop 400005
    0xf4,                                      // 0x400014: hlt
};

class CpuPagingTest : public ::testing::Test, public CpuFixture {
 protected:
  CpuPagingTest() : CpuFixture(16u << 20) {}

  // Tables, an identity map of the first 4 MiB (supervisor, writable; the
  // user pages also user), paging on, CPL 0 at `eip`.
  void boot(u32 eip = kCode, u32 cr0_extra = 0, u32 cr4 = 0) {
    const u64 gdt[] = {
        0,
        make_descriptor(0, 0xfffff, 0x9a, 0xc),  // 0x08 code, DPL 0
        make_descriptor(0, 0xfffff, 0x92, 0xc),  // 0x10 data, DPL 0
        make_descriptor(0, 0xfffff, 0xfa, 0xc),  // 0x18 code, DPL 3
        make_descriptor(0, 0xfffff, 0xf2, 0xc),  // 0x20 data, DPL 3
        make_descriptor(kTss, 0x67, 0x89, 0x0),  // 0x28 32-bit TSS, available
    };
    for (u32 i = 0; i < std::size(gdt); ++i) write64(kGdt + 8 * i, gdt[i]);
    for (u32 v = 0; v < 256; ++v) {
      write64(kIdt + 8 * v, make_gate(kSelCode, handler_addr(static_cast<u8>(v)), 0xe, v == 0x80 ? 3 : 0));
      write8(handler_addr(static_cast<u8>(v)), 0xf4);  // hlt
    }
    load(handler_addr(14), kPfHandler);
    write32(kTss + 4, kTssStackTop);  // ESP0
    write32(kTss + 8, kSelData);      // SS0
    write16(kTss + 0x66, 0x68);       // no I/O bitmap

    for (u32 page = 0; page < 1024; ++page) {
      const u32 addr = page << 12;
      const bool user = addr == kUserCode || addr == kUserStack || addr == kUserReadOnly;
      const u32 rw = addr == kUserReadOnly ? 0 : kW;
      write32(kPt0 + 4 * page, addr | kP | rw | (user ? kU : 0));
    }
    write32(kPageDir + 0, kPt0 | kP | kW | kU);
    write32(kPageDir + 4, kPt1 | kP | kW | kU);
    write32(kPageDir2 + 0, kPt0 | kP | kW | kU);
    write32(kPageDir2 + 4, kPt1Other | kP | kW | kU);

    start(eip);
    CpuRegisters r = regs();
    r.gdtr = {kGdt, static_cast<u16>(std::size(gdt) * 8 - 1)};
    r.idtr = {kIdt, 256 * 8 - 1};
    r.tr = SegmentCache{kSelTss, kTss, 0x67, 0x8b};
    r.gpr[kEsp] = kKernelStackTop;
    r.cr3 = kPageDir;
    r.cr0 |= kCr0Pg | cr0_extra;
    r.cr4 = cr4;
    set_regs(r);
  }

  // Ring 3 at `eip` with the user stack.
  void enter_user(u32 eip) {
    CpuRegisters r = regs();
    r.seg[1] = SegmentCache{kSelUserCode, 0, 0xffffffffu, 0xc0fb};
    for (int s : {0, 2, 3, 4, 5}) r.seg[s] = SegmentCache{kSelUserData, 0, 0xffffffffu, 0xc0f3};
    r.eip = eip;
    r.gpr[kEsp] = kUserStack + 0x1000;
    set_regs(r);
  }

  // After the #PF handler ran (CR2 copied to EDX, then HLT): the fault's
  // error code and pushed EIP, read from the handler's stack.
  struct PageFault {
    u32 cr2, error, eip;
  };
  std::optional<PageFault> page_fault() const {
    const CpuRegisters r = regs();
    if (r.eip != handler_addr(14) + 4) return std::nullopt;
    return PageFault{r.gpr[kEdx], read32(r.gpr[kEsp]), read32(r.gpr[kEsp] + 4)};
  }
};

TEST_F(CpuPagingTest, TranslatesAndSetsAccessedAndDirtyBits) {
  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(0x200010, 0xcafebabe);
  load(kCode, kMapAccess);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 0xcafebabeu);
  EXPECT_EQ(read32(0x200020), 0x12345678u) << "the write went to the mapped frame";
  EXPECT_EQ(read32(0x400020), 0u) << "and not to the identical physical address";
  EXPECT_EQ(read32(kPt1) & (kA | kD), kA | kD);
  EXPECT_EQ(read32(kPageDir + 4) & kA, kA);
  EXPECT_EQ(read32(kPageDir + 4) & kD, 0u) << "a PDE of a 4 KiB table has no dirty bit to set";
  EXPECT_EQ(read32(kPt0 + 4 * (kCode >> 12)) & (kA | kD), kA) << "code fetched, never written";
}

TEST_F(CpuPagingTest, NotPresentReadAndWriteFault) {
  load(kCode, kReadUnmapped);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  auto pf = page_fault();
  ASSERT_TRUE(pf) << "EIP " << hex(regs().eip);
  EXPECT_EQ(pf->cr2, 0x401000u);
  EXPECT_EQ(pf->error, 0u);
  EXPECT_EQ(pf->eip, kCode) << "a fault points at the faulting instruction";
  EXPECT_EQ(regs().cr2, 0x401000u);
  EXPECT_EQ(cpu.exceptions()[14], 1u);

  load(kCode, kWriteUnmapped);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  pf = page_fault();
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->cr2, 0x401004u);
  EXPECT_EQ(pf->error, 2u) << "W/R set for a write";
}

TEST_F(CpuPagingTest, WriteProtectOnlyBindsTheSupervisorUnderCr0Wp) {
  write32(kPt1 + 8, 0x202000 | kP);  // read-only
  load(kCode, kWriteReadOnly);
  boot();
  set_gpr(kEax, 0x55aa55aa);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_FALSE(page_fault()) << "WP clear: the supervisor writes read-only pages";
  EXPECT_EQ(read32(0x202000), 0x55aa55aau);
  EXPECT_EQ(read32(kPt1 + 8) & kD, kD);

  write32(kPt1 + 8, 0x202000 | kP);
  boot(kCode, kCr0Wp);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->error, 3u) << "present + write";
  EXPECT_EQ(pf->cr2, 0x402000u);
}

TEST_F(CpuPagingTest, RingThreeCannotReadSupervisorPagesAndFaultsOntoTheTssStack) {
  write32(kPt1 + 0, 0x200000 | kP | kW);  // supervisor
  load(kUserCode, kUserReadsSupervisor);
  boot();
  enter_user(kUserCode);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf) << "EIP " << hex(regs().eip);
  EXPECT_EQ(pf->error, 5u) << "present + user";
  EXPECT_EQ(pf->cr2, 0x400010u);
  EXPECT_EQ(pf->eip, kUserCode);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.seg[1].selector, kSelCode);
  // error, EIP, CS, EFLAGS, ESP, SS on the stack the TSS names.
  EXPECT_EQ(r.gpr[kEsp], kTssStackTop - 24);
  EXPECT_EQ(read32(kTssStackTop - 8), kUserStack + 0x1000u) << "user ESP";
  EXPECT_EQ(read32(kTssStackTop - 4) & 0xffff, kSelUserData) << "user SS";
}

TEST_F(CpuPagingTest, RingThreeReadsUserPagesAndCannotWriteReadOnlyOnes) {
  write32(kUserReadOnly, 0x600d600d);
  load(kUserCode, kUserReadsAndWrites);
  boot();
  enter_user(kUserCode);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->error, 7u) << "present + write + user";
  EXPECT_EQ(pf->cr2, kUserReadOnly);
  EXPECT_EQ(pf->eip, kUserCode + 10);
  EXPECT_EQ(read32(kUserStack + 0x10), 0x600d600du) << "the user stack page took the write";
}

TEST_F(CpuPagingTest, Int80FromRingThreeRunsTheKernelAndIretReturns) {
  load(kUserCode, kInt80FromUser);
  boot();
  load(handler_addr(0x80), kSyscallHandler);
  enter_user(kUserCode);
  // mov, int, (handler: mov, iret), mov, jmp.
  ASSERT_EQ(run(6), CpuStop::budget) << "EIP " << hex(regs().eip) << " #GP " << cpu.exceptions()[13]
                                     << " #PF " << cpu.exceptions()[14] << " #TS " << cpu.exceptions()[10];
  const CpuRegisters r = regs();
  EXPECT_EQ(r.seg[1].selector, kSelUserCode);
  EXPECT_EQ(r.seg[2].selector, kSelUserData);
  EXPECT_EQ(r.gpr[kEsp], kUserStack + 0x1000u);
  EXPECT_EQ(r.gpr[kEsi], 0x1234u) << "the handler ran at ring 0 through a supervisor IDT";
  EXPECT_EQ(r.eip, kUserCode + 9);
  EXPECT_EQ(cpu.exceptions()[14], 0u);
}

TEST_F(CpuPagingTest, TlbFollowsPageTableWritesInvlpgAndCr3) {
  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(0x200010, 0x11111111);
  write32(0x201010, 0x22222222);
  load(kCode, kPteRewrite);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 0x11111111u);
  // reel's TLB drops translations read from a page when that page is
  // written, so the new PTE is seen even before the INVLPG.
  EXPECT_EQ(gpr(kEbx), 0x22222222u);
  EXPECT_EQ(gpr(kEcx), 0x22222222u);

  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(kPt1Other + 0, 0x201000 | kP | kW);
  load(kCode, kCr3Switch);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 0x11111111u);
  EXPECT_EQ(gpr(kEbx), 0x22222222u) << "MOV CR3 switched address spaces";
}

TEST_F(CpuPagingTest, DeviceWritesToPageTablesAreSeen) {
  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(0x200010, 0x11111111);
  write32(0x201010, 0x22222222);
  load(kCode, kMapAccess);
  boot();
  ASSERT_EQ(run(1), CpuStop::budget);
  EXPECT_EQ(gpr(kEax), 0x11111111u);
  // A DMA-style write (GuestMemory::write) to the page table.
  write32(kPt1 + 0, 0x201000 | kP | kW);
  CpuRegisters r = regs();
  r.eip = kCode;
  set_regs(r);
  ASSERT_EQ(run(1), CpuStop::budget);
  EXPECT_EQ(gpr(kEax), 0x22222222u);
}

TEST_F(CpuPagingTest, FourMegabytePagesUnderPse) {
  write32(kPageDir + 8, 0x00000000 | kP | kW | kPs);
  load(kCode, kLargePage);
  boot(kCode, 0, kCr4Pse);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_FALSE(page_fault());
  EXPECT_EQ(gpr(kEax), read32(kCode)) << "linear 0x810000 is physical 0x10000";
  EXPECT_EQ(read32(0x10100), read32(kCode));
  EXPECT_EQ(read32(kPageDir + 8) & (kA | kD), kA | kD);

  // Without CR4.PSE the same PDE names a page table at 0.
  write32(kPageDir + 8, 0x00000000 | kP | kW | kPs);
  boot(kCode, 0, 0);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf) << "physical page 0 holds no present PTE for this address";
  EXPECT_EQ(pf->cr2, 0x810000u);
}

TEST_F(CpuPagingTest, InstructionStraddlingTwoPages) {
  // The two linear pages map to frames far apart.
  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(kPt1 + 4, 0x300000 | kP | kW);
  load(0x200ffd, std::span<const u8>(kStraddle).subspan(0, 3));
  load(0x300000, std::span<const u8>(kStraddle).subspan(3));
  boot(0x400ffd);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 0x11223344u);
  EXPECT_EQ(regs().eip, 0x401003u);

  // With the second page absent the fetch faults on it, at the instruction.
  write32(kPt1 + 4, 0);
  boot(0x400ffd);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->cr2, 0x401000u);
  EXPECT_EQ(pf->eip, 0x400ffdu);
  EXPECT_EQ(pf->error, 0u);
}

TEST_F(CpuPagingTest, RepStoppedByAPageFaultKeepsItsProgress) {
  write32(kPt1 + 0, 0x200000 | kP | kW);
  load(kCode, kRepMovsIntoUnmapped);
  boot();
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  const auto pf = page_fault();
  ASSERT_TRUE(pf);
  EXPECT_EQ(pf->cr2, 0x401000u);
  EXPECT_EQ(pf->eip, kCode + 0x10) << "the REP is restarted after the handler";
  EXPECT_EQ(pf->error, 2u);
  EXPECT_EQ(gpr(kEcx), 0x10u) << "16 bytes were copied before the fault";
  EXPECT_EQ(gpr(kEdi), 0x401000u);
  EXPECT_EQ(read8(0x200fff), read8(kCode + 15));
}

// The TLB is not machine state: a CPU restored from a serialized state with
// an empty TLB continues exactly as the original.
TEST_F(CpuPagingTest, RestoredIntoAFreshCpuContinuesExactly) {
  write32(kPt1 + 0, 0x200000 | kP | kW);
  write32(kPt1 + 4, 0x201000 | kP | kW);
  write32(0x200800, 3);
  load(0x200000, kPagedLoop);
  boot(0x400000);
  ASSERT_EQ(run(1500), CpuStop::budget);
  std::stringstream bin;
  {
    BinaryOut ar(bin);
    ar(CpuFixture::cpu);
  }
  CpuFixture other(16u << 20);
  // All of RAM, the VGA hole included (GuestMemory::write refuses it).
  std::memcpy(other.memory.data(), memory.data(), memory.size());
  {
    BinaryIn ar(bin);
    ar(other.cpu);
  }
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  ASSERT_EQ(other.run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 3000u);
  EXPECT_EQ(other.gpr(kEax), gpr(kEax));
  EXPECT_EQ(other.regs().eip, regs().eip);
  const std::vector<u8> ram_after(memory.data(), memory.data() + memory.size());
  const std::vector<u8> other_after(other.memory.data(), other.memory.data() + memory.size());
  u32 first_difference = 0;
  while (first_difference < ram_after.size() && ram_after[first_difference] == other_after[first_difference])
    ++first_difference;
  EXPECT_EQ(first_difference, ram_after.size()) << "RAM differs at " << hex(first_difference);
}

TEST_F(CpuPagingTest, PagingOffIsTheIdentityAgain) {
  write32(0x400010, 0x77777777);
  write32(kPt1 + 0, 0x200000 | kP | kW);
  load(kCode, kMapAccess);
  boot();
  CpuRegisters r = regs();
  r.cr0 &= ~kCr0Pg;
  set_regs(r);
  ASSERT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(gpr(kEax), 0x77777777u);
}

// Random page tables, CR3 and code: whatever the guest does, reel does not
// crash and the run ends in a defined way.
TEST_F(CpuPagingTest, RandomPageTablesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<u8> junk(0x20000);
    for (u8& b : junk) b = static_cast<u8>(rng());
    load(0x8000, junk);  // page directories, tables, code
    boot(0x8000 + (rng() & 0x1ffff), rng() & kCr0Wp, rng() & kCr4Pse);
    CpuRegisters r = regs();
    r.cr3 = 0x8000 + ((rng() & 0x1f) << 12);
    set_regs(r);
    const CpuStop why = run(20'000);
    EXPECT_TRUE(why == CpuStop::budget || why == CpuStop::halted || why == CpuStop::shutdown);
  }
}

}  // namespace
}  // namespace reel
