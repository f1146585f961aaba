// The ELF view and the multiboot loader on images built byte by byte: ELF
// and the a.out kludge, the information structure QEMU would build, and
// every refusal. The built guests are loaded too when they exist.

#include "core/multiboot_loader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/elf_image.h"
#include "core/guest_memory.h"

namespace reel {
namespace {

constexpr u32 kMagic = 0x1BADB002;

void put32(std::vector<u8>& b, size_t at, u32 v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}
void put16(std::vector<u8>& b, size_t at, u16 v) {
  b[at] = static_cast<u8>(v);
  b[at + 1] = static_cast<u8>(v >> 8);
}
u32 get32(const GuestMemory& m, u32 at) {
  u8 b[4] = {};
  EXPECT_TRUE(m.read(at, b));
  return u32{b[0]} | u32{b[1]} << 8 | u32{b[2]} << 16 | u32{b[3]} << 24;
}
u8 get8(const GuestMemory& m, u32 at) {
  u8 b[1] = {};
  EXPECT_TRUE(m.read(at, b));
  return b[0];
}
std::string get_string(const GuestMemory& m, u32 at) {
  std::string s;
  for (u8 c; (c = get8(m, at)) != 0 && s.size() < 4096; ++at) s.push_back(static_cast<char>(c));
  return s;
}

struct Seg {
  u32 paddr;
  u32 filesz;
  u32 memsz;
  u32 vaddr = ~0u;  // ~0: same as paddr
};

// ELF32 i386: header, program headers, a multiboot header with `flags`,
// then each segment's bytes (1, 2, 3, ...). Entry = first segment + 0x10.
std::vector<u8> elf(std::vector<Seg> segs, u32 flags = 0) {
  const u32 phoff = 52, mb = phoff + 32 * static_cast<u32>(segs.size());
  u32 size = mb + 12;
  for (const auto& s : segs) size += s.filesz;
  std::vector<u8> b(size, 0);
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  put16(b, 16, 2);  // ET_EXEC
  put16(b, 18, 3);  // EM_386
  put32(b, 20, 1);  // EV_CURRENT
  put32(b, 24, (segs[0].vaddr == ~0u ? segs[0].paddr : segs[0].vaddr) + 0x10);
  put32(b, 28, phoff);
  put16(b, 40, 52);  // ehsize
  put16(b, 42, 32);  // phentsize
  put16(b, 44, static_cast<u16>(segs.size()));
  u32 offset = mb + 12;
  for (size_t i = 0; i < segs.size(); ++i) {
    const size_t at = phoff + 32 * i;
    put32(b, at, 1);  // PT_LOAD
    put32(b, at + 4, offset);
    put32(b, at + 8, segs[i].vaddr == ~0u ? segs[i].paddr : segs[i].vaddr);
    put32(b, at + 12, segs[i].paddr);
    put32(b, at + 16, segs[i].filesz);
    put32(b, at + 20, segs[i].memsz);
    put32(b, at + 24, 7);
    put32(b, at + 28, 0x1000);
    for (u32 k = 0; k < segs[i].filesz; ++k) b[offset + k] = static_cast<u8>(k + 1);
    offset += segs[i].filesz;
  }
  put32(b, mb, kMagic);
  put32(b, mb + 4, flags);
  put32(b, mb + 8, 0u - kMagic - flags);
  return b;
}
std::vector<u8> elf1(u32 paddr, u32 filesz, u32 memsz, u32 flags = 0) {
  return elf({{paddr, filesz, memsz}}, flags);
}

// A flat a.out-kludge image of `size` bytes whose header sits at `at`.
std::vector<u8> aout(size_t size, size_t at, u32 header_addr, u32 load_addr, u32 load_end, u32 bss_end,
                     u32 entry) {
  std::vector<u8> img(size, 0x90);
  const u32 flags = 1u << 16;
  put32(img, at, kMagic);
  put32(img, at + 4, flags);
  put32(img, at + 8, 0u - kMagic - flags);
  put32(img, at + 12, header_addr);
  put32(img, at + 16, load_addr);
  put32(img, at + 20, load_end);
  put32(img, at + 24, bss_end);
  put32(img, at + 28, entry);
  return img;
}

TEST(ElfImage, ParsesHeaderAndProgramHeaders) {
  const auto img = elf({{0x100000, 16, 0x1000}, {0x200000, 8, 8, 0xc0200000}});
  const ElfImage e(img);
  ASSERT_TRUE(e.ok()) << e.error();
  EXPECT_EQ(e.header().machine, ElfImage::kMachine386);
  EXPECT_EQ(e.header().type, 2);
  EXPECT_EQ(e.header().phnum, 2);
  EXPECT_EQ(e.entry(), 0x100010u);
  ASSERT_EQ(e.program_headers().size(), 2u);
  ASSERT_EQ(e.load_segments().size(), 2u);
  EXPECT_EQ(e.load_segments()[1].vaddr, 0xc0200000u);
  EXPECT_EQ(e.load_segments()[1].paddr, 0x200000u);
  const auto bytes = e.segment_bytes(e.load_segments()[0]);
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[15], 16);
}

TEST(ElfImage, RefusalsExposeNothing) {
  auto refused = [](std::vector<u8> img) {
    const ElfImage e(img);
    EXPECT_FALSE(e.ok());
    EXPECT_TRUE(e.program_headers().empty());
    EXPECT_TRUE(e.load_segments().empty());
    EXPECT_EQ(e.entry(), 0u);
    EXPECT_EQ(e.error().find('\n'), std::string::npos);
    return e.error();
  };
  EXPECT_NE(refused({1, 2, 3}).find("not an ELF"), std::string::npos);
  EXPECT_NE(refused({0x7f, 'E', 'L', 'F', 1, 1}).find("header truncated"), std::string::npos);
  auto img = elf1(0x100000, 16, 16);
  img[4] = 2;
  EXPECT_NE(refused(img).find("not a 32-bit ELF"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  img[5] = 2;
  EXPECT_NE(refused(img).find("not a little-endian ELF"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put16(img, 18, 62);
  EXPECT_NE(refused(img).find("not an i386 ELF (machine 62)"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put16(img, 44, 0);
  EXPECT_NE(refused(img).find("no program headers"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put16(img, 42, 16);
  EXPECT_NE(refused(img).find("program header size 16"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put32(img, 28, 0xfffffff0);  // phoff: would wrap a 32-bit sum
  EXPECT_NE(refused(img).find("program headers lie beyond"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put32(img, 52 + 4, 0xfffffff8);  // p_offset
  EXPECT_NE(refused(img).find("segment 0 lies beyond the end of the file"), std::string::npos);
  img = elf1(0x100000, 16, 8);
  EXPECT_NE(refused(img).find("file size above its memory size"), std::string::npos);
  img = elf1(0x100000, 16, 16);
  put32(img, 52, 4);  // PT_NOTE
  EXPECT_NE(refused(img).find("no loadable segment"), std::string::npos);
}

TEST(MultibootLoader, LoadsElfSegmentsAndZeroesBss) {
  GuestMemory mem(16 << 20);
  mem.fill(0x100000, 0xcc, 0x2000);
  const auto r = load_multiboot(mem, elf1(0x100000, 16, 0x1000), "console=ttyS0", "k.elf");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x100010u);
  EXPECT_EQ(get8(mem, 0x100000), 1);
  EXPECT_EQ(get8(mem, 0x10000f), 16);
  EXPECT_EQ(get8(mem, 0x100010), 0);  // bss
  EXPECT_EQ(get8(mem, 0x100fff), 0);
  EXPECT_EQ(get8(mem, 0x101000 + 0x800), 0xcc);  // untouched past the kernel and the info block
  EXPECT_EQ(r.mbi_address, 0x101000u);           // the page after the kernel
  EXPECT_EQ(get_string(mem, get32(mem, r.mbi_address + 16)), "k.elf console=ttyS0");
}

TEST(MultibootLoader, InformationStructureMatchesQemu) {
  // QEMU 7.2 + SeaBIOS, -m 128, as the hello guest prints it
  // (tests/guests/expected/hello.txt).
  GuestMemory mem(128u << 20);
  const auto r = load_multiboot(mem, elf1(0x100000, 64, 0x3000), "hello-arg=1 two", "/path/hello.elf");
  ASSERT_TRUE(r.ok) << r.error;
  const u32 mbi = r.mbi_address;
  EXPECT_EQ(get32(mem, mbi), 0x24fu);  // MEM | BOOTDEV | CMDLINE | MODS | MMAP | LOADER_NAME
  EXPECT_EQ(get32(mem, mbi + 4), 639u);
  EXPECT_EQ(get32(mem, mbi + 8), 129920u);
  EXPECT_EQ(get32(mem, mbi + 12), 0x8000ffffu);
  EXPECT_EQ(get_string(mem, get32(mem, mbi + 16)), "/path/hello.elf hello-arg=1 two");
  EXPECT_EQ(get32(mem, mbi + 20), 0u);  // no modules
  EXPECT_EQ(get_string(mem, get32(mem, mbi + 64)), "qemu");
  struct Entry {
    u64 base, length;
    u32 type;
  };
  const std::vector<Entry> want = {{0, 0x9fc00, 1},         {0x9fc00, 0x400, 2},
                                   {0xf0000, 0x10000, 2},   {0x100000, 0x7ee0000, 1},
                                   {0x7fe0000, 0x20000, 2}, {0xfffc0000, 0x40000, 2}};
  const u32 length = get32(mem, mbi + 44), addr = get32(mem, mbi + 48);
  ASSERT_EQ(length, want.size() * 24);
  for (size_t i = 0; i < want.size(); ++i) {
    const u32 e = addr + static_cast<u32>(i) * 24;
    EXPECT_EQ(get32(mem, e), 20u);
    EXPECT_EQ(get32(mem, e + 4) | u64{get32(mem, e + 8)} << 32, want[i].base) << i;
    EXPECT_EQ(get32(mem, e + 12) | u64{get32(mem, e + 16)} << 32, want[i].length) << i;
    EXPECT_EQ(get32(mem, e + 20), want[i].type) << i;
  }
  // The block sits after the kernel's bss.
  EXPECT_GE(mbi, 0x103000u);
}

TEST(MultibootLoader, SmallRamHasNoHighMemory) {
  GuestMemory mem(1u << 20);
  const auto r = load_multiboot(mem, elf1(0x10000, 16, 16), "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(get32(mem, r.mbi_address + 8), 0u);  // mem_upper
  EXPECT_EQ(get32(mem, r.mbi_address + 44), 4u * 24);
}

TEST(MultibootLoader, VirtualEntryMovesWithItsSegment) {
  GuestMemory mem(8 << 20);
  const auto r = load_multiboot(mem, elf({{0x100000, 32, 32, 0xc0100000}}), "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x100010u);
  EXPECT_EQ(get8(mem, 0x100000), 1);
}

TEST(MultibootLoader, InformationAvoidsTheVgaHole) {
  // A kernel ending right at 0xa0000: the next page is not RAM.
  GuestMemory mem(8 << 20);
  const auto r = load_multiboot(mem, elf1(0x90000, 16, 0x10000), "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.mbi_address, 0x100000u);
}

TEST(MultibootLoader, AoutKludge) {
  GuestMemory mem(8 << 20);
  mem.fill(0x200000, 0xcc, 0x1000);
  const auto r =
      load_multiboot(mem, aout(0x200, 0, 0x200000, 0x200000, 0x200100, 0x200800, 0x200020), "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.entry, 0x200020u);
  EXPECT_EQ(get32(mem, 0x200000), kMagic);
  EXPECT_EQ(get8(mem, 0x2000ff), 0x90);
  EXPECT_EQ(get32(mem, 0x200100), 0u);  // bss
  EXPECT_EQ(get8(mem, 0x2007ff), 0);
  EXPECT_EQ(get8(mem, 0x200800), 0xcc);
  EXPECT_EQ(r.mbi_address, 0x201000u);
}

TEST(MultibootLoader, AoutKludgeWithHeaderInsideTheImage) {
  // The header 0x40 bytes into the file; load_end 0 loads to the end of
  // the file, bss_end 0 means no bss; flag 16 wins even over an ELF.
  GuestMemory mem(8 << 20);
  auto img = aout(0x300, 0x40, 0x300040, 0x300000, 0, 0, 0x300080);
  img[0] = 0x7f, img[1] = 'E', img[2] = 'L', img[3] = 'F';
  const auto r = load_multiboot(mem, img, "", "k");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(get8(mem, 0x300000), 0x7f);
  EXPECT_EQ(get32(mem, 0x300040), kMagic);
  EXPECT_EQ(get8(mem, 0x3002ff), 0x90);
  EXPECT_EQ(r.entry, 0x300080u);
}

TEST(MultibootLoader, Refusals) {
  GuestMemory mem(8 << 20);
  auto error = [&](std::vector<u8> img) {
    const auto r = load_multiboot(mem, img, "", "k");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error.find('\n'), std::string::npos);
    return r.error;
  };
  auto has = [](const std::string& s, const char* part) {
    return s.find(part) != std::string::npos
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << "'" << s << "' lacks '" << part << "'";
  };
  EXPECT_EQ(error({}), "empty kernel image");
  EXPECT_TRUE(has(error(std::vector<u8>(100, 0)), "no multiboot header in the first 8 KiB"));

  auto bad_sum = elf1(0x100000, 16, 16);
  bad_sum[52 + 32 + 8] ^= 1;
  EXPECT_TRUE(has(error(bad_sum), "no multiboot header"));

  // A valid header beyond the first 8 KiB is not found.
  std::vector<u8> late(9000, 0);
  put32(late, 8192, kMagic);
  put32(late, 8196, 0);
  put32(late, 8200, 0u - kMagic);
  EXPECT_TRUE(has(error(late), "no multiboot header"));

  EXPECT_TRUE(has(error(elf1(0x100000, 16, 16, 1u << 5)), "features reel lacks"));
  EXPECT_TRUE(has(error(elf1(0x100000, 16, 16, 1u << 15)), "unknown required bits 0x8000"));
  EXPECT_TRUE(load_multiboot(mem, elf1(0x100000, 16, 16, (1u << 17) | 7), "", "k").ok);  // optional bits pass

  EXPECT_TRUE(has(error(elf1(0x7ff000, 16, 0x10000)), "does not fit in guest RAM"));
  EXPECT_TRUE(has(error(elf1(0xfffff000, 16, 0x2000)), "does not fit in guest RAM"));
  EXPECT_TRUE(has(error(elf1(0x9f000, 16, 0x2000)), "overlaps the VGA/BIOS hole"));

  auto phoff = elf1(0x100000, 16, 16);
  put32(phoff, 28, 0x10000);
  EXPECT_TRUE(has(error(phoff), "program headers lie beyond"));
  auto seg = elf1(0x100000, 16, 16);
  put32(seg, 52 + 16, 0x100000);  // p_filesz
  EXPECT_TRUE(has(error(seg), "beyond the end of the file"));
  auto cls = elf1(0x100000, 16, 16);
  cls[4] = 2;
  EXPECT_TRUE(has(error(cls), "not a 32-bit ELF"));

  // Truncated: the ELF header cut short around a multiboot header.
  std::vector<u8> short_elf(40, 0);
  short_elf[0] = 0x7f, short_elf[1] = 'E', short_elf[2] = 'L', short_elf[3] = 'F';
  put32(short_elf, 8, kMagic);
  put32(short_elf, 16, 0u - kMagic);
  EXPECT_TRUE(has(error(short_elf), "ELF header truncated"));
  // Truncated: an ELF cut inside its segment bytes.
  auto cut = elf1(0x100000, 64, 64);
  cut.resize(cut.size() - 8);
  EXPECT_TRUE(has(error(cut), "beyond the end of the file"));
  // Truncated: the a.out kludge fields missing.
  auto aout_short = aout(0x200, 0, 0x200000, 0x200000, 0, 0, 0x200000);
  aout_short.resize(20);
  EXPECT_TRUE(has(error(aout_short), "header truncated"));

  EXPECT_TRUE(has(error(aout(0x200, 0, 0x200000, 0x200010, 0, 0, 0)), "does not match header_addr"));
  EXPECT_TRUE(has(error(aout(0x200, 0, 0x200100, 0x200000, 0, 0, 0)), "does not match header_addr"));
  EXPECT_TRUE(has(error(aout(0x200, 0, 0x200000, 0x200000, 0x1ff000, 0, 0)), "below load_addr"));
  EXPECT_TRUE(has(error(aout(0x200, 0, 0x200000, 0x200000, 0x201000, 0, 0)), "beyond the end of the file"));
  EXPECT_TRUE(has(error(aout(0x200, 0, 0x200000, 0x200000, 0x200100, 0x200080, 0)), "bss_end_addr"));
  EXPECT_TRUE(has(error(aout(0x200, 0, 0x7fff00, 0x7fff00, 0, 0x900000, 0)), "does not fit in guest RAM"));
}

TEST(MultibootLoader, RefusedKernelLeavesRamAlone) {
  GuestMemory mem(8 << 20);
  mem.fill(0x100000, 0xcc, 0x1000);
  const auto r = load_multiboot(mem, elf({{0x100000, 16, 16}, {0x7ff000, 16, 0x10000}}), "", "k");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("PT_LOAD segment 1 at 0x7ff000"), std::string::npos) << r.error;
  EXPECT_EQ(get8(mem, 0x100000), 0xcc);
}

TEST(MultibootLoader, BuiltGuests) {
  for (const char* name : {"hello", "timer", "echo", "rtc", "exceptions", "compute"}) {
    const std::string path = std::string(REEL_BINARY_DIR) + "/guests/" + name + ".elf";
    std::ifstream in(path, std::ios::binary);
    if (!in) GTEST_SKIP() << "guest not built: " << path;
    const std::vector<u8> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    GuestMemory mem(128u << 20);
    const auto r = load_multiboot(mem, image, "iterations=1", path);
    ASSERT_TRUE(r.ok) << name << ": " << r.error;
    EXPECT_GE(r.entry, 0x100000u) << name;
    EXPECT_LT(r.entry, r.mbi_address) << name;
    EXPECT_EQ(get32(mem, 0x100000), kMagic) << name;  // the header leads .text
    EXPECT_EQ(get_string(mem, get32(mem, r.mbi_address + 16)), path + " iterations=1") << name;
  }
}

}  // namespace
}  // namespace reel
