// Protected-mode system behaviour of the CPU, driven by real guest code:
// descriptor tables built in guest memory and loaded with LGDT/LIDT,
// segment-load checks, exception and interrupt delivery (vector, error code,
// pushed frame), IRET, external interrupts through a fake controller, the
// STI shadow, HLT wake-up, string instructions stopped mid-REP by the
// budget, stack-frame instructions, 16-bit prefixes, CPUID/RDTSC, exact
// instruction counting, self-modifying code, triple fault, #UD, and the
// serialize round trip. Only the public API is used.
//
// The code snippets were assembled with `as --32` (and linked with
// `ld -m elf_i386 -Ttext=<address>` for absolute addresses) when the test
// was written; each line keeps its source instruction.

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/cpu_test_support.h"

namespace reel {
namespace {

using namespace cputest;
using Bytes = std::vector<u8>;

// Guest memory layout of these tests.
constexpr u32 kGdt = 0x1000;
constexpr u32 kIdt = 0x2000;
constexpr u32 kGdtrImage = 0x4000;       // 6-byte LGDT operand
constexpr u32 kIdtrImage = 0x4008;       // 6-byte LIDT operand
constexpr u32 kEmptyIdtrImage = 0x4010;  // an IDT with limit 0: every vector is out of bounds
constexpr u32 kHandlers = 0x5000;        // 16 bytes per vector, a HLT unless a test puts code there
constexpr u32 kPrologueAddr = 0x10000;
constexpr u32 kTestAddr = 0x11000;

// GDT selectors.
constexpr u16 kSelCode = 0x08, kSelData = 0x10, kSelNotPresentData = 0x20, kSelReadOnly = 0x30,
              kSelSmallData = 0x38, kSelNotPresentStack = 0x40, kSelSmallStack = 0x48, kSelDpl3Data = 0x50;
constexpr u32 kGdtEntries = 11;
constexpr u32 kSmallDataBase = 0x200000, kSmallStackBase = 0x300000;

// The prologue runs this many instructions before the test code starts.
constexpr u64 kPrologueInstructions = 12;

u32 handler_addr(u8 vector) { return kHandlers + vector * 16u; }

// prologue, assembled with `as --32` at 0x10000:
const Bytes kPrologue = {
    0x50,                                      // 0x10000: push eax
    0x0f, 0x01, 0x15, 0x00, 0x40, 0x00, 0x00,  // 0x10001: lgdtd ds:0x4000
    0x0f, 0x01, 0x1d, 0x08, 0x40, 0x00, 0x00,  // 0x10008: lidtd ds:0x4008
    0xea, 0x16, 0x00, 0x01, 0x00, 0x08, 0x00,  // 0x1000f: jmp 0x8:0x10016
    0x66, 0xb8, 0x10, 0x00,                    // 0x10016: mov ax,0x10
    0x8e, 0xd8,                                // 0x1001a: mov ds,eax
    0x8e, 0xc0,                                // 0x1001c: mov es,eax
    0x8e, 0xe0,                                // 0x1001e: mov fs,eax
    0x8e, 0xe8,                                // 0x10020: mov gs,eax
    0x8e, 0xd0,                                // 0x10022: mov ss,eax
    0x58,                                      // 0x10024: pop eax
    0xe9, 0xd6, 0x0f, 0x00, 0x00,              // 0x10025: jmp 11000 <__bss_start>
};

// wrap16, assembled with `as --32` at 0x11000:
const Bytes kWrap16 = {
    0x67, 0x8d, 0x38,  // 0x11000: lea edi,[bx+si]
    0xf4,              // 0x11003: hlt
};

// load_ss_null, assembled with `as --32` at 0x11000:
const Bytes kLoadSsNull = {
    0x31, 0xc0,  // 0x11000: xor eax,eax
    0x8e, 0xd0,  // 0x11002: mov ss,eax
    0xf4,        // 0x11004: hlt
};

// load_ds_beyond_gdt, assembled with `as --32` at 0x11000:
const Bytes kLoadDsBeyondGdt = {
    0x66, 0xb8, 0x80, 0x00,  // 0x11000: mov ax,0x80
    0x8e, 0xd8,              // 0x11004: mov ds,eax
    0xf4,                    // 0x11006: hlt
};

// load_ss_code, assembled with `as --32` at 0x11000:
const Bytes kLoadSsCode = {
    0x66, 0xb8, 0x08, 0x00,  // 0x11000: mov ax,0x8
    0x8e, 0xd0,              // 0x11004: mov ss,eax
    0xf4,                    // 0x11006: hlt
};

// load_ss_read_only, assembled with `as --32` at 0x11000:
const Bytes kLoadSsReadOnly = {
    0x66, 0xb8, 0x30, 0x00,  // 0x11000: mov ax,0x30
    0x8e, 0xd0,              // 0x11004: mov ss,eax
    0xf4,                    // 0x11006: hlt
};

// load_ss_dpl3, assembled with `as --32` at 0x11000:
const Bytes kLoadSsDpl3 = {
    0x66, 0xb8, 0x50, 0x00,  // 0x11000: mov ax,0x50
    0x8e, 0xd0,              // 0x11004: mov ss,eax
    0xf4,                    // 0x11006: hlt
};

// load_ds_not_present, assembled with `as --32` at 0x11000:
const Bytes kLoadDsNotPresent = {
    0x66, 0xb8, 0x20, 0x00,  // 0x11000: mov ax,0x20
    0x8e, 0xd8,              // 0x11004: mov ds,eax
    0xf4,                    // 0x11006: hlt
};

// load_ss_not_present, assembled with `as --32` at 0x11000:
const Bytes kLoadSsNotPresent = {
    0x66, 0xb8, 0x40, 0x00,  // 0x11000: mov ax,0x40
    0x8e, 0xd0,              // 0x11004: mov ss,eax
    0xf4,                    // 0x11006: hlt
};

// load_ds_null_ok, assembled with `as --32` at 0x11000:
const Bytes kLoadDsNullOk = {
    0x31, 0xc0,  // 0x11000: xor eax,eax
    0x8e, 0xd8,  // 0x11002: mov ds,eax
    0x8e, 0xc0,  // 0x11004: mov es,eax
    0xf4,        // 0x11006: hlt
};

// use_null_ds, assembled with `as --32` at 0x11000:
const Bytes kUseNullDs = {
    0x31, 0xc0,                    // 0x11000: xor eax,eax
    0x8e, 0xd8,                    // 0x11002: mov ds,eax
    0xa1, 0x00, 0x60, 0x00, 0x00,  // 0x11004: mov eax,ds:0x6000
    0xf4,                          // 0x11009: hlt
};

// ds_limit, assembled with `as --32` at 0x11000:
const Bytes kDsLimit = {
    0x66, 0xb8, 0x38, 0x00,        // 0x11000: mov ax,0x38
    0x8e, 0xd8,                    // 0x11004: mov ds,eax
    0xa1, 0xfc, 0x00, 0x00, 0x00,  // 0x11006: mov eax,ds:0xfc
    0xa1, 0xfd, 0x00, 0x00, 0x00,  // 0x1100b: mov eax,ds:0xfd
    0xf4,                          // 0x11010: hlt
};

// ss_limit, assembled with `as --32` at 0x11000:
const Bytes kSsLimit = {
    0x66, 0xb8, 0x48, 0x00,                    // 0x11000: mov ax,0x48
    0x8e, 0xd0,                                // 0x11004: mov ss,eax
    0xbc, 0x00, 0x08, 0x00, 0x00,              // 0x11006: mov esp,0x800
    0x8b, 0x84, 0x24, 0xfc, 0x07, 0x00, 0x00,  // 0x1100b: mov eax,DWORD PTR [esp+0x7fc]
    0x8b, 0x84, 0x24, 0xfd, 0x07, 0x00, 0x00,  // 0x11012: mov eax,DWORD PTR [esp+0x7fd]
    0xf4,                                      // 0x11019: hlt
};

// divide_by_zero, assembled with `as --32` at 0x11000:
const Bytes kDivideByZero = {
    0xb8, 0x01, 0x00, 0x00, 0x00,  // 0x11000: mov eax,0x1
    0x31, 0xc9,                    // 0x11005: xor ecx,ecx
    0xf7, 0xf1,                    // 0x11007: div ecx
    0xf4,                          // 0x11009: hlt
};

// int3, assembled with `as --32` at 0x11000:
const Bytes kInt3 = {
    0x90,  // 0x11000: nop
    0xcc,  // 0x11001: int3
    0xf4,  // 0x11002: hlt
};

// into_overflow, assembled with `as --32` at 0x11000:
const Bytes kIntoOverflow = {
    0xb0, 0x7f,  // 0x11000: mov al,0x7f
    0x04, 0x01,  // 0x11002: add al,0x1
    0xce,        // 0x11004: into
    0xf4,        // 0x11005: hlt
};

// into_no_overflow, assembled with `as --32` at 0x11000:
const Bytes kIntoNoOverflow = {
    0xb0, 0x10,  // 0x11000: mov al,0x10
    0x04, 0x01,  // 0x11002: add al,0x1
    0xce,        // 0x11004: into
    0xf4,        // 0x11005: hlt
};

// int_40_with_if, assembled with `as --32` at 0x11000:
const Bytes kInt40WithIf = {
    0xfb,        // 0x11000: sti
    0xcd, 0x40,  // 0x11001: int 0x40
    0xf4,        // 0x11003: hlt
};

// handler_read_flags, assembled with `as --32` at 0x5400:
const Bytes kHandlerReadFlags = {
    0x9c,  // 0x5400: pushf
    0x5b,  // 0x5401: pop ebx
    0xf4,  // 0x5402: hlt
};

// int_iret, assembled with `as --32` at 0x11000:
const Bytes kIntIret = {
    0xbb, 0x00, 0x00, 0x00, 0x00,  // 0x11000: mov ebx,0x0
    0xf9,                          // 0x11005: stc
    0xcd, 0x41,                    // 0x11006: int 0x41
    0x43,                          // 0x11008: inc ebx
    0xf4,                          // 0x11009: hlt
};

// handler_inc_iret, assembled with `as --32` at 0x5410:
const Bytes kHandlerIncIret = {
    0x43,  // 0x5410: inc ebx
    0xf8,  // 0x5411: clc
    0xcf,  // 0x5412: iret
};

// spin_with_if, assembled with `as --32` at 0x11000:
const Bytes kSpinWithIf = {
    0xfb,        // 0x11000: sti
    0x40,        // 0x11001: inc eax
    0xeb, 0xfd,  // 0x11002: jmp 11001 <spin>
};

// spin_without_if, assembled with `as --32` at 0x11000:
const Bytes kSpinWithoutIf = {
    0xfa,        // 0x11000: cli
    0x40,        // 0x11001: inc eax
    0xeb, 0xfd,  // 0x11002: jmp 11001 <spin>
};

// sti_shadow, assembled with `as --32` at 0x11000:
const Bytes kStiShadow = {
    0xfb,  // 0x11000: sti
    0x40,  // 0x11001: inc eax
    0x40,  // 0x11002: inc eax
    0xf4,  // 0x11003: hlt
};

// hlt_wake, assembled with `as --32` at 0x11000:
const Bytes kHltWake = {
    0xfb,  // 0x11000: sti
    0xf4,  // 0x11001: hlt
    0x40,  // 0x11002: inc eax
    0xf4,  // 0x11003: hlt
};

// handler_iret, assembled with `as --32` at 0x5220:
const Bytes kHandlerIret = {
    0xcf,  // 0x5220: iret
};

// rep_movsb, assembled with `as --32` at 0x11000:
const Bytes kRepMovsb = {
    0xf3, 0xa4,  // 0x11000: rep movs BYTE PTR es:[edi],BYTE PTR ds:[esi]
    0xf4,        // 0x11002: hlt
};

// rep_stosd, assembled with `as --32` at 0x11000:
const Bytes kRepStosd = {
    0xf3, 0xab,  // 0x11000: rep stos DWORD PTR es:[edi],eax
    0xf4,        // 0x11002: hlt
};

// repe_cmpsb, assembled with `as --32` at 0x11000:
const Bytes kRepeCmpsb = {
    0xf3, 0xa6,  // 0x11000: repz cmps BYTE PTR ds:[esi],BYTE PTR es:[edi]
    0xf4,        // 0x11002: hlt
};

// repne_scasb, assembled with `as --32` at 0x11000:
const Bytes kRepneScasb = {
    0xf2, 0xae,  // 0x11000: repnz scas al,BYTE PTR es:[edi]
    0xf4,        // 0x11002: hlt
};

// pusha_popa, assembled with `as --32` at 0x11000:
const Bytes kPushaPopa = {
    0x60,                          // 0x11000: pusha
    0xbf, 0x00, 0x00, 0x00, 0x00,  // 0x11001: mov edi,0x0
    0xbe, 0x00, 0x00, 0x00, 0x00,  // 0x11006: mov esi,0x0
    0xbd, 0x00, 0x00, 0x00, 0x00,  // 0x1100b: mov ebp,0x0
    0xbb, 0x00, 0x00, 0x00, 0x00,  // 0x11010: mov ebx,0x0
    0xba, 0x00, 0x00, 0x00, 0x00,  // 0x11015: mov edx,0x0
    0xb9, 0x00, 0x00, 0x00, 0x00,  // 0x1101a: mov ecx,0x0
    0xb8, 0x00, 0x00, 0x00, 0x00,  // 0x1101f: mov eax,0x0
    0x61,                          // 0x11024: popa
    0xf4,                          // 0x11025: hlt
};

// pusha_only, assembled with `as --32` at 0x11000:
const Bytes kPushaOnly = {
    0x60,  // 0x11000: pusha
    0xf4,  // 0x11001: hlt
};

// pusha16, assembled with `as --32` at 0x11000:
const Bytes kPusha16 = {
    0x66, 0x60,  // 0x11000: pushaw
    0xf4,        // 0x11002: hlt
};

// enter_0, assembled with `as --32` at 0x11000:
const Bytes kEnter0 = {
    0xc8, 0x10, 0x00, 0x00,  // 0x11000: enter 0x10,0x0
    0xf4,                    // 0x11004: hlt
};

// enter_1, assembled with `as --32` at 0x11000:
const Bytes kEnter1 = {
    0xc8, 0x08, 0x00, 0x01,  // 0x11000: enter 0x8,0x1
    0xf4,                    // 0x11004: hlt
};

// enter_3, assembled with `as --32` at 0x11000:
const Bytes kEnter3 = {
    0xc8, 0x0c, 0x00, 0x03,  // 0x11000: enter 0xc,0x3
    0xf4,                    // 0x11004: hlt
};

// enter_leave, assembled with `as --32` at 0x11000:
const Bytes kEnterLeave = {
    0xc8, 0x0c, 0x00, 0x03,  // 0x11000: enter 0xc,0x3
    0x89, 0xe0,              // 0x11004: mov eax,esp
    0xc9,                    // 0x11006: leave
    0xf4,                    // 0x11007: hlt
};

// bound_ok, assembled with `as --32` at 0x11000:
const Bytes kBoundOk = {
    0x62, 0x05, 0x00, 0x60, 0x00, 0x00,  // 0x11000: bound eax,QWORD PTR ds:0x6000
    0xf4,                                // 0x11006: hlt
};

// bound16, assembled with `as --32` at 0x11000:
const Bytes kBound16 = {
    0x66, 0x62, 0x05, 0x08, 0x60, 0x00, 0x00,  // 0x11000: bound ax,DWORD PTR ds:0x6008
    0xf4,                                      // 0x11007: hlt
};

// xlat, assembled with `as --32` at 0x11000:
const Bytes kXlat = {
    0xd7,  // 0x11000: xlat BYTE PTR ds:[ebx]
    0xf4,  // 0x11001: hlt
};

// addr16_mov, assembled with `as --32` at 0x11000:
const Bytes kAddr16Mov = {
    0x67, 0x66, 0x8b, 0x40, 0x04,              // 0x11000: mov ax,WORD PTR [bx+si+0x4]
    0x67, 0x66, 0x8b, 0x0b,                    // 0x11005: mov cx,WORD PTR [bp+di]
    0x67, 0x66, 0x03, 0x47, 0x10,              // 0x11009: add ax,WORD PTR [bx+0x10]
    0x67, 0x66, 0x8d, 0x90, 0x34, 0x12,        // 0x1100e: lea dx,[bx+si+0x1234]
    0x67, 0x8d, 0x38,                          // 0x11014: lea edi,[bx+si]
    0x67, 0x66, 0x89, 0x05,                    // 0x11017: mov WORD PTR [di],ax
    0x67, 0x66, 0xc7, 0x40, 0x20, 0x78, 0x56,  // 0x1101b: mov WORD PTR [bx+si+0x20],0x5678
    0xf4,                                      // 0x11022: hlt
};

// op16_add, assembled with `as --32` at 0x11000:
const Bytes kOp16Add = {
    0x66, 0x01, 0xc8,        // 0x11000: add ax,cx
    0x01, 0xc8,              // 0x11003: add eax,ecx
    0x66, 0xbb, 0x34, 0x12,  // 0x11005: mov bx,0x1234
    0x80, 0xc3, 0x10,        // 0x11009: add bl,0x10
    0xf4,                    // 0x1100c: hlt
};

// cpuid1, assembled with `as --32` at 0x11000:
const Bytes kCpuid1 = {
    0xb8, 0x01, 0x00, 0x00, 0x00,  // 0x11000: mov eax,0x1
    0x0f, 0xa2,                    // 0x11005: cpuid
    0xf4,                          // 0x11007: hlt
};

// cpuid0, assembled with `as --32` at 0x11000:
const Bytes kCpuid0 = {
    0x31, 0xc0,  // 0x11000: xor eax,eax
    0x0f, 0xa2,  // 0x11002: cpuid
    0xf4,        // 0x11004: hlt
};

// rdtsc, assembled with `as --32` at 0x11000:
const Bytes kRdtsc = {
    0x90,        // 0x11000: nop
    0x90,        // 0x11001: nop
    0x0f, 0x31,  // 0x11002: rdtsc
    0xf4,        // 0x11004: hlt
};

// counting_loop, assembled with `as --32` at 0x11000:
const Bytes kCountingLoop = {
    0x40,        // 0x11000: inc eax
    0xeb, 0xfd,  // 0x11001: jmp 11000 <_start>
};

// smc_loop, assembled with `as --32` at 0x11000:
const Bytes kSmcLoop = {
    0xb9, 0x02, 0x00, 0x00, 0x00,              // 0x11000: mov ecx,0x2
    0xb8, 0x11, 0x11, 0x11, 0x11,              // 0x11005: mov eax,0x11111111
    0xc6, 0x05, 0x06, 0x10, 0x01, 0x00, 0x22,  // 0x1100a: mov BYTE PTR ds:0x11006,0x22
    0x01, 0xc3,                                // 0x11011: add ebx,eax
    0xe2, 0xf0,                                // 0x11013: loop 11005 <again>
    0xf4,                                      // 0x11015: hlt
};

// smc_ahead, assembled with `as --32` at 0x11000:
const Bytes kSmcAhead = {
    0xc7, 0x05, 0x0d, 0x10, 0x01,
    0x00, 0x66, 0x77, 0x88, 0x99,  // 0x11000: mov DWORD PTR ds:0x1100d,0x99887766
    0xeb, 0x00,                    // 0x1100a: jmp 1100c <target>
    0xb8, 0x11, 0x11, 0x11, 0x11,  // 0x1100c: mov eax,0x11111111
    0xf4,                          // 0x11011: hlt
};

// out_in, assembled with `as --32` at 0x11000:
const Bytes kOutIn = {
    0x66, 0xba, 0x00, 0x03,        // 0x11000: mov dx,0x300
    0xb0, 0xab,                    // 0x11004: mov al,0xab
    0xee,                          // 0x11006: out dx,al
    0xb8, 0xef, 0xbe, 0xad, 0xde,  // 0x11007: mov eax,0xdeadbeef
    0xe7, 0x82,                    // 0x1100c: out 0x82,eax
    0xe4, 0x81,                    // 0x1100e: in al,0x81
    0x88, 0xc3,                    // 0x11010: mov bl,al
    0xed,                          // 0x11012: in eax,dx
    0x66, 0xed,                    // 0x11013: in ax,dx
    0xf4,                          // 0x11015: hlt
};

// lidt_empty_div, assembled with `as --32` at 0x11000:
const Bytes kLidtEmptyDiv = {
    0x0f, 0x01, 0x1d, 0x10, 0x40, 0x00, 0x00,  // 0x11000: lidtd ds:0x4010
    0x31, 0xc9,                                // 0x11007: xor ecx,ecx
    0xf7, 0xf1,                                // 0x11009: div ecx
    0xf4,                                      // 0x1100b: hlt
};

// int 3 in its two-byte form (CD 03), hand-encoded.
const Bytes kInt03 = {
    0x90,        // 0x11000: nop
    0xcd, 0x03,  // 0x11001: int 3
    0xf4,        // 0x11003: hlt
};

// Named differences between two register files, empty when equal.
std::string diff_registers(const CpuRegisters& a, const CpuRegisters& b) {
  std::string out;
  auto field = [&](const std::string& name, u64 x, u64 y) {
    if (x != y) out += " " + name + ": " + hex(x) + " != " + hex(y);
  };
  static const char* kGpr[] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
  static const char* kSeg[] = {"es", "cs", "ss", "ds", "fs", "gs"};
  for (int i = 0; i < 8; ++i) field(kGpr[i], a.gpr[i], b.gpr[i]);
  field("eip", a.eip, b.eip);
  field("eflags", a.eflags, b.eflags);
  auto seg = [&](const std::string& name, const SegmentCache& x, const SegmentCache& y) {
    field(name + ".selector", x.selector, y.selector);
    field(name + ".base", x.base, y.base);
    field(name + ".limit", x.limit, y.limit);
    field(name + ".attrs", x.attrs, y.attrs);
  };
  for (int i = 0; i < 6; ++i) seg(kSeg[i], a.seg[i], b.seg[i]);
  seg("ldtr", a.ldtr, b.ldtr);
  seg("tr", a.tr, b.tr);
  field("gdtr.base", a.gdtr.base, b.gdtr.base);
  field("gdtr.limit", a.gdtr.limit, b.gdtr.limit);
  field("idtr.base", a.idtr.base, b.idtr.base);
  field("idtr.limit", a.idtr.limit, b.idtr.limit);
  field("cr0", a.cr0, b.cr0);
  field("cr2", a.cr2, b.cr2);
  field("cr3", a.cr3, b.cr3);
  field("cr4", a.cr4, b.cr4);
  for (int i = 0; i < 8; ++i) field("dr" + std::to_string(i), a.dr[i], b.dr[i]);
  return out;
}

class CpuSystemTest : public ::testing::Test, public CpuFixture {
 protected:
  void build_tables() {
    const u64 gdt[kGdtEntries] = {
        0,
        make_descriptor(0, 0xfffff, 0x9a, 0xc),              // 0x08 flat code, 32-bit
        make_descriptor(0, 0xfffff, 0x92, 0xc),              // 0x10 flat data, 32-bit
        make_descriptor(0, 0xffff, 0x9a, 0x0),               // 0x18 16-bit code (unused)
        make_descriptor(0, 0xfffff, 0x12, 0xc),              // 0x20 data, not present
        make_descriptor(0, 0xfffff, 0x9a, 0xc),              // 0x28 code (spare)
        make_descriptor(0, 0xfffff, 0x90, 0xc),              // 0x30 read-only data
        make_descriptor(kSmallDataBase, 0xff, 0x92, 0x4),    // 0x38 data, limit 0xff
        make_descriptor(0, 0xfffff, 0x12, 0xc),              // 0x40 stack, not present
        make_descriptor(kSmallStackBase, 0xfff, 0x92, 0x4),  // 0x48 stack, limit 0xfff
        make_descriptor(0, 0xfffff, 0xf2, 0xc),              // 0x50 data, DPL 3
    };
    for (u32 i = 0; i < kGdtEntries; ++i) write64(kGdt + 8 * i, gdt[i]);
    write16(kGdtrImage, kGdtEntries * 8 - 1);
    write32(kGdtrImage + 2, kGdt);
    for (u32 v = 0; v < 256; ++v) {
      write64(kIdt + 8 * v, make_gate(kSelCode, handler_addr(static_cast<u8>(v)), 0xe));
      write8(handler_addr(static_cast<u8>(v)), 0xf4);  // hlt
    }
    write16(kIdtrImage, 256 * 8 - 1);
    write32(kIdtrImage + 2, kIdt);
    write16(kEmptyIdtrImage, 0);
    write32(kEmptyIdtrImage + 2, 0);
  }

  // Tables, prologue and test code in memory; CPU in flat protected mode
  // at the prologue, which loads the tables and reloads every segment.
  void boot(const Bytes& test_code) {
    build_tables();
    load(kPrologueAddr, kPrologue);
    load(kTestAddr, test_code);
    start(kPrologueAddr);
  }

  // Boots and runs the prologue, so the CPU sits at the first test
  // instruction with the test's own GDT and IDT in force.
  void boot_and_enter(const Bytes& test_code) {
    boot(test_code);
    ASSERT_EQ(run(kPrologueInstructions), CpuStop::budget);
    const CpuRegisters r = regs();
    ASSERT_EQ(r.eip, kTestAddr) << "the prologue did not reach the test code";
    ASSERT_EQ(r.gpr[kEsp], kStackTop);
  }

  void set_handler(u8 vector, const Bytes& code, u8 gate_type = 0xe) {
    load(handler_addr(vector), code);
    write64(kIdt + 8u * vector, make_gate(kSelCode, handler_addr(vector), gate_type));
  }

  u32 stack_read32(u32 esp_offset) const {
    const CpuRegisters r = regs();
    return read32(r.seg[static_cast<int>(SegReg::ss)].base + r.gpr[kEsp] + esp_offset);
  }

  // After a HLT handler for `vector` ran: the CPU is halted right after the
  // handler's first byte and the frame holds [error], EIP, CS, EFLAGS.
  // Software interrupts (INT3, INTO, INT n) and external ones are not
  // counted in exceptions(): `counted` says whether this delivery is.
  void expect_delivered(u8 vector, std::optional<u32> error, u32 pushed_eip, u32 frame_esp = kStackTop,
                        bool counted = true) {
    const CpuRegisters r = regs();
    if (r.eip != handler_addr(vector) + 1) {
      // The frame checks below would only repeat this failure.
      ADD_FAILURE() << "expected vector " << int(vector) << " to be delivered; handler of vector "
                    << (r.eip >= kHandlers && r.eip < kHandlers + 0x1000
                            ? std::to_string((r.eip - kHandlers) / 16)
                            : "none")
                    << " ran (EIP " << hex(r.eip) << ", ESP " << hex(r.gpr[kEsp]) << ")";
      return;
    }
    EXPECT_EQ(r.seg[1].selector, kSelCode);
    const u32 frame = error ? 16 : 12;
    EXPECT_EQ(r.gpr[kEsp], frame_esp - frame) << "frame size for vector " << int(vector);
    u32 off = 0;
    if (error) {
      EXPECT_EQ(stack_read32(off), *error) << "error code of vector " << int(vector);
      off += 4;
    }
    EXPECT_EQ(stack_read32(off), pushed_eip) << "pushed EIP of vector " << int(vector);
    EXPECT_EQ(stack_read32(off + 4) & 0xffff, kSelCode) << "pushed CS";
    EXPECT_EQ(stack_read32(off + 8) & 2, 2u) << "pushed EFLAGS bit 1";
    if (counted && vector < 32) {
      EXPECT_GE(cpu.exceptions()[vector], 1u) << "exceptions() counts vector " << int(vector);
    }
  }

  u32 pushed_eflags(bool has_error) const { return stack_read32(has_error ? 12 : 8); }
};

// ------------------------------------------------------------------ tables and segments

TEST_F(CpuSystemTest, PrologueLoadsTablesAndReloadsSegments) {
  boot_and_enter({0xf4});
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gdtr.base, kGdt);
  EXPECT_EQ(r.gdtr.limit, kGdtEntries * 8 - 1);
  EXPECT_EQ(r.idtr.base, kIdt);
  EXPECT_EQ(r.idtr.limit, 256 * 8 - 1);
  EXPECT_EQ(r.seg[static_cast<int>(SegReg::cs)].selector, kSelCode);
  for (SegReg s : {SegReg::ds, SegReg::es, SegReg::ss, SegReg::fs, SegReg::gs}) {
    const SegmentCache& c = r.seg[static_cast<int>(s)];
    EXPECT_EQ(c.selector, kSelData);
    EXPECT_EQ(c.base, 0u);
    EXPECT_EQ(c.limit, 0xffffffffu);
  }
  // The CPU sets the accessed bit of the descriptors it loaded.
  EXPECT_TRUE(read8(kGdt + kSelData + 5) & 1) << "data descriptor accessed bit";
  EXPECT_EQ(run_to_halt(), CpuStop::halted);
  EXPECT_EQ(regs().eip, kTestAddr + 1);
}

struct SegmentFaultCase {
  const char* name;
  const Bytes* code;
  u8 vector;
  u32 error;
  u32 fault_eip;
};

TEST_F(CpuSystemTest, SegmentLoadChecks) {
  const SegmentFaultCase cases[] = {
      {"null selector into SS: #GP(0)", &kLoadSsNull, 13, 0, 0x11002},
      {"selector beyond the GDT limit: #GP(sel)", &kLoadDsBeyondGdt, 13, 0x80, 0x11004},
      {"code segment into SS: #GP(sel)", &kLoadSsCode, 13, kSelCode, 0x11004},
      {"read-only data into SS: #GP(sel)", &kLoadSsReadOnly, 13, kSelReadOnly, 0x11004},
      {"DPL 3 data into SS at CPL 0: #GP(sel)", &kLoadSsDpl3, 13, kSelDpl3Data, 0x11004},
      {"not-present data into DS: #NP(sel)", &kLoadDsNotPresent, 11, kSelNotPresentData, 0x11004},
      {"not-present segment into SS: #SS(sel)", &kLoadSsNotPresent, 12, kSelNotPresentStack, 0x11004},
      {"memory access through a null DS: #GP(0)", &kUseNullDs, 13, 0, 0x11004},
      {"DS access beyond the limit: #GP(0)", &kDsLimit, 13, 0, 0x1100b},
  };
  for (const SegmentFaultCase& c : cases) {
    SCOPED_TRACE(c.name);
    CpuFixture::cpu.reset();
    boot_and_enter(*c.code);
    EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
    expect_delivered(c.vector, c.error, c.fault_eip);
  }
}

TEST_F(CpuSystemTest, StackLimitViolationRaisesStackFault) {
  write32(kSmallStackBase + 0xffc, 0xcafef00d);
  boot_and_enter(kSsLimit);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  // The first read (0xffc..0xfff) is inside the limit and the second is not:
  // #SS(0), delivered on the same small stack at ESP 0x800.
  expect_delivered(12, 0, 0x11012, 0x800);
  EXPECT_EQ(gpr(kEax), 0xcafef00du);
}

TEST_F(CpuSystemTest, NullSelectorIntoDataSegmentsIsAllowed) {
  boot_and_enter(kLoadDsNullOk);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.eip, 0x11007u);
  EXPECT_EQ(r.seg[static_cast<int>(SegReg::ds)].selector, 0);
  EXPECT_EQ(r.seg[static_cast<int>(SegReg::es)].selector, 0);
}

// ------------------------------------------------------------------ exceptions

TEST_F(CpuSystemTest, DivideErrorIsAFaultPointingAtTheDivide) {
  boot_and_enter(kDivideByZero);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(0, std::nullopt, 0x11007);
  EXPECT_EQ(gpr(kEax), 1u) << "a faulting DIV leaves EAX alone";
}

TEST_F(CpuSystemTest, Int3AndIntoAreTrapsPointingAfter) {
  boot_and_enter(kInt3);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(3, std::nullopt, 0x11002, kStackTop, false);

  CpuFixture::cpu.reset();
  boot_and_enter(kInt03);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(3, std::nullopt, 0x11003, kStackTop, false);

  CpuFixture::cpu.reset();
  boot_and_enter(kIntoOverflow);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(4, std::nullopt, 0x11005, kStackTop, false);
  EXPECT_TRUE(pushed_eflags(false) & kOF);

  CpuFixture::cpu.reset();
  boot_and_enter(kIntoNoOverflow);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  EXPECT_EQ(regs().eip, 0x11006u) << "INTO without OF does nothing";
}

TEST_F(CpuSystemTest, BoundRaisesBoundRangeFault) {
  write32(0x6000, 10);
  write32(0x6004, 20);
  write16(0x6008, static_cast<u16>(-5));
  write16(0x600a, 5);
  for (u32 value : {10u, 15u, 20u}) {
    CpuFixture::cpu.reset();
    boot_and_enter(kBoundOk);
    set_gpr(kEax, value);
    EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
    EXPECT_EQ(regs().eip, 0x11007u) << "BOUND " << value << " within [10,20]";
  }
  for (u32 value : {9u, 21u, 0xffffffffu}) {
    CpuFixture::cpu.reset();
    boot_and_enter(kBoundOk);
    set_gpr(kEax, value);
    EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
    SCOPED_TRACE("BOUND eax=" + hex(value));
    expect_delivered(5, std::nullopt, 0x11000);
  }
  // 16-bit BOUND compares signed words: -5 <= 0xfffb (-5) and 0x12340004 (4).
  for (u32 value : {0xfffbu, 0x12340004u}) {
    CpuFixture::cpu.reset();
    boot_and_enter(kBound16);
    set_gpr(kEax, value);
    EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
    EXPECT_EQ(regs().eip, 0x11008u) << "BOUND16 " << hex(value);
  }
  CpuFixture::cpu.reset();
  boot_and_enter(kBound16);
  set_gpr(kEax, 6);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(5, std::nullopt, 0x11000);
}

TEST_F(CpuSystemTest, InvalidOpcodesRaiseUd) {
  const Bytes cases[] = {
      {0x0f, 0x0b, 0xf4},              // ud2
      {0x0f, 0xff, 0xf4},              // undefined two-byte opcode
      {0x0f, 0x38, 0x00, 0xc0, 0xf4},  // three-byte map: not on a 486
      {0xfe, 0xf8, 0xf4},              // FE /7
      {0xff, 0xf8, 0xf4},              // FF /7
      {0x8d, 0xc0, 0xf4},              // lea eax, eax (register operand)
      {0xc4, 0xc0, 0xf4},              // les eax, eax (register operand)
      {0xf0, 0x40, 0xf4},              // lock inc eax: LOCK on a non-memory operand
      {0x0f, 0x01, 0xf8, 0xf4},        // 0F 01 /7 with a register: INVLPG needs memory
  };
  for (const Bytes& code : cases) {
    SCOPED_TRACE("bytes " + hex_bytes(code));
    CpuFixture::cpu.reset();
    boot_and_enter(code);
    EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
    expect_delivered(6, std::nullopt, kTestAddr);
  }
}

TEST_F(CpuSystemTest, TripleFaultShutsDown) {
  boot_and_enter(kLidtEmptyDiv);
  // #DE cannot be delivered (IDT limit 0) -> #GP -> #DF -> shutdown.
  EXPECT_EQ(run_to_halt(1000), CpuStop::shutdown);
}

// Every one- and two-byte opcode, followed by random bytes, from a sane
// state: whatever it does, the CPU retires it, faults or stops, and never
// crashes or runs past its budget.
TEST_F(CpuSystemTest, ArbitraryBytesNeverCrash) {
  boot_and_enter({0xf4});
  const CpuRegisters base = regs();
  std::mt19937 rng(0x5eed);
  int stops[4] = {};
  for (int first = 0; first < 512; ++first) {
    for (int variant = 0; variant < 4; ++variant) {
      Bytes code;
      if (first >= 256) code.push_back(0x0f);
      code.push_back(static_cast<u8>(first & 0xff));
      for (int i = 0; i < 14; ++i) code.push_back(static_cast<u8>(rng()));
      build_tables();
      load(kTestAddr, code);
      CpuFixture::cpu.enter_flat_protected_mode(kTestAddr);  // clears a HLT from the last case
      CpuRegisters r = base;
      for (int g = 0; g < 8; ++g) r.gpr[g] = g == kEsp ? kStackTop : static_cast<u32>(rng()) & 0xffff;
      set_regs(r);
      const u64 before = clock.icount();
      const CpuStop why = run(3);
      ASSERT_LE(clock.icount() - before, 3u) << "ran past its budget on " << hex_bytes(code);
      ++stops[static_cast<int>(why)];
    }
  }
  std::printf("arbitrary bytes: %d budget, %d halted, %d exit, %d shutdown\n", stops[0], stops[1], stops[2],
              stops[3]);
}

// ------------------------------------------------------------------ interrupts

TEST_F(CpuSystemTest, IntThroughInterruptGateClearsIf) {
  boot(kInt40WithIf);
  set_handler(0x40, kHandlerReadFlags, 0xe);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  EXPECT_EQ(regs().eip, handler_addr(0x40) + 3);
  EXPECT_EQ(gpr(kEbx) & kIF, 0u) << "IF inside an interrupt-gate handler";
  EXPECT_EQ(stack_read32(0), 0x11003u) << "INT n pushes the next EIP";
  EXPECT_TRUE(stack_read32(8) & kIF) << "pushed EFLAGS keeps IF=1";
}

TEST_F(CpuSystemTest, IntThroughTrapGateKeepsIf) {
  boot(kInt40WithIf);
  set_handler(0x40, kHandlerReadFlags, 0xf);  // boot() rebuilt the IDT
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  EXPECT_EQ(regs().eip, handler_addr(0x40) + 3);
  EXPECT_TRUE(gpr(kEbx) & kIF) << "IF inside a trap-gate handler";
}

TEST_F(CpuSystemTest, IretReturnsAndRestoresFlags) {
  boot(kIntIret);
  set_handler(0x41, kHandlerIncIret);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.eip, 0x1100au);
  EXPECT_EQ(r.gpr[kEbx], 2u) << "handler and the instruction after INT both ran";
  EXPECT_EQ(r.gpr[kEsp], kStackTop);
  EXPECT_TRUE(r.eflags & kCF) << "IRET restores the CF the handler cleared";
}

TEST_F(CpuSystemTest, ExternalInterruptTakenWhenIfSet) {
  boot_and_enter(kSpinWithIf);
  // sti, then inc/jmp pairs: after 10 instructions the next one is the jmp.
  ASSERT_EQ(run(10), CpuStop::budget);
  EXPECT_EQ(regs().eip, 0x11002u);
  pic.raise(0x20);
  EXPECT_EQ(run(100), CpuStop::halted);
  EXPECT_EQ(pic.acks, 1);
  expect_delivered(0x20, std::nullopt, 0x11002);
  EXPECT_EQ(gpr(kEax), 5u);
  EXPECT_TRUE(pushed_eflags(false) & kIF);
  EXPECT_FALSE(regs().eflags & kIF);
}

TEST_F(CpuSystemTest, ExternalInterruptHeldWhileIfClear) {
  boot_and_enter(kSpinWithoutIf);
  pic.raise(0x20);
  EXPECT_EQ(run(200), CpuStop::budget);
  EXPECT_EQ(pic.acks, 0);
  EXPECT_FALSE(cpu.interrupt_ready());
}

TEST_F(CpuSystemTest, StiShadowDelaysInterruptByOneInstruction) {
  boot_and_enter(kStiShadow);
  pic.raise(0x20);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(0x20, std::nullopt, 0x11002);
  EXPECT_EQ(gpr(kEax), 1u) << "exactly one instruction runs in the STI shadow";
}

TEST_F(CpuSystemTest, HltWakesOnInterrupt) {
  boot(kHltWake);
  set_handler(0x22, kHandlerIret);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  EXPECT_TRUE(cpu.halted());
  EXPECT_EQ(regs().eip, 0x11002u);
  const u64 icount = clock.icount();
  EXPECT_EQ(run(50), CpuStop::halted) << "still halted with nothing pending";
  EXPECT_EQ(clock.icount(), icount) << "a halted CPU retires nothing";
  pic.raise(0x22);
  EXPECT_TRUE(cpu.interrupt_ready());
  EXPECT_EQ(run(50), CpuStop::halted);
  EXPECT_EQ(regs().eip, 0x11004u);
  EXPECT_EQ(gpr(kEax), 1u);
  EXPECT_EQ(regs().gpr[kEsp], kStackTop);
}

// ------------------------------------------------------------------ string instructions

struct StringSetup {
  const char* name;
  const Bytes* code;
  bool df;
  u32 eax, ecx, esi, edi;
};

class CpuStringTest : public CpuSystemTest {
 protected:
  void fill_buffers() {
    for (u32 i = 0; i < 0x200; ++i) {
      write8(0x6000 + i, static_cast<u8>(i * 7 + 3));
      write8(0x7000 + i, static_cast<u8>(i < 0x10b ? i * 7 + 3 : 0));  // equal up to 0x10b
      write8(0x8000 + i, 0xee);
    }
    write8(0x6000 + 0x11, 0x5a);  // a unique byte for SCASB
  }
  void setup(const StringSetup& s) {
    fill_buffers();
    boot_and_enter(*s.code);
    CpuRegisters r = regs();
    r.gpr[kEax] = s.eax;
    r.gpr[kEcx] = s.ecx;
    r.gpr[kEsi] = s.esi;
    r.gpr[kEdi] = s.edi;
    r.eflags = 2 | (s.df ? kDF : 0);
    set_regs(r);
  }
};

const StringSetup kStringCases[] = {
    {"rep movsb forward", &kRepMovsb, false, 0, 100, 0x6000, 0x8000},
    {"rep movsb backward", &kRepMovsb, true, 0, 100, 0x6063, 0x8063},
    {"rep movsb overlapping forward", &kRepMovsb, false, 0, 50, 0x6000, 0x6001},
    {"rep movsb ecx=0", &kRepMovsb, false, 0, 0, 0x6000, 0x8000},
    {"rep stosd forward", &kRepStosd, false, 0xdeadbeef, 20, 0, 0x8000},
    {"rep stosd backward", &kRepStosd, true, 0x01020304, 20, 0, 0x8100},
    {"repe cmpsb forward", &kRepeCmpsb, false, 0, 0x150, 0x6100, 0x7100},
    {"repe cmpsb backward", &kRepeCmpsb, true, 0, 0x20, 0x60ff, 0x70ff},
    {"repne scasb forward", &kRepneScasb, false, 0x5a, 100, 0, 0x6000},
    {"repne scasb backward", &kRepneScasb, true, 0x5a, 100, 0, 0x6030},
    {"repne scasb not found", &kRepneScasb, false, 0x5b5b5b5b, 8, 0, 0x8000},
};

TEST_F(CpuStringTest, RepResults) {
  struct Want {
    u32 ecx, esi, edi;
  };
  const Want want[] = {
      {0, 0x6064, 0x8064},           {0, 0x5fff, 0x7fff}, {0, 0x6032, 0x6033},
      {0, 0x6000, 0x8000},           {0, 0, 0x8050},      {0, 0, 0x80b0},
      {0x150 - 0xc, 0x610c, 0x710c}, {0, 0x60df, 0x70df}, {100 - 0x12, 0, 0x6012},
      {100 - 0x20, 0, 0x6010},       {0, 0, 0x8008},
  };
  for (size_t i = 0; i < std::size(kStringCases); ++i) {
    const StringSetup& s = kStringCases[i];
    SCOPED_TRACE(s.name);
    CpuFixture::cpu.reset();
    setup(s);
    EXPECT_EQ(run_to_halt(10000), CpuStop::halted);
    const CpuRegisters r = regs();
    EXPECT_EQ(r.eip, 0x11003u);
    EXPECT_EQ(r.gpr[kEcx], want[i].ecx);
    EXPECT_EQ(r.gpr[kEsi], want[i].esi);
    EXPECT_EQ(r.gpr[kEdi], want[i].edi);
  }
  // Memory effects of a few of them.
  CpuFixture::cpu.reset();
  setup(kStringCases[0]);
  run_to_halt(10000);
  for (u32 i = 0; i < 100; ++i) ASSERT_EQ(read8(0x8000 + i), read8(0x6000 + i)) << "movsb byte " << i;
  EXPECT_EQ(read8(0x8000 + 100), 0xee);

  CpuFixture::cpu.reset();
  setup(kStringCases[2]);
  run_to_halt(10000);
  for (u32 i = 0; i <= 50; ++i)
    ASSERT_EQ(read8(0x6000 + i), 3) << "overlapping movsb repeats the first byte, " << i;

  CpuFixture::cpu.reset();
  setup(kStringCases[5]);
  run_to_halt(10000);
  for (u32 i = 0; i < 20; ++i) ASSERT_EQ(read32(0x8100 - 4 * i), 0x01020304u) << "stosd backward " << i;
  EXPECT_EQ(read32(0x8100 - 4 * 20), 0xeeeeeeeeu);

  CpuFixture::cpu.reset();
  setup(kStringCases[6]);
  run_to_halt(10000);
  EXPECT_FALSE(eflags() & kZF) << "repe cmpsb stops on a difference";
  CpuFixture::cpu.reset();
  setup(kStringCases[8]);
  run_to_halt(10000);
  EXPECT_TRUE(eflags() & kZF) << "repne scasb stops on a match";
}

// Each REP iteration is one retired instruction, and a REP stopped by the
// budget resumes to exactly the state of an uninterrupted run.
TEST_F(CpuStringTest, BudgetStopsMidRepAndResumesExactly) {
  for (const StringSetup& s : kStringCases) {
    SCOPED_TRACE(s.name);
    CpuFixture::cpu.reset();
    setup(s);
    const u64 start = clock.icount();
    EXPECT_EQ(run_to_halt(10000), CpuStop::halted);
    const CpuRegisters whole = regs();
    const u64 whole_count = clock.icount() - start;
    std::vector<u8> whole_mem(memory.data() + 0x6000, memory.data() + 0x9000);

    for (u64 chunk : {1u, 3u, 7u}) {
      CpuFixture::cpu.reset();
      setup(s);
      const u64 start2 = clock.icount();
      CpuStop why = CpuStop::budget;
      int guard = 0;
      while (why == CpuStop::budget && guard++ < 20000) {
        const u64 before = clock.icount();
        why = run(chunk);
        if (why == CpuStop::budget) {
          ASSERT_EQ(clock.icount() - before, chunk) << "run(n) retires exactly n";
        }
      }
      EXPECT_EQ(why, CpuStop::halted);
      EXPECT_EQ(clock.icount() - start2, whole_count) << "chunk " << chunk;
      EXPECT_EQ(diff_registers(regs(), whole), "") << "chunk " << chunk;
      EXPECT_TRUE(std::equal(whole_mem.begin(), whole_mem.end(), memory.data() + 0x6000))
          << "chunk " << chunk;
    }
  }
  // Mid-REP state: five iterations of a 100-byte MOVSB.
  CpuFixture::cpu.reset();
  setup(kStringCases[0]);
  EXPECT_EQ(run(5), CpuStop::budget);
  const CpuRegisters r = regs();
  EXPECT_EQ(r.gpr[kEcx], 95u);
  EXPECT_EQ(r.gpr[kEsi], 0x6005u);
  EXPECT_EQ(r.eip, kTestAddr) << "EIP stays on the REP instruction until it finishes";
}

// A fault in the middle of a REP reports the REP instruction as the
// faulting one, with the registers of the iterations already done.
TEST_F(CpuSystemTest, FaultInsideRepPointsAtTheRepWithPartialProgress) {
  const Bytes code = {
      0x66, 0xb8, 0x38, 0x00,  // 0x11000: mov ax, 0x38 (data segment, limit 0xff)
      0x8e, 0xd8,              // 0x11004: mov ds, eax
      0xf3, 0xa4,              // 0x11006: rep movsb
      0xf4,                    // 0x11008: hlt
  };
  boot_and_enter(code);
  CpuRegisters r = regs();
  r.gpr[kEsi] = 0xf0;
  r.gpr[kEdi] = 0x8000;
  r.gpr[kEcx] = 0x20;
  set_regs(r);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  expect_delivered(13, 0, 0x11006);
  EXPECT_EQ(gpr(kEcx), 0x10u) << "16 bytes were copied before DS:0x100";
  EXPECT_EQ(gpr(kEsi), 0x100u);
  EXPECT_EQ(gpr(kEdi), 0x8010u);
}

// An external interrupt between REP iterations returns to the REP, which
// then finishes.
TEST_F(CpuSystemTest, InterruptBetweenRepIterations) {
  const Bytes code = {
      0xfb,        // 0x11000: sti
      0xf3, 0xaa,  // 0x11001: rep stosb
      0xf4,        // 0x11003: hlt
  };
  boot_and_enter(code);
  CpuRegisters r = regs();
  r.gpr[kEax] = 0x77;
  r.gpr[kEdi] = 0x8000;
  r.gpr[kEcx] = 100;
  set_regs(r);
  ASSERT_EQ(run(11), CpuStop::budget);  // sti and 10 iterations
  EXPECT_EQ(gpr(kEcx), 90u);
  pic.raise(0x23);
  EXPECT_EQ(run(100), CpuStop::halted);
  expect_delivered(0x23, std::nullopt, 0x11001);
  EXPECT_EQ(gpr(kEcx), 90u);

  // Same again with a handler that returns: the REP completes.
  CpuFixture::cpu.reset();
  boot(code);
  set_handler(0x23, kHandlerIret);
  ASSERT_EQ(run(kPrologueInstructions), CpuStop::budget);
  r = regs();
  r.gpr[kEax] = 0x77;
  r.gpr[kEdi] = 0x8000;
  r.gpr[kEcx] = 100;
  set_regs(r);
  ASSERT_EQ(run(11), CpuStop::budget);
  pic.raise(0x23);
  EXPECT_EQ(run_to_halt(1000), CpuStop::halted);
  EXPECT_EQ(regs().eip, 0x11004u);
  EXPECT_EQ(gpr(kEcx), 0u);
  EXPECT_EQ(gpr(kEdi), 0x8000u + 100);
  for (u32 i = 0; i < 100; ++i) ASSERT_EQ(read8(0x8000 + i), 0x77) << i;
}

// ------------------------------------------------------------------ stack frames

TEST_F(CpuSystemTest, PushaPopa) {
  const u32 values[8] = {0xa0a0a0a0, 0xc1c1c1c1, 0xd2d2d2d2, 0xb3b3b3b3,
                         0,          0xb5b5b5b5, 0x56565656, 0xd7d7d7d7};
  auto load_values = [&] {
    CpuRegisters r = regs();
    for (int i = 0; i < 8; ++i)
      if (i != kEsp) r.gpr[i] = values[i];
    set_regs(r);
  };
  boot_and_enter(kPushaOnly);
  load_values();
  run_to_halt(100);
  EXPECT_EQ(gpr(kEsp), kStackTop - 32);
  // Memory order from the lowest address: EDI ESI EBP ESP(original) EBX EDX ECX EAX.
  const int order[8] = {kEdi, kEsi, kEbp, kEsp, kEbx, kEdx, kEcx, kEax};
  for (int i = 0; i < 8; ++i) {
    const u32 want = order[i] == kEsp ? kStackTop : values[order[i]];
    EXPECT_EQ(read32(kStackTop - 32 + 4 * i), want) << "PUSHAD slot " << i;
  }

  CpuFixture::cpu.reset();
  boot_and_enter(kPusha16);
  load_values();
  run_to_halt(100);
  EXPECT_EQ(gpr(kEsp), kStackTop - 16);
  for (int i = 0; i < 8; ++i) {
    const u16 want = static_cast<u16>(order[i] == kEsp ? kStackTop : values[order[i]]);
    EXPECT_EQ(read16(kStackTop - 16 + 2 * i), want) << "PUSHAW slot " << i;
  }

  CpuFixture::cpu.reset();
  boot_and_enter(kPushaPopa);
  load_values();
  run_to_halt(100);
  const CpuRegisters r = regs();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(r.gpr[i], i == kEsp ? kStackTop : values[i]) << "register " << i << " after POPAD";
  }
}

TEST_F(CpuSystemTest, EnterLeaveWithNesting) {
  // A caller frame chain for ENTER's display copy: old EBP = 0x70000 with
  // two saved frame pointers below it.
  const u32 old_ebp = 0x70000;
  write32(old_ebp - 4, 0xaaaa0001);
  write32(old_ebp - 8, 0xaaaa0002);
  const u32 t = kStackTop;

  boot_and_enter(kEnter0);
  set_gpr(kEbp, old_ebp);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEbp), t - 4);
  EXPECT_EQ(gpr(kEsp), t - 4 - 16);
  EXPECT_EQ(read32(t - 4), old_ebp);

  CpuFixture::cpu.reset();
  boot_and_enter(kEnter1);
  set_gpr(kEbp, old_ebp);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEbp), t - 4);
  EXPECT_EQ(read32(t - 4), old_ebp);
  EXPECT_EQ(read32(t - 8), t - 4) << "level 1 pushes the new frame pointer";
  EXPECT_EQ(gpr(kEsp), t - 8 - 8);

  CpuFixture::cpu.reset();
  boot_and_enter(kEnter3);
  set_gpr(kEbp, old_ebp);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEbp), t - 4);
  EXPECT_EQ(read32(t - 4), old_ebp);
  EXPECT_EQ(read32(t - 8), 0xaaaa0001u) << "level 3 copies two outer frame pointers";
  EXPECT_EQ(read32(t - 12), 0xaaaa0002u);
  EXPECT_EQ(read32(t - 16), t - 4);
  EXPECT_EQ(gpr(kEsp), t - 16 - 12);

  CpuFixture::cpu.reset();
  boot_and_enter(kEnterLeave);
  set_gpr(kEbp, old_ebp);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEax), t - 28);
  EXPECT_EQ(gpr(kEbp), old_ebp) << "LEAVE restores the caller's EBP";
  EXPECT_EQ(gpr(kEsp), t);
}

// ------------------------------------------------------------------ misc instructions

TEST_F(CpuSystemTest, Xlat) {
  for (u32 i = 0; i < 256; ++i) write8(0x6000 + i, static_cast<u8>(i ^ 0x5a));
  boot_and_enter(kXlat);
  set_gpr(kEbx, 0x6000);
  set_gpr(kEax, 0x12345637);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEax), 0x12345600u | (0x37 ^ 0x5a));
}

// 0x67 selects 16-bit addressing ([bx+si], [bp+di], wrap at 64 KiB) and
// 0x66 16-bit operands.
TEST_F(CpuSystemTest, SixteenBitPrefixesAndAddressing) {
  struct Regs16 {
    u32 bx, si, bp, di;
  };
  for (const Regs16& in :
       {Regs16{0x6000, 0x0100, 0x6200, 0x0010}, Regs16{0xabcdfff0, 0x00000030, 0xfff8, 0x10}}) {
    SCOPED_TRACE("bx=" + hex(in.bx) + " si=" + hex(in.si));
    auto ea = [](u32 a, u32 b, u32 disp) { return (a + b + disp) & 0xffff; };
    CpuFixture::cpu.reset();
    const u32 a1 = ea(in.bx, in.si, 4), a2 = ea(in.bp, in.di, 0), a3 = ea(in.bx, 0, 0x10);
    write16(a1, 0x1111);
    write16(a2, 0x2222);
    write16(a3, 0x0303);
    boot_and_enter(kAddr16Mov);
    CpuRegisters r = regs();
    r.gpr[kEax] = 0xaaaa0000;
    r.gpr[kEcx] = 0xcccc0000;
    r.gpr[kEdx] = 0xdddd0000;
    r.gpr[kEbx] = in.bx;
    r.gpr[kEsi] = in.si;
    r.gpr[kEbp] = in.bp;
    r.gpr[kEdi] = in.di;
    set_regs(r);
    EXPECT_EQ(run_to_halt(100), CpuStop::halted);
    const CpuRegisters o = regs();
    EXPECT_EQ(o.gpr[kEax], 0xaaaa1414u) << "mov ax,[bx+si+4]; add ax,[bx+0x10]";
    EXPECT_EQ(o.gpr[kEcx], 0xcccc2222u) << "mov cx,[bp+di]";
    EXPECT_EQ(o.gpr[kEdx], 0xdddd0000u | ea(in.bx, in.si, 0x1234)) << "lea dx,[bx+si+0x1234]";
    EXPECT_EQ(o.gpr[kEdi], ea(in.bx, in.si, 0)) << "lea edi,[bx+si] zero-extends the 16-bit address";
    EXPECT_EQ(read16(ea(in.bx, in.si, 0)), 0x1414) << "mov [di],ax";
    EXPECT_EQ(read16(ea(in.bx, in.si, 0x20)), 0x5678) << "mov word [bx+si+0x20],imm16";
  }

  CpuFixture::cpu.reset();
  boot_and_enter(kOp16Add);
  CpuRegisters r = regs();
  r.gpr[kEax] = 0x1234ffff;
  r.gpr[kEcx] = 0x00010001;
  r.gpr[kEbx] = 0x77770000;
  set_regs(r);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEax), 0x12350001u);
  EXPECT_EQ(gpr(kEbx), 0x77771244u) << "mov bx / add bl keep the upper bits";
}

TEST_F(CpuSystemTest, CpuidReportsFamily4) {
  boot_and_enter(kCpuid1);
  run_to_halt(100);
  EXPECT_EQ((gpr(kEax) >> 8) & 0xf, 4u) << "CPUID.1 EAX=" << hex(gpr(kEax));
  EXPECT_EQ(gpr(kEdx) & 1, 0u) << "no FPU on a 486SX";

  CpuFixture::cpu.reset();
  boot_and_enter(kCpuid0);
  run_to_halt(100);
  EXPECT_GE(gpr(kEax), 1u) << "highest standard leaf";
  std::string vendor;
  for (Gpr g : {kEbx, kEdx, kEcx})
    for (int i = 0; i < 4; ++i) vendor += static_cast<char>((gpr(g) >> (8 * i)) & 0xff);
  EXPECT_EQ(vendor.size(), 12u);
  std::printf("CPUID vendor: %s\n", vendor.c_str());
}

TEST_F(CpuSystemTest, RdtscIsVirtualTime) {
  boot_and_enter(kRdtsc);
  clock.set_icount(0x100000005ull);  // exercises EDX
  ASSERT_EQ(run(2), CpuStop::budget);
  const u64 now = clock.now_ns();
  run_to_halt(100);
  const u64 tsc = (static_cast<u64>(gpr(kEdx)) << 32) | gpr(kEax);
  EXPECT_EQ(tsc, now) << "RDTSC sees the time of the instructions retired before it";
}

TEST_F(CpuSystemTest, RunRetiresExactlyTheBudget) {
  boot_and_enter(kCountingLoop);
  u64 total = 0;
  for (u64 n : {0u, 1u, 2u, 1001u, 17u, 4096u}) {
    const u64 before = clock.icount();
    EXPECT_EQ(run(n), CpuStop::budget);
    EXPECT_EQ(clock.icount() - before, n);
    total += n;
  }
  // inc/jmp alternate, starting with inc.
  EXPECT_EQ(gpr(kEax), (total + 1) / 2);
  EXPECT_EQ(regs().eip, total % 2 ? 0x11001u : 0x11000u);
}

TEST_F(CpuSystemTest, SelfModifyingCode) {
  boot_and_enter(kSmcLoop);
  run_to_halt(100);
  // The second pass executes the patched immediate (0x11111122).
  EXPECT_EQ(gpr(kEbx), 0x11111111u + 0x11111122u);
  EXPECT_EQ(regs().eip, 0x11016u);

  CpuFixture::cpu.reset();
  boot_and_enter(kSmcAhead);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEax), 0x99887766u) << "an instruction patched before it runs";

  // The same code page patched from the outside (a loader or DMA) between
  // two runs of the same code.
  CpuFixture::cpu.reset();
  boot_and_enter(kSmcAhead);
  run_to_halt(100);
  write32(0x1100d, 0x44332211);
  load(0x11000, {0xeb, 0x0a});  // jmp 0x1100c
  CpuFixture::cpu.enter_flat_protected_mode(0x11000);
  run_to_halt(100);
  EXPECT_EQ(gpr(kEax), 0x44332211u);
}

TEST_F(CpuSystemTest, PortIo) {
  FakeIoDevice dev300, dev80;
  dev300.read_value = 0x11223344;
  dev80.read_value = 0x55667788;
  ports.map(0x300, 4, &dev300);
  ports.map(0x80, 4, &dev80);
  boot_and_enter(kOutIn);
  EXPECT_EQ(run_to_halt(100), CpuStop::halted);
  ASSERT_EQ(dev300.accesses.size(), 3u);
  EXPECT_TRUE(dev300.accesses[0].write);
  EXPECT_EQ(dev300.accesses[0].size, 1u);
  EXPECT_EQ(dev300.accesses[0].value, 0xabu);
  EXPECT_FALSE(dev300.accesses[1].write);
  EXPECT_EQ(dev300.accesses[1].size, 4u);
  EXPECT_EQ(dev300.accesses[2].size, 2u);
  ASSERT_EQ(dev80.accesses.size(), 2u);
  EXPECT_TRUE(dev80.accesses[0].write);
  EXPECT_EQ(dev80.accesses[0].offset, 2u);
  EXPECT_EQ(dev80.accesses[0].size, 4u);
  EXPECT_EQ(dev80.accesses[0].value, 0xdeadbeefu);
  EXPECT_EQ(dev80.accesses[1].offset, 1u);
  EXPECT_EQ(dev80.accesses[1].size, 1u);
  EXPECT_EQ(gpr(kEbx) & 0xff, (0x55667788u + 1) & 0xff);
  EXPECT_EQ(gpr(kEax), 0x11223344u);
}

// ------------------------------------------------------------------ state

TEST_F(CpuSystemTest, SerializeRoundTrip) {
  boot_and_enter(kSpinWithIf);
  ASSERT_EQ(run(7), CpuStop::budget);  // leaves lazily computed flags behind
  CpuRegisters r = regs();
  r.gpr[kEsi] = 0x12345678;
  r.cr2 = 0xabc;
  set_regs(r);
  ASSERT_EQ(run(3), CpuStop::budget);
  const CpuRegisters before = regs();

  std::stringstream bin;
  {
    BinaryOut ar(bin);
    ar(CpuFixture::cpu);
  }
  CpuFixture other;
  {
    BinaryIn ar(bin);
    ar(other.cpu);
  }
  EXPECT_EQ(diff_registers(other.cpu.registers(), before), "");

  std::stringstream json;
  {
    JsonOut ar(json);
    ar(cereal::make_nvp("cpu", CpuFixture::cpu));
  }
  EXPECT_NE(json.str().find("\"eax\""), std::string::npos) << json.str().substr(0, 400);

  // The restored CPU continues exactly like the original.
  other.load(kTestAddr, kSpinWithIf);
  EXPECT_EQ(run(11), CpuStop::budget);
  EXPECT_EQ(other.cpu.run(11), CpuStop::budget);
  EXPECT_EQ(diff_registers(other.cpu.registers(), regs()), "");
}

}  // namespace
}  // namespace reel
