#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/types.h"

namespace reel {

class Cpu;
class GuestMemory;

struct LinuxLoadResult {
  bool ok = false;
  std::string error;  // one line, when !ok
  u32 entry = 0;      // code32_start
  u32 boot_params = 0;
  u32 gdt = 0;
  u32 initrd_address = 0;  // 0 without an initrd
};

// Where the loader puts its structures: below the EBDA, where a BIOS-less
// loader (QEMU's linuxboot option ROM too) keeps the real-mode area.
inline constexpr u32 kLinuxBootParams = 0x90000;
inline constexpr u32 kLinuxCmdline = 0x91000;
inline constexpr u32 kLinuxGdt = 0x92000;
inline constexpr u32 kLinuxKernelBase = 0x100000;

// True when `image` carries a Linux setup header (0xAA55 at 0x1FE and
// "HdrS" at 0x202); the caller then uses load_linux instead of the
// multiboot loader.
bool looks_like_bzimage(std::span<const u8> image);

// Loads a bzImage through the 32-bit boot protocol (Documentation/x86/
// boot.rst): the protected-mode part at 1 MiB, boot_params (the zero page)
// with a copy of the setup header, type_of_loader 0xFF, an e820 map of RAM,
// the command line bounded by cmdline_size, and the initrd at the highest
// 4 KiB-aligned address below initrd_addr_max and the end of RAM. Requires
// protocol 2.06+ (cmdline_size and a trustworthy initrd_addr_max) and a
// loaded-high kernel. Checks everything before writing anything; never
// writes outside RAM and never throws on bad input.
LinuxLoadResult load_linux(GuestMemory& memory, std::span<const u8> image, std::span<const u8> initrd,
                           std::string_view cmdline);

// The one-line error for a command line that asks Linux to use more RAM than
// `ram` bytes (mem=SIZE, memmap=SIZE, memmap=SIZE@START), or nothing.
std::optional<std::string> memory_request_error(std::string_view cmdline, u32 ram);

// The CPU state the 32-bit entry expects: a GDT with flat __BOOT_CS (0x10)
// and __BOOT_DS (0x18), CR0.PE with paging off, interrupts off, ESI =
// boot_params, EBP = EDI = EBX = 0, EIP = code32_start.
void enter_linux_32bit(Cpu& cpu, const LinuxLoadResult& loaded);

}  // namespace reel
