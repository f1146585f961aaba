// A guest whose page faults never make progress ends as the architecture
// says, never by crashing reel:
// - #PF through a missing IDT gate is a #GP (zero entry) or #NP (gate with
//   P clear) while delivering a #PF: a double fault. With the #DF gate
//   present its handler runs (error code 0); without it the machine
//   triple-faults and resets: reel boots the kernel again (forever, as QEMU
//   does), or exits with status 0 under -no-reboot.
// - A #PF handler that IRETs without fixing the mapping gets the same fault
//   again and again: the storm runs on until the instruction count the
//   test asks for, with CR2, the error code and the faulting EIP right at
//   every fault, the guest stack and reel's memory flat.
// Each ending run is recorded, replayed and compared; where
// qemu-system-i386 is installed it must end the same way.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/cpu/cpu.h"
#include "harness/options.h"
#include "harness/pc_board.h"
#include "replay/live_host_io.h"
#include "tests/unit/net_test_support.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// The guest, assembled with `as --32` and linked with
// `ld -m elf_i386 -Ttext=0x100080` when the test was written. It counts
// boots in CMOS byte 0x40, sets up a flat GDT, an IDT with only the gates
// its parameters ask for, an identity map of the first 4 MiB, turns paging
// on and writes to 0x800004, which no page directory entry maps. The #PF
// handler records the fault at 0x5000 (count, CR2, error code, EIP, and a
// count of faults that were not exactly the expected one) and returns to
// the same instruction; the #DF handler records its error code and exits.
const std::vector<u8> kStormCode = {
    0xfa,                                                        // 0x100080: cli
    0xbc, 0x00, 0x00, 0x09, 0x00,                                // 0x100081: mov esp,0x90000
    0xb0, 0x40,                                                  // 0x100086: mov al,0x40
    0xe6, 0x70,                                                  // 0x100088: out 0x70,al
    0xe4, 0x71,                                                  // 0x10008a: in al,0x71
    0xfe, 0xc0,                                                  // 0x10008c: inc al
    0xe6, 0x71,                                                  // 0x10008e: out 0x71,al
    0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 0x100090: mov DWORD PTR ds:0x1000,0x0
    0xc7, 0x05, 0x04, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 0x10009a: mov DWORD PTR ds:0x1004,0x0
    0xc7, 0x05, 0x08, 0x10, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00,  // 0x1000a4: mov DWORD PTR ds:0x1008,0xffff
    0xc7, 0x05, 0x0c, 0x10, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00,  // 0x1000ae: mov DWORD PTR ds:0x100c,0xcf9a00
    0xc7, 0x05, 0x10, 0x10, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00,  // 0x1000b8: mov DWORD PTR ds:0x1010,0xffff
    0xc7, 0x05, 0x14, 0x10, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00,  // 0x1000c2: mov DWORD PTR ds:0x1014,0xcf9200
    0x0f, 0x01, 0x15, 0x4f, 0x02, 0x10, 0x00,                    // 0x1000cc: lgdtd ds:0x10024f
    0xea, 0xda, 0x00, 0x10, 0x00, 0x08, 0x00,                    // 0x1000d3: jmp 0x8:0x1000da
    0x66, 0xb8, 0x10, 0x00,                                      // 0x1000da: mov ax,0x10
    0x8e, 0xd8,                                                  // 0x1000de: mov ds,eax
    0x8e, 0xc0,                                                  // 0x1000e0: mov es,eax
    0x8e, 0xd0,                                                  // 0x1000e2: mov ss,eax
    0xbf, 0x00, 0x20, 0x00, 0x00,                                // 0x1000e4: mov edi,0x2000
    0x31, 0xc0,                                                  // 0x1000e9: xor eax,eax
    0xb9, 0x00, 0x02, 0x00, 0x00,                                // 0x1000eb: mov ecx,0x200
    0xfc,                                                        // 0x1000f0: cld
    0xf3, 0xab,                                                  // 0x1000f1: rep stos DWORD PTR es:[edi],eax
    0x83, 0x3d, 0x60, 0x00, 0x10, 0x00, 0x00,                    // 0x1000f3: cmp DWORD PTR ds:0x100060,0x0
    0x74, 0x28,                                                  // 0x1000fa: je 100124
    0xb8, 0xb8, 0x01, 0x10, 0x00,                                // 0x1000fc: mov eax,0x1001b8
    0x89, 0xc2,                                                  // 0x100101: mov edx,eax
    0x25, 0xff, 0xff, 0x00, 0x00,                                // 0x100103: and eax,0xffff
    0x0d, 0x00, 0x00, 0x08, 0x00,                                // 0x100108: or eax,0x80000
    0xa3, 0x70, 0x20, 0x00, 0x00,                                // 0x10010d: mov ds:0x2070,eax
    0x81, 0xe2, 0x00, 0x00, 0xff, 0xff,                          // 0x100112: and edx,0xffff0000
    0x0b, 0x15, 0x60, 0x00, 0x10, 0x00,                          // 0x100118: or edx,DWORD PTR ds:0x100060
    0x89, 0x15, 0x74, 0x20, 0x00, 0x00,                          // 0x10011e: mov DWORD PTR ds:0x2074,edx
    0x83, 0x3d, 0x64, 0x00, 0x10, 0x00, 0x00,                    // 0x100124: cmp DWORD PTR ds:0x100064,0x0
    0x74, 0x28,                                                  // 0x10012b: je 100155
    0xb8, 0x29, 0x02, 0x10, 0x00,                                // 0x10012d: mov eax,0x100229
    0x89, 0xc2,                                                  // 0x100132: mov edx,eax
    0x25, 0xff, 0xff, 0x00, 0x00,                                // 0x100134: and eax,0xffff
    0x0d, 0x00, 0x00, 0x08, 0x00,                                // 0x100139: or eax,0x80000
    0xa3, 0x40, 0x20, 0x00, 0x00,                                // 0x10013e: mov ds:0x2040,eax
    0x81, 0xe2, 0x00, 0x00, 0xff, 0xff,                          // 0x100143: and edx,0xffff0000
    0x81, 0xca, 0x00, 0x8e, 0x00, 0x00,                          // 0x100149: or edx,0x8e00
    0x89, 0x15, 0x44, 0x20, 0x00, 0x00,                          // 0x10014f: mov DWORD PTR ds:0x2044,edx
    0x0f, 0x01, 0x1d, 0x57, 0x02, 0x10, 0x00,                    // 0x100155: lidtd ds:0x100257
    0xbf, 0x00, 0x50, 0x00, 0x00,                                // 0x10015c: mov edi,0x5000
    0x31, 0xc0,                                                  // 0x100161: xor eax,eax
    0xb9, 0x08, 0x00, 0x00, 0x00,                                // 0x100163: mov ecx,0x8
    0xf3, 0xab,                                                  // 0x100168: rep stos DWORD PTR es:[edi],eax
    0xbf, 0x00, 0x40, 0x00, 0x00,                                // 0x10016a: mov edi,0x4000
    0xb8, 0x03, 0x00, 0x00, 0x00,                                // 0x10016f: mov eax,0x3
    0xb9, 0x00, 0x04, 0x00, 0x00,                                // 0x100174: mov ecx,0x400
    0xab,                                                        // 0x100179: stos DWORD PTR es:[edi],eax
    0x05, 0x00, 0x10, 0x00, 0x00,                                // 0x10017a: add eax,0x1000
    0xe2, 0xf8,                                                  // 0x10017f: loop 100179
    0xbf, 0x00, 0x30, 0x00, 0x00,                                // 0x100181: mov edi,0x3000
    0x31, 0xc0,                                                  // 0x100186: xor eax,eax
    0xb9, 0x00, 0x04, 0x00, 0x00,                                // 0x100188: mov ecx,0x400
    0xf3, 0xab,                                                  // 0x10018d: rep stos DWORD PTR es:[edi],eax
    0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x03, 0x40, 0x00, 0x00,  // 0x10018f: mov DWORD PTR ds:0x3000,0x4003
    0xb8, 0x00, 0x30, 0x00, 0x00,                                // 0x100199: mov eax,0x3000
    0x0f, 0x22, 0xd8,                                            // 0x10019e: mov cr3,eax
    0x0f, 0x20, 0xc0,                                            // 0x1001a1: mov eax,cr0
    0x0d, 0x00, 0x00, 0x00, 0x80,                                // 0x1001a4: or eax,0x80000000
    0x0f, 0x22, 0xc0,                                            // 0x1001a9: mov cr0,eax
    0xb8, 0x5a, 0x5a, 0x5a, 0x5a,                                // 0x1001ac: mov eax,0x5a5a5a5a
    0xa3, 0x04, 0x00, 0x80, 0x00,                                // 0x1001b1: mov ds:0x800004,eax
    0xeb, 0xf9,                                                  // 0x1001b6: jmp 1001b1
    0x50,                                                        // 0x1001b8: push eax
    0x52,                                                        // 0x1001b9: push edx
    0xff, 0x05, 0x00, 0x50, 0x00, 0x00,                          // 0x1001ba: inc DWORD PTR ds:0x5000
    0x0f, 0x20, 0xd0,                                            // 0x1001c0: mov eax,cr2
    0xa3, 0x04, 0x50, 0x00, 0x00,                                // 0x1001c3: mov ds:0x5004,eax
    0x8b, 0x54, 0x24, 0x08,                                      // 0x1001c8: mov edx,DWORD PTR [esp+0x8]
    0x89, 0x15, 0x08, 0x50, 0x00, 0x00,                          // 0x1001cc: mov DWORD PTR ds:0x5008,edx
    0x8b, 0x54, 0x24, 0x0c,                                      // 0x1001d2: mov edx,DWORD PTR [esp+0xc]
    0x89, 0x15, 0x0c, 0x50, 0x00, 0x00,                          // 0x1001d6: mov DWORD PTR ds:0x500c,edx
    0x3d, 0x04, 0x00, 0x80, 0x00,                                // 0x1001dc: cmp eax,0x800004
    0x75, 0x19,                                                  // 0x1001e1: jne 1001fc
    0x83, 0x3d, 0x08, 0x50, 0x00, 0x00, 0x02,                    // 0x1001e3: cmp DWORD PTR ds:0x5008,0x2
    0x75, 0x10,                                                  // 0x1001ea: jne 1001fc
    0x81, 0xfa, 0xb1, 0x01, 0x10, 0x00,                          // 0x1001ec: cmp edx,0x1001b1
    0x75, 0x08,                                                  // 0x1001f2: jne 1001fc
    0x81, 0xfc, 0xe8, 0xff, 0x08, 0x00,                          // 0x1001f4: cmp esp,0x8ffe8
    0x74, 0x06,                                                  // 0x1001fa: je 100202
    0xff, 0x05, 0x10, 0x50, 0x00, 0x00,                          // 0x1001fc: inc DWORD PTR ds:0x5010
    0xa1, 0x68, 0x00, 0x10, 0x00,                                // 0x100202: mov eax,ds:0x100068
    0x85, 0xc0,                                                  // 0x100207: test eax,eax
    0x74, 0x18,                                                  // 0x100209: je 100223
    0x3b, 0x05, 0x00, 0x50, 0x00, 0x00,                          // 0x10020b: cmp eax,DWORD PTR ds:0x5000
    0x75, 0x10,                                                  // 0x100211: jne 100223
    0xb0, 0x10,                                                  // 0x100213: mov al,0x10
    0x83, 0x3d, 0x10, 0x50, 0x00, 0x00, 0x00,                    // 0x100215: cmp DWORD PTR ds:0x5010,0x0
    0x74, 0x02,                                                  // 0x10021c: je 100220
    0xb0, 0x11,                                                  // 0x10021e: mov al,0x11
    0xe6, 0xf4,                                                  // 0x100220: out 0xf4,al
    0xf4,                                                        // 0x100222: hlt
    0x5a,                                                        // 0x100223: pop edx
    0x58,                                                        // 0x100224: pop eax
    0x83, 0xc4, 0x04,                                            // 0x100225: add esp,0x4
    0xcf,                                                        // 0x100228: iret
    0xff, 0x05, 0x14, 0x50, 0x00, 0x00,                          // 0x100229: inc DWORD PTR ds:0x5014
    0x8b, 0x04, 0x24,                                            // 0x10022f: mov eax,DWORD PTR [esp]
    0xa3, 0x18, 0x50, 0x00, 0x00,                                // 0x100232: mov ds:0x5018,eax
    0x0f, 0x20, 0xd0,                                            // 0x100237: mov eax,cr2
    0xa3, 0x04, 0x50, 0x00, 0x00,                                // 0x10023a: mov ds:0x5004,eax
    0xb0, 0x20,                                                  // 0x10023f: mov al,0x20
    0x83, 0x3d, 0x18, 0x50, 0x00, 0x00, 0x00,                    // 0x100241: cmp DWORD PTR ds:0x5018,0x0
    0x74, 0x02,                                                  // 0x100248: je 10024c
    0xb0, 0x21,                                                  // 0x10024a: mov al,0x21
    0xe6, 0xf4,                                                  // 0x10024c: out 0xf4,al
    0xf4,                                                        // 0x10024e: hlt
    0x17, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,  // 0x10024f: gdtr: .word 23; .long 0x1000; .word 0
    0xff, 0x07, 0x00, 0x20, 0x00, 0x00,              // 0x100257: idtr: .word 0x7ff; .long 0x2000
};

// Parameters, read by the code at 0x100060.
constexpr u32 kLoadAddr = 0x100000;
constexpr u32 kParams = 0x60;  // file offset (= address - kLoadAddr)
constexpr u32 kCodeOffset = 0x80;
// What the handlers record.
constexpr u32 kFaults = 0x5000, kLastCr2 = 0x5004, kLastError = 0x5008, kLastEip = 0x500c, kBad = 0x5010,
              kDoubleFaults = 0x5014, kDoubleFaultError = 0x5018;
constexpr u32 kFaultingEip = 0x1001b1;  // mov ds:0x800004,eax
constexpr u32 kStackTop = 0x90000;
// isa-debug-exit values: (V << 1) | 1.
constexpr int kStatusFaultLimitReached = (0x10 << 1) | 1;
constexpr int kStatusDoubleFault = (0x20 << 1) | 1;

// Which IDT gates the guest installs. Its other entries stay zero.
enum class Gates {
  none,                    // #PF -> #GP (a zero entry is no gate) -> #DF -> triple fault
  double_fault_only,       // #PF -> #GP -> #DF handler
  page_fault_not_present,  // #PF -> #NP (an interrupt gate with P clear) -> #DF handler
  page_fault,              // #PF handler
};

struct Storm {
  Gates gates;
  u32 fault_limit;  // the #PF handler exits after this many faults; 0: never
};

// A multiboot ELF: headers, multiboot header, parameters, then the code,
// in one segment loaded at 1 MiB.
std::vector<u8> storm_elf(const Storm& s) {
  std::vector<u8> b(kCodeOffset, 0);
  b.insert(b.end(), kStormCode.begin(), kStormCode.end());
  auto put16 = [&](size_t at, u16 v) { b[at] = v & 0xff, b[at + 1] = v >> 8; };
  auto put32 = [&](size_t at, u32 v) { put16(at, v & 0xffff), put16(at + 2, v >> 16); };
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  put16(16, 2);  // executable
  put16(18, 3);  // i386
  put32(20, 1);
  put32(24, kLoadAddr + kCodeOffset);  // entry
  put32(28, 52);                       // phoff
  put16(40, 52);
  put16(42, 32);
  put16(44, 1);
  put32(52, 1);  // PT_LOAD
  put32(56, 0);
  put32(60, kLoadAddr);
  put32(64, kLoadAddr);
  put32(68, static_cast<u32>(b.size()));
  put32(72, static_cast<u32>(b.size()));
  put32(76, 7);
  put32(84, 0x1BADB002);  // multiboot header, flags 0
  put32(88, 0);
  put32(92, 0u - 0x1BADB002u);
  // The high dword's attributes of the #PF gate (0: no gate).
  put32(kParams + 0, s.gates == Gates::page_fault               ? 0x8e00
                     : s.gates == Gates::page_fault_not_present ? 0x0e00
                                                                : 0);
  put32(kParams + 4, s.gates != Gates::none);
  put32(kParams + 8, s.fault_limit);
  return b;
}

std::string write_storm(const std::string& name, const Storm& s) {
  const std::string path = scratch_dir() + "/" + name + ".elf";
  const std::vector<u8> elf = storm_elf(s);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(elf.data()), elf.size());
  return path;
}

std::vector<std::string> machine_args(const std::string& kernel, bool no_reboot) {
  std::vector<std::string> args = {"-kernel", kernel, "-serial", "none",
                                   "-net",    "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};
  if (no_reboot) args.push_back("-no-reboot");
  return args;
}

// Records the run, replays it and compares; returns the exit status.
int record_replay_compare(const std::string& name, const std::vector<std::string>& machine) {
  const std::string journal = scratch_dir() + "/" + name + ".reel";
  std::vector<std::string> record = {"record", "-o", journal};
  record.insert(record.end(), machine.begin(), machine.end());
  const ProcessResult rec = run_reel(record);
  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, rec.status) << rep.err;
  const std::string hash = summary_field(rec.err, "state_hash");
  EXPECT_FALSE(hash.empty()) << rec.err;
  EXPECT_EQ(summary_field(rep.err, "state_hash"), hash) << rep.err;
  EXPECT_EQ(summary_field(rep.err, "icount"), summary_field(rec.err, "icount"));
  return rec.status;
}

int qemu_status(const std::vector<std::string>& machine) {
  std::vector<std::string> argv = {find_on_path("timeout"), "60", find_on_path("qemu-system-i386"),
                                   "-display", "none"};
  argv.insert(argv.end(), machine.begin(), machine.end());
  return run_process(argv, "").status;
}

// The same machine in this process, for runs that never end by themselves.
class InProcess {
 public:
  explicit InProcess(const std::vector<std::string>& machine)
      : m_host(LiveHostIO::Options{.pacing = false}),
        m_board(parse_machine_options(with_rtc_base(machine)), m_host, 1) {}

  // Runs on to `icount` instructions; false if the run ended instead.
  bool run_to(u64 icount) { return !m_board.machine().run_until(icount).has_value(); }
  Machine& machine() { return m_board.machine(); }
  u32 read32(u32 addr) {
    u32 v;
    std::memcpy(&v, machine().memory().data() + addr, 4);
    return v;
  }
  u8 cmos(u8 index) {
    machine().ports().write(0x70, 1, index);
    return static_cast<u8>(machine().ports().read(0x71, 1));
  }

 private:
  // No host clock in the state: two machines built alike stay alike.
  static std::vector<std::string> with_rtc_base(std::vector<std::string> args) {
    args.push_back("-rtc");
    args.push_back("base=2024-01-01T00:00:00");
    return args;
  }
  LiveHostIO m_host;
  PcBoard m_board;
};

// Resident set size of this process, in bytes.
u64 resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  u64 size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<u64>(sysconf(_SC_PAGESIZE));
}

TEST(PageFaultStorm, MissingPageFaultGateIsADoubleFault) {
  struct Case {
    const char* name;
    Gates gates;
    unsigned vector;  // what delivering the #PF raised
  };
  for (const Case& c : {Case{"pf-storm-gp", Gates::double_fault_only, 13},
                        Case{"pf-storm-np", Gates::page_fault_not_present, 11}}) {
    SCOPED_TRACE(c.name);
    const std::vector<std::string> m = machine_args(write_storm(c.name, {c.gates, 0}), false);
    EXPECT_EQ(record_replay_compare(c.name, m), kStatusDoubleFault) << "#DF with error code 0";

    InProcess p(m);
    EXPECT_FALSE(p.run_to(1'000'000)) << "the #DF handler ends the run";
    EXPECT_EQ(p.read32(kDoubleFaults), 1u);
    EXPECT_EQ(p.read32(kDoubleFaultError), 0u);
    EXPECT_EQ(p.read32(kLastCr2), 0x800004u) << "CR2 still names the page fault's address";
    EXPECT_EQ(p.read32(kFaults), 0u) << "the #PF handler never ran";
    const auto& exceptions = p.machine().cpu().exceptions();
    EXPECT_EQ(exceptions[14], 1u);
    EXPECT_EQ(exceptions[c.vector], 1u);
    EXPECT_EQ(exceptions[c.vector == 13 ? 11 : 13], 0u);
    EXPECT_EQ(exceptions[8], 1u);
  }
}

TEST(PageFaultStorm, TripleFaultExitsWithStatusZeroUnderNoReboot) {
  const std::vector<std::string> m = machine_args(write_storm("pf-storm-tf", {Gates::none, 0}), true);
  EXPECT_EQ(record_replay_compare("pf-storm-tf", m), 0);
}

TEST(PageFaultStorm, TripleFaultRebootsForeverWithoutNoReboot) {
  // Every boot faults the same way and resets: the machine keeps booting
  // (CMOS NVRAM counts the boots) until the test stops it.
  const std::vector<std::string> m = machine_args(write_storm("pf-storm-reboot", {Gates::none, 0}), false);
  InProcess a(m);
  ASSERT_TRUE(a.run_to(100'000));
  const u8 boots = a.cmos(0x40);
  EXPECT_GE(boots, 10);
  ASSERT_TRUE(a.run_to(200'000));
  EXPECT_GE(a.cmos(0x40), 2 * boots - 1);
  InProcess b(m);
  ASSERT_TRUE(b.run_to(200'000));
  EXPECT_EQ(b.machine().state_hash(), a.machine().state_hash());
}

TEST(PageFaultStorm, HandlerThatNeverFixesTheMappingRunsUntilStopped) {
  const std::vector<std::string> m =
      machine_args(write_storm("pf-storm-endless", {Gates::page_fault, 0}), false);
  InProcess a(m);
  ASSERT_TRUE(a.run_to(2'000'000));
  const u32 early = a.read32(kFaults);
  EXPECT_GT(early, 50'000u);
  const u64 rss_early = resident_bytes();
  ASSERT_TRUE(a.run_to(12'000'000));
  const u32 late = a.read32(kFaults);
  // 24 instructions of handler per fault; the faulting write never retires.
  EXPECT_NEAR(late - early, 10'000'000.0 / 24, 1.0) << "one fault per handler run";
  EXPECT_EQ(a.read32(kBad), 0u) << "CR2, error code, EIP or ESP was off at some fault";
  EXPECT_EQ(a.read32(kLastCr2), 0x800004u);
  EXPECT_EQ(a.read32(kLastError), 2u) << "not present, write, supervisor";
  EXPECT_EQ(a.read32(kLastEip), kFaultingEip);
  EXPECT_EQ(a.machine().cpu().registers().cr2, 0x800004u);
  EXPECT_EQ(a.machine().cpu().exceptions()[14], late);
  EXPECT_EQ(a.machine().cpu().exceptions()[8], 0u);
  const u32 esp = a.machine().cpu().registers().gpr[kEsp];
  EXPECT_TRUE(esp == kStackTop || (esp <= kStackTop && esp >= kStackTop - 24)) << std::hex << esp;
  // Under ASan every fault's exception object passes through the
  // allocator's quarantine (up to 256 MiB of freed memory kept resident), so
  // the resident size says nothing there; LeakSanitizer covers leaks.
  if (!kSanitized) {
    EXPECT_LT(resident_bytes(), rss_early + (8u << 20)) << "reel's memory grew with the storm";
  }
  // The storm is deterministic: another machine is in the same state.
  InProcess b(m);
  ASSERT_TRUE(b.run_to(12'000'000));
  EXPECT_EQ(b.machine().state_hash(), a.machine().state_hash());
}

TEST(PageFaultStorm, ThousandsOfFaultsRecordAndReplay) {
  const std::vector<std::string> m =
      machine_args(write_storm("pf-storm-limit", {Gates::page_fault, 100'000}), false);
  EXPECT_EQ(record_replay_compare("pf-storm-limit", m), kStatusFaultLimitReached)
      << "every one of 100000 faults had the right CR2, error code, EIP and ESP";
}

TEST(PageFaultStorm, QemuEndsTheSameWay) {
  if (find_on_path("qemu-system-i386").empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH";
  EXPECT_EQ(qemu_status(machine_args(write_storm("pf-storm-gp-q", {Gates::double_fault_only, 0}), false)),
            kStatusDoubleFault);
  EXPECT_EQ(
      qemu_status(machine_args(write_storm("pf-storm-np-q", {Gates::page_fault_not_present, 0}), false)),
      kStatusDoubleFault);
  EXPECT_EQ(qemu_status(machine_args(write_storm("pf-storm-tf-q", {Gates::none, 0}), true)), 0);
  EXPECT_EQ(qemu_status(machine_args(write_storm("pf-storm-limit-q", {Gates::page_fault, 100'000}), false)),
            kStatusFaultLimitReached);
}

}  // namespace
}  // namespace reel::test
