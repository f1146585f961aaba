// The multiboot loader on images built byte by byte: ELF and the a.out
// kludge, the information structure, and every refusal.

#include "core/multiboot_loader.h"

#include <gtest/gtest.h>

#include "core/guest_memory.h"

namespace reel {
namespace {

void put32(std::vector<u8>& b, size_t at, u32 v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}
void put16(std::vector<u8>& b, size_t at, u16 v) {
  b[at] = static_cast<u8>(v);
  b[at + 1] = static_cast<u8>(v >> 8);
}
u32 get32(GuestMemory& m, u32 at) {
  u8 b[4];
  m.read(at, b);
  return u32{b[0]} | u32{b[1]} << 8 | u32{b[2]} << 16 | u32{b[3]} << 24;
}

// ELF32 with one PT_LOAD of `filesz` bytes (memsz adds bss) at `paddr`.
std::vector<u8> elf(u32 paddr, u32 filesz, u32 memsz, u32 flags = 0) {
  std::vector<u8> b(96 + filesz, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  put16(b, 16, 2);
  put16(b, 18, 3);
  put32(b, 24, paddr + 96);
  put32(b, 28, 52);
  put16(b, 42, 32);
  put16(b, 44, 1);
  put32(b, 52, 1);
  put32(b, 56, 96);
  put32(b, 60, paddr);
  put32(b, 64, paddr);
  put32(b, 68, filesz);
  put32(b, 72, memsz);
  put32(b, 84, 0x1BADB002);
  put32(b, 88, flags);
  put32(b, 92, 0u - 0x1BADB002u - flags);
  for (u32 i = 0; i < filesz; ++i) b[96 + i] = static_cast<u8>(i + 1);
  return b;
}

TEST(MultibootLoader, LoadsElfSegmentsAndZeroesBss) {
  GuestMemory mem(16 << 20);
  mem.fill(0x100000, 0xcc, 0x2000);
  const auto r = load_multiboot(mem, elf(0x100000, 16, 0x1000), "console=ttyS0", "k.elf");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x100060u);
  u8 b[2];
  mem.read(0x100000, b);
  EXPECT_EQ(b[0], 1);
  mem.read(0x100010, b);
  EXPECT_EQ(b[0], 0);  // bss
  // The info structure: flags, memory, command line, loader name.
  EXPECT_EQ(get32(mem, r.mbi_address), 0x24fu);
  EXPECT_EQ(get32(mem, r.mbi_address + 4), 639u);
  EXPECT_EQ(get32(mem, r.mbi_address + 8), (16u << 10) - 1024 - 128);
  const u32 cmdline = get32(mem, r.mbi_address + 16);
  std::string s(32, '\0');
  mem.read(cmdline, std::span<u8>(reinterpret_cast<u8*>(s.data()), s.size()));
  EXPECT_EQ(std::string(s.c_str()), "k.elf console=ttyS0");
  EXPECT_GE(r.mbi_address, 0x101000u);  // after the kernel
}

TEST(MultibootLoader, AoutKludge) {
  std::vector<u8> img(0x200, 0x90);
  const u32 flags = 1u << 16;
  put32(img, 0, 0x1BADB002);
  put32(img, 4, flags);
  put32(img, 8, 0u - 0x1BADB002u - flags);
  put32(img, 12, 0x200000);  // header_addr
  put32(img, 16, 0x200000);  // load_addr
  put32(img, 20, 0x200100);  // load_end_addr
  put32(img, 24, 0x200800);  // bss_end_addr
  put32(img, 28, 0x200020);  // entry
  GuestMemory mem(8 << 20);
  const auto r = load_multiboot(mem, img, "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x200020u);
  EXPECT_EQ(get32(mem, 0x200000), 0x1BADB002u);
  EXPECT_EQ(get32(mem, 0x200100), 0u);
}

TEST(MultibootLoader, Refusals) {
  GuestMemory mem(8 << 20);
  auto error = [&](std::vector<u8> img) { return load_multiboot(mem, img, "", "k").error; };
  EXPECT_EQ(error({}), "empty kernel image");
  EXPECT_NE(error(std::vector<u8>(100, 0)).find("no multiboot header"), std::string::npos);
  std::vector<u8> bad_sum = elf(0x100000, 16, 16);
  bad_sum[92] ^= 1;
  EXPECT_NE(error(bad_sum).find("no multiboot header"), std::string::npos);
  EXPECT_NE(error(elf(0x100000, 16, 16, 1u << 5)).find("features reel lacks"), std::string::npos);
  EXPECT_NE(error(elf(0x7ff000, 16, 0x10000)).find("does not fit in guest RAM"), std::string::npos);
  EXPECT_NE(error(elf(0xa0000, 16, 16)).find("does not fit"), std::string::npos);
  std::vector<u8> phoff = elf(0x100000, 16, 16);
  put32(phoff, 28, 0x10000);
  EXPECT_NE(error(phoff).find("program headers lie beyond"), std::string::npos);
  std::vector<u8> seg = elf(0x100000, 16, 16);
  put32(seg, 68, 0x100000);
  EXPECT_NE(error(seg).find("beyond the end of the file"), std::string::npos);
  std::vector<u8> cls = elf(0x100000, 16, 16);
  cls[4] = 2;
  EXPECT_NE(error(cls).find("not a 32-bit ELF"), std::string::npos);
}

}  // namespace
}  // namespace reel
