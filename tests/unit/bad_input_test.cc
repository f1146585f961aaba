// Bad input never crashes: each case below gives exit status 2 and one line
// on stderr naming the problem.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "core/types.h"
#include "tests/unit/reel_process.h"

namespace reel::test {
namespace {

std::vector<std::string> hello_args(const std::string& kernel) {
  return {"-kernel", kernel, "-serial", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};
}

void expect_one_line_error(const ProcessResult& r, const std::string& needle) {
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

std::string write_file(const std::string& name, const std::vector<u8>& bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

std::vector<u8> read_bytes(const std::string& path) {
  const std::string s = read_text(path);
  return std::vector<u8>(s.begin(), s.end());
}

// A recorded journal of the hello guest, made once.
const std::string& recorded_journal() {
  static const std::string path = [] {
    const std::string kernel = scratch_dir() + "/hello-copy.elf";
    write_file("hello-copy.elf", read_bytes(guest_path("hello")));
    const std::string journal = scratch_dir() + "/hello-bad-input.reel";
    std::vector<std::string> args = {"record", "-o", journal};
    for (const auto& a : hello_args(kernel)) args.push_back(a);
    const ProcessResult r = run_reel(args);
    EXPECT_EQ(r.status, 1) << r.err;
    return journal;
  }();
  return path;
}

TEST(BadInput, MissingKernel) {
  expect_one_line_error(run_reel({"run", "-kernel", "/nonexistent/guest.elf"}), "/nonexistent/guest.elf");
}

TEST(BadInput, NotAMultibootKernel) {
  const std::string path = write_file("garbage.elf", std::vector<u8>(5000, 0x5a));
  expect_one_line_error(run_reel({"run", "-kernel", path}), "not a multiboot kernel");
}

TEST(BadInput, TruncatedElf) {
  std::vector<u8> elf = read_bytes(guest_path("hello"));
  ASSERT_GT(elf.size(), 4096u);
  elf.resize(elf.size() / 3);
  const std::string path = write_file("truncated.elf", elf);
  const ProcessResult r = run_reel({"run", "-kernel", path});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A minimal multiboot ELF whose one segment loads at `paddr`.
std::vector<u8> tiny_elf(u32 paddr) {
  std::vector<u8> b(128, 0);
  auto put16 = [&](size_t at, u16 v) { b[at] = v & 0xff, b[at + 1] = v >> 8; };
  auto put32 = [&](size_t at, u32 v) { put16(at, v & 0xffff), put16(at + 2, v >> 16); };
  b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = 1, b[5] = 1, b[6] = 1;
  put16(16, 2);  // executable
  put16(18, 3);  // i386
  put32(20, 1);
  put32(24, paddr);  // entry
  put32(28, 52);     // phoff
  put16(40, 52);
  put16(42, 32);
  put16(44, 1);
  put32(52, 1);  // PT_LOAD
  put32(56, 0);
  put32(60, paddr);
  put32(64, paddr);
  put32(68, 128);
  put32(72, 0x10000);
  put32(84, 0x1BADB002);  // multiboot header
  put32(88, 0);
  put32(92, 0u - 0x1BADB002u);
  return b;
}

TEST(BadInput, KernelBeyondRam) {
  const std::string path = write_file("high.elf", tiny_elf(0x40000000));
  expect_one_line_error(run_reel({"run", "-kernel", path}), "does not fit in guest RAM");
  const std::string hole = write_file("hole.elf", tiny_elf(0xa0000));
  expect_one_line_error(run_reel({"run", "-kernel", hole}), "overlaps the VGA/BIOS hole");
}

// A bzImage with a valid setup header (protocol 2.15) and a small payload.
std::vector<u8> tiny_bzimage() {
  std::vector<u8> b(2 * 512 + 64, 0);
  auto put16 = [&](size_t at, u16 v) {
    b[at] = static_cast<u8>(v);
    b[at + 1] = static_cast<u8>(v >> 8);
  };
  auto put32 = [&](size_t at, u32 v) {
    put16(at, static_cast<u16>(v));
    put16(at + 2, static_cast<u16>(v >> 16));
  };
  b[0x1f1] = 1;     // setup_sects
  put32(0x1f4, 4);  // syssize: 64 bytes
  put16(0x1fe, 0xaa55);
  b[0x200] = 0xeb;
  b[0x201] = 0x66;
  b[0x202] = 'H';
  b[0x203] = 'd';
  b[0x204] = 'r';
  b[0x205] = 'S';
  put16(0x206, 0x020f);
  b[0x211] = 0x01;  // LOADED_HIGH
  put32(0x214, 0x100000);
  put32(0x22c, 0x37ffffff);
  put32(0x238, 255);
  put32(0x260, 0x4000);
  // mov al, 0; out 0xf4, al: isa-debug-exit, so reel ends with status 1
  b[1024] = 0xb0;
  b[1025] = 0x00;
  b[1026] = 0xe6;
  b[1027] = 0xf4;
  return b;
}

TEST(BadInput, LinuxKernelRefusals) {
  const std::string kernel = write_file("tiny.bzImage", tiny_bzimage());
  // More RAM asked of Linux than -m gives: the e820 map would be a lie.
  expect_one_line_error(run_reel({"run", "-m", "64", "-kernel", kernel, "-append", "console=ttyS0 mem=1G"}),
                        "mem=1G asks for 1024 MiB of RAM, -m gives 64 MiB");
  expect_one_line_error(run_reel({"run", "-m", "64", "-kernel", kernel, "-append", "memmap=8M@60M"}),
                        "memmap=8M@60M declares RAM up to 68 MiB, -m gives 64 MiB");
  // A truncated image and an initrd larger than RAM.
  std::vector<u8> cut = tiny_bzimage();
  cut.resize(1024 + 16);
  expect_one_line_error(run_reel({"run", "-kernel", write_file("cut.bzImage", cut)}), "bzImage truncated");
  const std::string initrd = write_file("big.cpio", std::vector<u8>(9u << 20, 0));
  expect_one_line_error(run_reel({"run", "-m", "8", "-kernel", kernel, "-initrd", initrd}), "initrd");
  // Within -m, the same kernel runs to its debug-exit write.
  const auto ok = run_reel({"run", "-m", "64", "-kernel", kernel, "-append", "mem=64M memmap=4M@60M",
                            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"});
  EXPECT_EQ(ok.status, 1) << ok.err;
}

TEST(BadInput, BadOption) {
  expect_one_line_error(run_reel({"run", "-kernel", guest_path("hello"), "-m", "lots"}), "-m:");
  expect_one_line_error(run_reel({"run", "-kernel", guest_path("hello"), "-frobnicate"}), "-frobnicate");
  expect_one_line_error(run_reel({"record", "-kernel", guest_path("hello")}), "-o FILE");
}

TEST(BadInput, NotAJournal) {
  const std::string path = write_file("not-a-journal.reel", std::vector<u8>(100, 'x'));
  expect_one_line_error(run_reel({"replay", path}), "bad magic");
  expect_one_line_error(run_reel({"replay", scratch_dir() + "/missing.reel"}), "missing.reel");
}

TEST(BadInput, TruncatedJournal) {
  std::vector<u8> bytes = read_bytes(recorded_journal());
  ASSERT_GT(bytes.size(), 100u);
  for (size_t cut : {bytes.size() - 1, bytes.size() - 30, size_t{40}, size_t{13}}) {
    std::vector<u8> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    const std::string path = write_file("truncated.reel", part);
    const ProcessResult r = run_reel({"replay", path});
    EXPECT_EQ(r.status, 2) << "cut at " << cut << ": " << r.err;
    EXPECT_NE(r.err.find("at byte"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(BadInput, FlippedByteInJournal) {
  const std::vector<u8> bytes = read_bytes(recorded_journal());
  // Every byte after the magic and version is covered by a chunk checksum
  // or is a chunk header field: any flip is refused before anything runs.
  for (size_t at = 12; at < bytes.size(); at += 7) {
    std::vector<u8> bad = bytes;
    bad[at] ^= 0x10;
    const std::string path = write_file("flipped.reel", bad);
    const ProcessResult r = run_reel({"replay", path});
    EXPECT_EQ(r.status, 2) << "flip at " << at << ": " << r.err;
    EXPECT_NE(r.err.find("at byte"), std::string::npos) << "flip at " << at << ": " << r.err;
  }
}

TEST(BadInput, OtherFormatVersion) {
  std::vector<u8> bytes = read_bytes(recorded_journal());
  bytes[8] = 99;
  const std::string path = write_file("version.reel", bytes);
  expect_one_line_error(run_reel({"replay", path}), "format version 99 is not supported");
}

TEST(BadInput, InputFileChanged) {
  const std::string journal = recorded_journal();
  const std::string kernel = scratch_dir() + "/hello-copy.elf";
  std::vector<u8> elf = read_bytes(kernel);
  const std::vector<u8> original = elf;
  elf.push_back(0);
  write_file("hello-copy.elf", elf);
  expect_one_line_error(run_reel({"replay", journal}), "changed since the recording");
  unlink(kernel.c_str());
  expect_one_line_error(run_reel({"replay", journal}), "missing");
  write_file("hello-copy.elf", original);
  EXPECT_EQ(run_reel({"replay", journal}).status, 1);
}

}  // namespace
}  // namespace reel::test
