#include "core/multiboot_loader.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "core/elf_image.h"
#include "core/guest_memory.h"
#include "core/le_bytes.h"

namespace reel {

namespace {

constexpr u32 kHeaderMagic = 0x1BADB002;
constexpr u32 kSearchLimit = 8192;
constexpr u32 kHeaderFlagPageAlign = 1u << 0;
constexpr u32 kHeaderFlagMemInfo = 1u << 1;
constexpr u32 kHeaderFlagVideo = 1u << 2;
constexpr u32 kHeaderFlagAout = 1u << 16;
// Bits 0-15 are requirements: a loader that does not know one must refuse.
constexpr u32 kRequiredMask = 0xffff;
constexpr u32 kKnownRequired = kHeaderFlagPageAlign | kHeaderFlagMemInfo | kHeaderFlagVideo;

// The information flags QEMU sets (0x24f).
constexpr u32 kInfoMemory = 1u << 0;
constexpr u32 kInfoBootDevice = 1u << 1;
constexpr u32 kInfoCmdline = 1u << 2;
constexpr u32 kInfoModules = 1u << 3;
constexpr u32 kInfoMmap = 1u << 6;
constexpr u32 kInfoLoaderName = 1u << 9;

constexpr u32 kInfoSize = 88;                // struct multiboot_info up to vbe_*
constexpr u32 kMmapEntrySize = 24;           // size field + base + length + type
constexpr u32 kBootDeviceNone = 0x8000ffff;  // BIOS drive 0x80, no partitions
constexpr u32 kPage = 0x1000;

MultibootLoadResult fail(std::string message) {
  MultibootLoadResult r;
  r.error = std::move(message);
  return r;
}

u64 align_up(u64 v, u64 a) { return (v + a - 1) / a * a; }

struct Range {
  u64 start;
  u64 end;  // exclusive
};

struct MultibootHeader {
  size_t offset;  // in the file
  u32 flags;
};

std::optional<MultibootHeader> find_header(std::span<const u8> image) {
  const size_t limit = std::min<size_t>(image.size(), kSearchLimit);
  for (size_t at = 0; at + 12 <= limit; at += 4) {
    const u32 magic = le32(image, at), flags = le32(image, at + 4), checksum = le32(image, at + 8);
    if (magic == kHeaderMagic && static_cast<u32>(magic + flags + checksum) == 0)
      return MultibootHeader{at, flags};
  }
  return std::nullopt;
}

// Why [addr, addr+len) cannot take kernel bytes, or "" when it can.
std::string check_placement(const GuestMemory& memory, u64 addr, u64 len) {
  if (memory.is_ram(addr, len)) return {};
  const u64 end = addr + len;
  if (addr < GuestMemory::kVgaHoleEnd && end > GuestMemory::kVgaHoleStart) {
    return "overlaps the VGA/BIOS hole " + hex(GuestMemory::kVgaHoleStart) + "-" +
           hex(GuestMemory::kVgaHoleEnd - 1);
  }
  return "does not fit in guest RAM (" + std::to_string(memory.size() >> 10) + " KiB)";
}

bool place(GuestMemory& memory, const std::string& what, u64 addr, std::span<const u8> bytes, u64 memsz,
           std::vector<Range>& loaded, std::string& error) {
  const std::string why = check_placement(memory, addr, memsz);
  if (!why.empty()) {
    error = what + " at " + hex(addr) + " (" + std::to_string(memsz) + " bytes) " + why;
    return false;
  }
  const u32 base = static_cast<u32>(addr);
  memory.write(base, bytes);
  memory.fill(base + static_cast<u32>(bytes.size()), 0, static_cast<u32>(memsz - bytes.size()));
  loaded.push_back({addr, addr + memsz});
  return true;
}

// The a.out kludge: the header's own address fields say which part of the
// file goes where.
bool load_aout(GuestMemory& memory, std::span<const u8> image, const MultibootHeader& h,
               std::vector<Range>& loaded, u32& entry, std::string& error) {
  if (h.offset + 32 > image.size()) {
    error = "multiboot header truncated (the a.out kludge needs 32 bytes)";
    return false;
  }
  const u32 header_addr = le32(image, h.offset + 12);
  const u32 load_addr = le32(image, h.offset + 16);
  const u32 load_end_addr = le32(image, h.offset + 20);
  const u32 bss_end_addr = le32(image, h.offset + 24);
  entry = le32(image, h.offset + 28);
  if (load_addr > header_addr || header_addr - load_addr > h.offset) {
    error = "multiboot load_addr " + hex(load_addr) + " does not match header_addr " + hex(header_addr);
    return false;
  }
  const u64 file_offset = h.offset - (header_addr - load_addr);
  if (load_end_addr != 0 && load_end_addr < load_addr) {
    error = "multiboot load_end_addr " + hex(load_end_addr) + " is below load_addr " + hex(load_addr);
    return false;
  }
  // load_end_addr 0: text and data run to the end of the file.
  const u64 load_size = load_end_addr != 0 ? u64{load_end_addr} - load_addr : image.size() - file_offset;
  if (file_offset + load_size > image.size()) {
    error = "multiboot load range (" + std::to_string(load_size) + " bytes) lies beyond the end of the file";
    return false;
  }
  u64 mem_size = load_size;
  if (bss_end_addr != 0) {
    if (bss_end_addr < load_addr + load_size) {
      error = "multiboot bss_end_addr " + hex(bss_end_addr) + " is below the end of the loaded image";
      return false;
    }
    mem_size = u64{bss_end_addr} - load_addr;
  }
  return place(memory, "kernel image", load_addr, image.subspan(file_offset, load_size), mem_size, loaded,
               error);
}

bool load_elf(GuestMemory& memory, std::span<const u8> image, std::vector<Range>& loaded, u32& entry,
              std::string& error) {
  const ElfImage elf(image);
  if (!elf.ok()) {
    error = elf.error();
    return false;
  }
  // Every segment is checked before the first is written, so a refused
  // kernel leaves RAM as it was.
  for (size_t i = 0; i < elf.load_segments().size(); ++i) {
    const auto& seg = elf.load_segments()[i];
    const std::string why = check_placement(memory, seg.paddr, seg.memsz);
    if (!why.empty()) {
      error = "ELF PT_LOAD segment " + std::to_string(i) + " at " + hex(seg.paddr) + " (" +
              std::to_string(seg.memsz) + " bytes) " + why;
      return false;
    }
  }
  for (const auto& seg : elf.load_segments()) {
    if (!place(memory, "ELF PT_LOAD segment", seg.paddr, elf.segment_bytes(seg), seg.memsz, loaded, error))
      return false;
  }
  // Segments load at their physical addresses; an entry point given as a
  // virtual address inside a segment moves with it (as GRUB does), which
  // changes nothing for identity-linked kernels.
  entry = elf.entry();
  for (const auto& seg : elf.load_segments()) {
    if (seg.vaddr != seg.paddr && entry >= seg.vaddr && u64{entry} < u64{seg.vaddr} + seg.memsz) {
      entry = entry - seg.vaddr + seg.paddr;
      break;
    }
  }
  return true;
}

struct MapEntry {
  u64 base;
  u64 length;
  u32 type;  // 1 RAM, 2 reserved
};

// The e820 map SeaBIOS reports to QEMU's multiboot option ROM: the EBDA
// (the last KiB below 640 KiB), the BIOS at 0xf0000, 128 KiB at the top of
// RAM and the 256 KiB flash below 4 GiB are reserved. reel puts nothing
// there, but a guest that compares itself with QEMU sees the same picture.
std::vector<MapEntry> firmware_memory_map(u32 ram) {
  constexpr u64 kEbda = 0x9fc00, kBiosStart = 0xf0000, kHigh = 0x100000, kTopReserve = 0x20000;
  constexpr u64 kFlash = 0xfffc0000;
  std::vector<MapEntry> map;
  const u64 low = std::min<u64>(ram, kEbda);
  map.push_back({0, low, 1});
  map.push_back({kEbda, 0x400, 2});
  map.push_back({kBiosStart, 0x10000, 2});
  const u64 top = std::min<u64>(ram, kFlash);
  if (top >= kHigh + kTopReserve + kPage) {
    map.push_back({kHigh, top - kTopReserve - kHigh, 1});
    map.push_back({top - kTopReserve, kTopReserve, 2});
  }
  map.push_back({kFlash, 0x40000, 2});
  return map;
}

bool overlaps(const std::vector<Range>& ranges, u64 start, u64 end) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const Range& r) { return start < r.end && r.start < end; });
}

// The first page-aligned spot after the kernel where `size` bytes are RAM
// and touch no loaded byte: right after the highest segment (what QEMU
// does), else after any other segment, else at 1 MiB.
std::optional<u32> find_info_home(const GuestMemory& memory, const std::vector<Range>& loaded, u64 size) {
  std::vector<u64> candidates;
  u64 kernel_end = 0;
  for (const auto& r : loaded) kernel_end = std::max(kernel_end, r.end);
  candidates.push_back(align_up(kernel_end, kPage));
  for (const auto& r : loaded) candidates.push_back(align_up(r.end, kPage));
  candidates.push_back(0x100000);
  for (const u64 c : candidates) {
    if (memory.is_ram(c, size) && !overlaps(loaded, c, c + size)) return static_cast<u32>(c);
  }
  return std::nullopt;
}

}  // namespace

MultibootLoadResult load_multiboot(GuestMemory& memory, std::span<const u8> image, std::string_view append,
                                   std::string_view kernel_name) {
  if (image.empty()) return fail("empty kernel image");
  const std::optional<MultibootHeader> header = find_header(image);
  if (!header) return fail("not a multiboot kernel (no multiboot header in the first 8 KiB)");
  const u32 unknown = header->flags & kRequiredMask & ~kKnownRequired;
  if (unknown != 0) {
    return fail("kernel requires multiboot features reel lacks (header flags " + hex(header->flags) +
                ", unknown required bits " + hex(unknown) + ")");
  }

  MultibootLoadResult r;
  std::vector<Range> loaded;
  std::string error;
  const bool loaded_ok = (header->flags & kHeaderFlagAout)
                             ? load_aout(memory, image, *header, loaded, r.entry, error)
                             : load_elf(memory, image, loaded, r.entry, error);
  if (!loaded_ok) return fail(error);

  // The information block: the structure, the memory map, the command line
  // and the loader name, in that order.
  const std::string cmdline = std::string(kernel_name) + " " + std::string(append);
  const std::string loader_name = "qemu";
  const std::vector<MapEntry> map = firmware_memory_map(memory.size());
  const u32 mmap_size = static_cast<u32>(map.size()) * kMmapEntrySize;
  const u64 block_size = u64{kInfoSize} + mmap_size + cmdline.size() + 1 + loader_name.size() + 1;
  const std::optional<u32> home = find_info_home(memory, loaded, block_size);
  if (!home) return fail("no free RAM after the kernel for the multiboot information");

  std::vector<u8> block(block_size, 0);
  const u32 base = *home;
  const u32 mmap_addr = base + kInfoSize;
  const u32 cmdline_addr = mmap_addr + mmap_size;
  const u32 name_addr = cmdline_addr + static_cast<u32>(cmdline.size()) + 1;
  // mem_lower / mem_upper: KiB of RAM below 640 KiB and from 1 MiB up to
  // the first hole, as the first two RAM entries of the map say.
  u32 mem_lower = 0, mem_upper = 0;
  for (const auto& e : map) {
    if (e.type == 1 && e.base == 0) mem_lower = static_cast<u32>(e.length >> 10);
    if (e.type == 1 && e.base == 0x100000) mem_upper = static_cast<u32>(e.length >> 10);
  }
  put32(block, 0, kInfoMemory | kInfoBootDevice | kInfoCmdline | kInfoModules | kInfoMmap | kInfoLoaderName);
  put32(block, 4, mem_lower);
  put32(block, 8, mem_upper);
  put32(block, 12, kBootDeviceNone);
  put32(block, 16, cmdline_addr);
  put32(block, 20, 0);  // mods_count
  put32(block, 24, 0);  // mods_addr
  put32(block, 44, mmap_size);
  put32(block, 48, mmap_addr);
  put32(block, 64, name_addr);
  for (size_t i = 0; i < map.size(); ++i) {
    const size_t at = kInfoSize + i * kMmapEntrySize;
    put32(block, at, kMmapEntrySize - 4);  // size of the entry after this field
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
