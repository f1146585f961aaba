#include "core/linux_loader.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "core/cpu/cpu.h"
#include "core/guest_memory.h"
#include "core/le_bytes.h"

namespace reel {

namespace {

// Offsets into the boot sector / boot_params (Documentation/x86/zero-page.rst).
constexpr size_t kAltMemK = 0x1e0;
constexpr size_t kE820Entries = 0x1e8;
constexpr size_t kSetupSects = 0x1f1;
constexpr size_t kSysSize = 0x1f4;
constexpr size_t kBootFlag = 0x1fe;
constexpr size_t kJump = 0x200;
constexpr size_t kHeader = 0x202;
constexpr size_t kVersion = 0x206;
constexpr size_t kTypeOfLoader = 0x210;
constexpr size_t kLoadflags = 0x211;
constexpr size_t kCode32Start = 0x214;
constexpr size_t kRamdiskImage = 0x218;
constexpr size_t kRamdiskSize = 0x21c;
constexpr size_t kHeapEndPtr = 0x224;
constexpr size_t kCmdLinePtr = 0x228;
constexpr size_t kInitrdAddrMax = 0x22c;
constexpr size_t kCmdlineSize = 0x238;
constexpr size_t kInitSize = 0x260;
constexpr size_t kE820Table = 0x2d0;
constexpr size_t kBootParamsSize = 0x1000;

constexpr u8 kLoadedHigh = 0x01;
constexpr u8 kCanUseHeap = 0x80;
constexpr u8 kLoaderUndefined = 0xff;
constexpr u16 kMinVersion = 0x0206;
constexpr u32 kPage = 0x1000;
constexpr u32 kCmdlineRoom = kLinuxGdt - kLinuxCmdline;

LinuxLoadResult fail(std::string message) {
  LinuxLoadResult r;
  r.error = std::move(message);
  return r;
}

struct E820Entry {
  u64 base;
  u64 length;
  u32 type;  // 1 RAM, 2 reserved
};

// Linux's memparse: a number (0x for hex, 0 for octal) with an optional
// K/M/G/T/P/E suffix. Empty when the text does not start with a number
// (`mem=nopentium` is an old spelling that is not a size).
std::optional<u64> parse_memsize(std::string_view text, std::string_view& rest) {
  u64 base = 10;
  size_t i = 0;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    i = 2;
  } else if (text.size() > 1 && text[0] == '0') {
    base = 8;
  }
  u64 value = 0;
  const size_t first = i;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    u64 digit;
    if (c >= '0' && c <= '9')
      digit = static_cast<u64>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = static_cast<u64>(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = static_cast<u64>(c - 'A' + 10);
    else
      break;
    if (digit >= base) break;
    if (value > (~u64{0} - digit) / base) return u64{~0ull};  // saturate: "too big" is the answer anyway
    value = value * base + digit;
  }
  if (i == first) return std::nullopt;
  // Each suffix letter is the next power of 1024 (memparse's K to E).
  unsigned shift = 0;
  if (i < text.size()) {
    constexpr std::string_view kSuffixes = "KMGTPE";
    const char upper = (text[i] >= 'a' && text[i] <= 'z') ? static_cast<char>(text[i] - 'a' + 'A') : text[i];
    if (const size_t at = kSuffixes.find(upper); at != std::string_view::npos) {
      shift = 10 * static_cast<unsigned>(at + 1);
      ++i;
    }
  }
  rest = text.substr(i);
  if (shift && value > (~u64{0} >> shift)) return u64{~0ull};
  return value << shift;
}

std::string mib(u64 bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

std::optional<std::string> memory_request_error(std::string_view cmdline, u32 ram) {
  // The e820 map reel hands over describes exactly -m of RAM. A command line
  // that tells Linux there is more (mem=, or memmap= declaring usable RAM)
  // would send it to memory that is not there, so it is refused up front.
  size_t pos = 0;
  while (pos < cmdline.size()) {
    while (pos < cmdline.size() && cmdline[pos] == ' ') ++pos;
    size_t end = cmdline.find(' ', pos);
    if (end == std::string_view::npos) end = cmdline.size();
    const std::string_view word = cmdline.substr(pos, end - pos);
    pos = end;
    if (word == "--") break;  // the rest belongs to init
    std::string_view rest;
    if (word.starts_with("mem=")) {
      const auto size = parse_memsize(word.substr(4), rest);
      if (size && *size > ram)
        return "-append " + std::string(word) + " asks for " + mib(*size) + " of RAM, -m gives " + mib(ram);
    } else if (word.starts_with("memmap=")) {
      // memmap=SIZE[@$#!]START[,...]: only '@' declares usable RAM; a bare
      // SIZE means the same as mem=SIZE.
      std::string_view list = word.substr(7);
      while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view entry = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        const auto size = parse_memsize(entry, rest);
        if (!size) continue;  // exactmap and other keywords
        u64 top = *size;
        if (!rest.empty()) {
          if (rest[0] != '@') continue;
          std::string_view tail;
          const auto start = parse_memsize(rest.substr(1), tail);
          if (!start) continue;
          top = *start > ~u64{0} - *size ? ~u64{0} : *start + *size;
        }
        if (top > ram)
          return "-append memmap=" + std::string(entry) + " declares RAM up to " + mib(top) + ", -m gives " +
                 mib(ram);
      }
    }
  }
  return std::nullopt;
}

namespace {

std::vector<E820Entry> memory_map(u32 ram) {
  constexpr u64 kEbda = 0x9fc00, kHole = 0xa0000, kBios = 0xf0000, kHigh = 0x100000;
  return {{0, kEbda, 1}, {kEbda, kHole - kEbda, 2}, {kBios, kHigh - kBios, 2}, {kHigh, u64{ram} - kHigh, 1}};
}

}  // namespace

bool looks_like_bzimage(std::span<const u8> image) {
  return image.size() >= kHeader + 4 && le16(image, kBootFlag) == 0xaa55 && image[kHeader] == 'H' &&
         image[kHeader + 1] == 'd' && image[kHeader + 2] == 'r' && image[kHeader + 3] == 'S';
}

LinuxLoadResult load_linux(GuestMemory& memory, std::span<const u8> image, std::span<const u8> initrd,
                           std::string_view cmdline) {
  if (image.size() < kHeader + 4) {
    return fail("not a Linux kernel: " + std::to_string(image.size()) +
                " bytes is too short for a setup header");
  }
  if (!looks_like_bzimage(image))
    return fail("not a Linux kernel (no 0xAA55 boot flag and \"HdrS\" setup header)");
  if (image.size() < kCmdlineSize + 4) return fail("bzImage truncated inside its setup header");
  const u16 version = le16(image, kVersion);
  if (version < kMinVersion) {
    return fail("Linux boot protocol " + std::to_string(version >> 8) + "." + std::to_string(version & 0xff) +
                " is too old (reel's 32-bit entry needs 2.06+ for cmdline_size)");
  }
  if (!(image[kLoadflags] & kLoadedHigh)) return fail("zImage kernels (not LOADED_HIGH) are not supported");
  const u32 setup_sects = image[kSetupSects] == 0 ? 4 : image[kSetupSects];
  const u64 setup_bytes = u64{setup_sects + 1} * 512;
  const size_t header_end = kHeader + image[kJump + 1];
  if (image.size() <= setup_bytes) {
    return fail("bzImage truncated: " + std::to_string(image.size()) + " bytes, but the setup alone takes " +
                std::to_string(setup_bytes));
  }
  if (header_end > setup_bytes || header_end > kBootParamsSize)
    return fail("bzImage setup header length is corrupt");

  // syssize (protocol 2.04+) is the protected-mode code's length in 16-byte
  // units: a file shorter than that was cut (a partial download, say).
  const u64 sys_bytes = u64{le32(image, kSysSize)} * 16;
  if (image.size() - setup_bytes < sys_bytes) {
    return fail("bzImage truncated: " + std::to_string(image.size()) + " bytes, but its header says " +
                std::to_string(setup_bytes + sys_bytes));
  }
  const std::span<const u8> kernel = image.subspan(setup_bytes);
  const u32 entry = le32(image, kCode32Start);
  // The decompressor works in place from the load address up to init_size
  // (protocol 2.10+); older kernels need at least their own size.
  const u64 init_size =
      version >= 0x020a ? std::max<u64>(le32(image, kInitSize), kernel.size()) : kernel.size();
  const u32 ram = memory.size();
  if (!memory.is_ram(kLinuxKernelBase, init_size)) {
    return fail("kernel needs " + std::to_string((kLinuxKernelBase + init_size + 0xfffff) >> 20) +
                " MiB of RAM to decompress, -m gives " + std::to_string(ram >> 20) + " MiB");
  }
  if (!memory.is_ram(kLinuxBootParams, kLinuxGdt + kPage - kLinuxBootParams)) {
    return fail("guest RAM (" + std::to_string(ram >> 10) + " KiB) too small for boot_params");
  }

  const u32 cmdline_limit = std::min(le32(image, kCmdlineSize), kCmdlineRoom - 1);
  if (cmdline.size() > cmdline_limit) {
    return fail("-append is " + std::to_string(cmdline.size()) + " bytes, the kernel accepts at most " +
                std::to_string(cmdline_limit));
  }

  if (auto error = memory_request_error(cmdline, ram)) return fail(std::move(*error));

  u32 initrd_address = 0;
  if (!initrd.empty()) {
    const u64 ceiling = std::min<u64>(u64{le32(image, kInitrdAddrMax)} + 1, ram);
    const u64 kernel_end = kLinuxKernelBase + init_size;
    if (initrd.size() > ceiling || ((ceiling - initrd.size()) & ~u64{kPage - 1}) < kernel_end) {
      return fail("initrd (" + std::to_string(initrd.size()) +
                  " bytes) does not fit in guest RAM between the kernel (ends " + hex(kernel_end) + ") and " +
                  hex(ceiling));
    }
    initrd_address = static_cast<u32>((ceiling - initrd.size()) & ~u64{kPage - 1});
  }

  // Everything is checked: write.
  memory.write(kLinuxKernelBase, kernel);
  if (!initrd.empty()) memory.write(initrd_address, initrd);

  std::array<u8, kBootParamsSize> bp{};
  std::copy(image.begin() + kSetupSects, image.begin() + static_cast<std::ptrdiff_t>(header_end),
            bp.begin() + kSetupSects);
  const std::span<u8> z(bp);
  z[kTypeOfLoader] = kLoaderUndefined;
  z[kLoadflags] = static_cast<u8>(z[kLoadflags] | kCanUseHeap);
  // The heap lives in the real-mode area the 16-bit setup would use; the
  // 32-bit entry does not run setup, but the field must be sane.
  put16(z, kHeapEndPtr, 0xfe00);
  put32(z, kCmdLinePtr, kLinuxCmdline);
  put32(z, kRamdiskImage, initrd_address);
  put32(z, kRamdiskSize, static_cast<u32>(initrd.size()));
  put32(z, kAltMemK, (ram - kLinuxKernelBase) >> 10);
  const std::vector<E820Entry> map = memory_map(ram);
  z[kE820Entries] = static_cast<u8>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    put64(z, kE820Table + 20 * i, map[i].base);
    put64(z, kE820Table + 20 * i + 8, map[i].length);
    put32(z, kE820Table + 20 * i + 16, map[i].type);
  }
  memory.write(kLinuxBootParams, bp);

  std::vector<u8> line(cmdline.begin(), cmdline.end());
  line.push_back(0);
  memory.write(kLinuxCmdline, line);

  // null, null, __BOOT_CS (0x10) flat code, __BOOT_DS (0x18) flat data;
  // accessed bits preset so the CPU never writes the table.
  const u64 gdt[4] = {0, 0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull};
  std::array<u8, sizeof gdt> gdt_bytes{};
  for (size_t i = 0; i < 4; ++i) put64(gdt_bytes, 8 * i, gdt[i]);
  memory.write(kLinuxGdt, gdt_bytes);

  LinuxLoadResult r;
  r.ok = true;
  r.entry = entry;
  r.boot_params = kLinuxBootParams;
  r.gdt = kLinuxGdt;
  r.initrd_address = initrd_address;
  return r;
}

void enter_linux_32bit(Cpu& cpu, const LinuxLoadResult& loaded) {
  CpuRegisters regs = cpu.registers();
  for (u32& g : regs.gpr) g = 0;
  regs.gpr[kEsi] = loaded.boot_params;
  regs.eip = loaded.entry;
  regs.eflags = 2;  // IF clear
  regs.gdtr = DescriptorTableReg{loaded.gdt, 4 * 8 - 1};
  regs.seg[static_cast<int>(SegReg::cs)] = SegmentCache{0x10, 0, 0xffffffffu, 0xc09b};
  for (SegReg s : {SegReg::es, SegReg::ss, SegReg::ds, SegReg::fs, SegReg::gs})
    regs.seg[static_cast<int>(s)] = SegmentCache{0x18, 0, 0xffffffffu, 0xc093};
  regs.cr0 = (regs.cr0 | 1u) & ~0x80000000u;
  cpu.set_registers(regs);
}

}  // namespace reel
