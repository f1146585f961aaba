// The Linux boot protocol loader on bzImages built byte by byte: the setup
// header checks, boot_params as the kernel reads it, initrd placement, every
// refusal, and a tiny 32-bit payload that runs from the entry state and reads
// the command line through ESI, so the whole path is checked without Linux.

#include "core/linux_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/cpu_test_support.h"

namespace reel {
namespace {
using cputest::CpuFixture;

void put16(std::vector<u8>& b, size_t at, u16 v) {
  b[at] = static_cast<u8>(v);
  b[at + 1] = static_cast<u8>(v >> 8);
}
void put32(std::vector<u8>& b, size_t at, u32 v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}

// Copies the command line to 0x300000, ramdisk_image to 0x300100, then HLT.
// It reloads DS from the loader's GDT first, so a wrong GDT shows.
const std::vector<u8> kPayload = {
    0x66, 0xb8, 0x18, 0x00,              // mov ax, 0x18
    0x8e, 0xd8,                          // mov ds, ax
    0x8b, 0x9e, 0x28, 0x02, 0x00, 0x00,  // mov ebx, [esi+0x228]  cmd_line_ptr
    0xbf, 0x00, 0x00, 0x30, 0x00,        // mov edi, 0x300000
    0x8a, 0x03,                          // loop: mov al, [ebx]
    0x88, 0x07,                          // mov [edi], al
    0x43,                                // inc ebx
    0x47,                                // inc edi
    0x84, 0xc0,                          // test al, al
    0x75, 0xf6,                          // jnz loop
    0x8b, 0x86, 0x18, 0x02, 0x00, 0x00,  // mov eax, [esi+0x218]  ramdisk_image
    0xa3, 0x00, 0x01, 0x30, 0x00,        // mov [0x300100], eax
    0xf4,                                // hlt
};

std::vector<u8> bzimage(u16 version = 0x020f, u8 setup_sects = 1, u32 init_size = 0x4000,
                        std::vector<u8> payload = kPayload) {
  std::vector<u8> b((setup_sects + 1) * 512, 0);
  b[0x1f1] = setup_sects;
  put16(b, 0x1fe, 0xaa55);
  b[0x200] = 0xeb;
  b[0x201] = 0x66;  // header runs to 0x268
  b[0x202] = 'H';
  b[0x203] = 'd';
  b[0x204] = 'r';
  b[0x205] = 'S';
  put16(b, 0x206, version);
  b[0x211] = 0x01;  // LOADED_HIGH
  put32(b, 0x214, 0x100000);
  put32(b, 0x22c, 0x37ffffff);
  put32(b, 0x238, 255);
  put32(b, 0x260, init_size);
  put32(b, 0x1f4, static_cast<u32>((payload.size() + 15) / 16));  // syssize
  b.insert(b.end(), payload.begin(), payload.end());
  b.resize(b.size() + (16 - payload.size() % 16) % 16, 0);
  return b;
}

TEST(LinuxLoader, RecognisesSetupHeader) {
  EXPECT_TRUE(looks_like_bzimage(bzimage()));
  std::vector<u8> elf(1024, 0);
  elf[0] = 0x7f;
  elf[1] = 'E';
  EXPECT_FALSE(looks_like_bzimage(elf));
  EXPECT_FALSE(looks_like_bzimage({}));
}

TEST(LinuxLoader, FillsBootParams) {
  CpuFixture f(16u << 20);
  const std::vector<u8> initrd(10000, 0x5a);
  const auto r = load_linux(f.memory, bzimage(), initrd, "console=ttyS0 ip=dhcp");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x100000u);
  EXPECT_EQ(f.read8(0x100000), 0x66);  // payload at 1 MiB
  const u32 bp = r.boot_params;
  EXPECT_EQ(f.read16(bp + 0x1fe), 0xaa55);
  EXPECT_EQ(f.read32(bp + 0x202), 0x53726448u);  // "HdrS" copied
  EXPECT_EQ(f.read8(bp + 0x210), 0xff);          // type_of_loader
  EXPECT_EQ(f.read8(bp + 0x211), 0x81);          // LOADED_HIGH | CAN_USE_HEAP
  // initrd: top of RAM, 4 KiB aligned.
  EXPECT_EQ(f.read32(bp + 0x218), ((16u << 20) - 10000) & ~0xfffu);
  EXPECT_EQ(f.read32(bp + 0x21c), 10000u);
  EXPECT_EQ(f.read8(r.initrd_address), 0x5a);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.memory.data() + f.read32(bp + 0x228))),
            "console=ttyS0 ip=dhcp");
  // e820: four entries, the last one 1 MiB to the end of RAM.
  ASSERT_EQ(f.read8(bp + 0x1e8), 4);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 8), 0x9fc00u);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 16), 1u);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 20 + 16), 2u);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 60), 0x100000u);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 68), (16u << 20) - 0x100000);
  EXPECT_EQ(f.read32(bp + 0x2d0 + 76), 1u);
}

TEST(LinuxLoader, PayloadRunsFromEntryState) {
  CpuFixture f(16u << 20);
  const std::vector<u8> initrd(4096, 1);
  const auto r = load_linux(f.memory, bzimage(), initrd, "root=/dev/ram0 reel_echo=5555");
  ASSERT_TRUE(r.ok) << r.error;
  enter_linux_32bit(f.cpu, r);
  const CpuRegisters regs = f.regs();
  EXPECT_EQ(regs.gpr[kEsi], kLinuxBootParams);
  EXPECT_EQ(regs.gpr[kEbx], 0u);
  EXPECT_EQ(regs.seg[1].selector, 0x10);
  EXPECT_EQ(regs.eflags & 0x200, 0u);
  EXPECT_EQ(regs.cr0 & 0x80000001u, 1u);
  EXPECT_EQ(f.run_to_halt(), CpuStop::halted);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.memory.data() + 0x300000)),
            "root=/dev/ram0 reel_echo=5555");
  EXPECT_EQ(f.read32(0x300100), (16u << 20) - 4096);
  EXPECT_EQ(f.cpu.registers().seg[3].selector, 0x18);
}

TEST(LinuxLoader, RefusesBadImages) {
  GuestMemory mem(16u << 20);
  EXPECT_NE(load_linux(mem, std::vector<u8>(100, 0), {}, "").error.find("too short"), std::string::npos);
  EXPECT_NE(load_linux(mem, std::vector<u8>(4096, 0x90), {}, "").error.find("not a Linux kernel"),
            std::string::npos);
  std::vector<u8> truncated = bzimage(0x020f, 4);
  truncated.resize(1024);
  EXPECT_NE(load_linux(mem, truncated, {}, "").error.find("truncated"), std::string::npos);
  // Cut inside the protected-mode code, which syssize says how long it is.
  std::vector<u8> short_kernel = bzimage();
  short_kernel.resize(short_kernel.size() - 16);
  EXPECT_NE(load_linux(mem, short_kernel, {}, "").error.find("truncated"), std::string::npos);
  EXPECT_NE(load_linux(mem, bzimage(0x0204), {}, "").error.find("2.4 is too old"), std::string::npos);
  std::vector<u8> low = bzimage();
  low[0x211] = 0;
  EXPECT_NE(load_linux(mem, low, {}, "").error.find("LOADED_HIGH"), std::string::npos);
  EXPECT_NE(load_linux(mem, bzimage(), {}, std::string(300, 'x')).error.find("at most 255"),
            std::string::npos);
}

TEST(LinuxLoader, RefusesWhatDoesNotFit) {
  GuestMemory mem(8u << 20);
  // init_size past the end of RAM: -m too small for the kernel.
  const auto big = load_linux(mem, bzimage(0x020f, 1, 16u << 20), {}, "");
  EXPECT_FALSE(big.ok);
  EXPECT_NE(big.error.find("MiB of RAM"), std::string::npos) << big.error;
  // An initrd larger than the RAM above the kernel.
  const auto fat = load_linux(mem, bzimage(), std::vector<u8>(7u << 20, 0), "");
  EXPECT_FALSE(fat.ok);
  EXPECT_NE(fat.error.find("initrd"), std::string::npos) << fat.error;
  // Nothing was written for a refused load.
  EXPECT_EQ(mem.data()[0x100000], 0);
}

TEST(LinuxLoader, RefusesMemoryRequestsBeyondRam) {
  const u32 ram = 128u << 20;
  // Within -m, other types, keywords and words after "--" are fine.
  for (const char* ok : {"", "console=ttyS0 mem=128M", "mem=0x8000000", "mem=nopentium", "memmap=exactmap",
                         "memmap=64K$0x7ff0000", "memmap=1G#0x40000000", "memmap=4M@16M,512M$0x80000000",
                         "memmap=100M", "ip=dhcp -- mem=4G", "xmem=4G", "mem=131072k", "mem=0200000000"}) {
    EXPECT_EQ(memory_request_error(ok, ram), std::nullopt) << ok;
  }
  for (const char* bad : {"mem=129M", "console=ttyS0 mem=1G ip=dhcp", "mem=0x8001000", "memmap=256M",
                          "memmap=16M@120M", "memmap=4M$0x1000000,16M@0x7f00000", "mem=99999999999999999999G",
                          "mem=1g", "mem=131073k", "mem=1t", "memmap=1e@0"}) {
    const auto error = memory_request_error(bad, ram);
    ASSERT_TRUE(error.has_value()) << bad;
    EXPECT_NE(error->find("-m gives 128 MiB"), std::string::npos) << *error;
    EXPECT_EQ(error->find('\n'), std::string::npos) << *error;
  }
  // load_linux refuses before writing anything.
  GuestMemory mem(16u << 20);
  const auto r = load_linux(mem, bzimage(), {}, "console=ttyS0 mem=64M");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("mem=64M asks for 64 MiB of RAM, -m gives 16 MiB"), std::string::npos) << r.error;
  EXPECT_EQ(mem.data()[0x100000], 0);
}

// The bzImage tests/linux/build_kernel.sh left: $REEL_LINUX_BZIMAGE, else the
// first <cache>/<key>/bzImage under $REEL_LINUX_CACHE or ~/.cache/reel/linux.
std::string built_bzimage() {
  namespace fs = std::filesystem;
  if (const char* p = std::getenv("REEL_LINUX_BZIMAGE")) return fs::exists(p) ? p : "";
  fs::path cache;
  if (const char* c = std::getenv("REEL_LINUX_CACHE")) {
    cache = c;
  } else if (const char* home = std::getenv("HOME")) {
    cache = fs::path(home) / ".cache/reel/linux";
  }
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    if (fs::exists(e.path() / "bzImage")) found.push_back((e.path() / "bzImage").string());
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? "" : found.front();
}

TEST(LinuxLoader, LoadsRealKernelWhenBuilt) {
  const std::string path = built_bzimage();
  if (path.empty()) GTEST_SKIP() << "no bzImage: run tests/linux/build_kernel.sh (or set REEL_LINUX_BZIMAGE)";
  const char* cache = path.c_str();
  std::FILE* fp = std::fopen(cache, "rb");
  ASSERT_NE(fp, nullptr);
  std::vector<u8> image;
  int c;
  while ((c = std::fgetc(fp)) != EOF) image.push_back(static_cast<u8>(c));
  std::fclose(fp);
  CpuFixture f(64u << 20);
  ASSERT_TRUE(looks_like_bzimage(image));
  const auto r = load_linux(f.memory, image, std::vector<u8>(4096, 0), "console=ttyS0");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x100000u);
  EXPECT_GE(f.read16(r.boot_params + 0x206), 0x020f);  // 6.1 speaks protocol 2.15
  // The decompressor needs no paging: it moves itself above 16 MiB and
  // unpacks vmlinux (an ELF) at CONFIG_PHYSICAL_START, 16 MiB. XZ is slow on
  // a 486 (about 1e9 instructions for the whole kernel), so by default the
  // test runs 30 M instructions and checks the output has begun;
  // REEL_LINUX_BOOT_MINSTR=N runs N million and reports how far it got.
  enter_linux_32bit(f.cpu, r);
  const char* budget_env = std::getenv("REEL_LINUX_BOOT_MINSTR");
  const int slices = budget_env ? std::atoi(budget_env) : 30;
  for (int slice = 0; slice < slices; ++slice) {
    if (f.run(1'000'000) != CpuStop::budget) break;
    if (f.regs().cr0 & 0x80000000u) break;  // the kernel's startup_32 turned paging on
  }
  const CpuRegisters regs = f.regs();
  std::printf("real kernel: eip=0x%08x cr0=0x%08x after %llu instructions\n", regs.eip, regs.cr0,
              static_cast<unsigned long long>(f.clock.icount()));
  EXPECT_EQ(f.read32(0x1000000), 0x464c457fu)
      << "no ELF header at 16 MiB: the decompressor did not start its output";
}

}  // namespace
}  // namespace reel
