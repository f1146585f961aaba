#include "core/multiboot_loader.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/elf_image.h"
#include "core/guest_memory.h"

namespace reel {

namespace {

constexpr u32 kHeaderMagic = 0x1BADB002;
constexpr u32 kSearchLimit = 8192;
constexpr u32 kFlagPageAlign = 1u << 0;
constexpr u32 kFlagMemInfo = 1u << 1;
constexpr u32 kFlagVideo = 1u << 2;
constexpr u32 kFlagAout = 1u << 16;

// Info flags set in the structure we build (as QEMU sets them).
constexpr u32 kInfoMemory = 1u << 0;
constexpr u32 kInfoBootDevice = 1u << 1;
constexpr u32 kInfoCmdline = 1u << 2;
constexpr u32 kInfoModules = 1u << 3;
constexpr u32 kInfoMmap = 1u << 6;
constexpr u32 kInfoLoaderName = 1u << 9;

u32 le32(std::span<const u8> b, size_t at) {
  return u32{b[at]} | u32{b[at + 1]} << 8 | u32{b[at + 2]} << 16 | u32{b[at + 3]} << 24;
}

void put32(std::vector<u8>& b, size_t at, u32 v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<u8>(v >> (8 * i));
}

MultibootLoadResult fail(std::string message) {
  MultibootLoadResult r;
  r.error = std::move(message);
  return r;
}

std::string hex(u64 v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

bool place(GuestMemory& mem, u32 addr, std::span<const u8> bytes, u32 memsz, std::string& error) {
  if (!mem.is_ram(addr, memsz)) {
    error = "segment at " + hex(addr) + " (" + std::to_string(memsz) + " bytes) does not fit in guest RAM";
    return false;
  }
  mem.write(addr, bytes);
  mem.fill(addr + static_cast<u32>(bytes.size()), 0, memsz - static_cast<u32>(bytes.size()));
  return true;
}

}  // namespace

MultibootLoadResult load_multiboot(GuestMemory& memory, std::span<const u8> image, std::string_view append,
                                   std::string_view kernel_name) {
  if (image.empty()) return fail("empty kernel image");
  // The header is 32-bit aligned within the first 8 KiB.
  size_t header = image.size();
  const size_t limit = std::min<size_t>(image.size(), kSearchLimit);
  for (size_t at = 0; at + 12 <= limit; at += 4) {
    if (le32(image, at) == kHeaderMagic &&
        static_cast<u32>(le32(image, at) + le32(image, at + 4) + le32(image, at + 8)) == 0) {
      header = at;
      break;
    }
  }
  if (header == image.size()) return fail("not a multiboot kernel (no multiboot header in the first 8 KiB)");
  const u32 flags = le32(image, header + 4);
  const u32 unknown_required = flags & 0xffff & ~(kFlagPageAlign | kFlagMemInfo | kFlagVideo);
  if (unknown_required) return fail("kernel requires multiboot features reel lacks (flags " + hex(flags) + ")");

  MultibootLoadResult r;
  u32 kernel_end = 0;
  std::string error;
  if (flags & kFlagAout) {
    if (header + 32 > image.size()) return fail("multiboot header truncated");
    const u32 header_addr = le32(image, header + 12);
    const u32 load_addr = le32(image, header + 16);
    const u32 load_end = le32(image, header + 20);
    const u32 bss_end = le32(image, header + 24);
    r.entry = le32(image, header + 28);
    if (header_addr < load_addr || header_addr - load_addr > header) {
      return fail("multiboot header addresses are inconsistent (load_addr above header_addr)");
    }
    const u64 file_offset = header - (header_addr - load_addr);
    u64 load_size = load_end ? u64{load_end} - load_addr : image.size() - file_offset;
    if (load_end && load_end < load_addr) return fail("multiboot load_end_addr is below load_addr");
    if (file_offset + load_size > image.size()) return fail("multiboot load range lies beyond the end of the file");
    u64 mem_size = load_size;
    if (bss_end) {
      if (bss_end < load_addr + load_size) return fail("multiboot bss_end_addr is below the loaded image");
      mem_size = u64{bss_end} - load_addr;
    }
    if (!place(memory, load_addr, image.subspan(file_offset, load_size), static_cast<u32>(mem_size), error)) {
      return fail(error);
    }
    kernel_end = static_cast<u32>(load_addr + mem_size);
  } else {
    const ElfImage elf(image);
    if (!elf.ok()) return fail(elf.error());
    r.entry = elf.entry();
    for (const auto& s : elf.segments()) {
      if (!place(memory, s.paddr, elf.segment_bytes(s), s.memsz, error)) return fail(error);
      kernel_end = std::max(kernel_end, s.paddr + s.memsz);
    }
  }

  // The information structure, the memory map and the strings go on the
  // page after the kernel, as QEMU places them.
  const u32 ram = memory.size();
  std::string cmdline = std::string(kernel_name) + " " + std::string(append);
  const std::string loader_name = "qemu";
  struct MapEntry {
    u64 base, length;
    u32 type;
  };
  // The map QEMU's firmware reports for the same RAM size: the EBDA, the
  // BIOS area, 128 KiB at the top of RAM and the 256 KiB flash below 4 GiB
  // are reserved. reel puts nothing there, but a guest that compares
  // itself with QEMU sees the same picture.
  const u64 top = u64{ram} - 0x20000;
  const std::vector<MapEntry> map = {
      {0x0, 0x9fc00, 1},          {0x9fc00, 0x400, 2},   {0xf0000, 0x10000, 2},
      {0x100000, top - 0x100000, 1}, {top, 0x20000, 2}, {0xfffc0000, 0x40000, 2},
  };
  const u32 mbi_size = 88;
  const u32 mmap_size = static_cast<u32>(map.size() * 24);
  std::vector<u8> block(mbi_size + mmap_size + cmdline.size() + 1 + loader_name.size() + 1, 0);
  const u32 base = (kernel_end + 0xfff) & ~0xfffu;
  if (!memory.is_ram(base, block.size())) return fail("no room for the multiboot information after the kernel");
  const u32 mmap_addr = base + mbi_size;
  const u32 cmdline_addr = mmap_addr + mmap_size;
  const u32 name_addr = cmdline_addr + static_cast<u32>(cmdline.size()) + 1;
  put32(block, 0, kInfoMemory | kInfoBootDevice | kInfoCmdline | kInfoModules | kInfoMmap | kInfoLoaderName);
  put32(block, 4, 639);                              // mem_lower, KiB (below the EBDA)
  put32(block, 8, static_cast<u32>(top / 1024) - 1024);  // mem_upper, KiB from 1 MiB to the first hole
  put32(block, 12, 0x8000ffff);                  // boot_device: first hard disk, no partition
  put32(block, 16, cmdline_addr);
  put32(block, 20, 0);                           // mods_count
  put32(block, 24, 0);                           // mods_addr
  put32(block, 44, mmap_size);
  put32(block, 48, mmap_addr);
  put32(block, 64, name_addr);
  for (size_t i = 0; i < map.size(); ++i) {
    const size_t at = mbi_size + i * 24;
    put32(block, at, 20);  // size of the entry after this field
    put32(block, at + 4, static_cast<u32>(map[i].base));
    put32(block, at + 8, static_cast<u32>(map[i].base >> 32));
    put32(block, at + 12, static_cast<u32>(map[i].length));
    put32(block, at + 16, static_cast<u32>(map[i].length >> 32));
    put32(block, at + 20, map[i].type);
  }
  std::copy(cmdline.begin(), cmdline.end(), block.begin() + (cmdline_addr - base));
  std::copy(loader_name.begin(), loader_name.end(), block.begin() + (name_addr - base));
  memory.write(base, block);
  r.mbi_address = base;
  r.ok = true;
  return r;
}

}  // namespace reel
