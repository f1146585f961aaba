#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/types.h"

namespace reel {

class GuestMemory;

struct MultibootLoadResult {
  bool ok = false;
  std::string error;  // one line, when !ok
  u32 entry = 0;
  u32 mbi_address = 0;
};

// Loads a Multiboot (v1) kernel the way QEMU's -kernel does.
//
// The header is searched for, 32-bit aligned, in the first 8 KiB. When its
// flag bit 16 is set the a.out kludge addresses decide what is loaded
// where; otherwise the image must be an i386 ELF and its PT_LOAD segments
// are loaded at their physical addresses, bss zeroed. A kernel that
// requires a feature reel does not know (header flag bits 3-15) is refused,
// as the specification asks. Every byte must land in RAM: a segment past
// the end of RAM or in the VGA/BIOS hole is refused with a message.
//
// The information structure then describes what QEMU's multiboot option
// ROM reports under SeaBIOS for the same RAM size (memory sizes, the e820
// memory map, boot device, command line "<kernel_name> <append>", boot
// loader name "qemu"), placed with its strings on the first free page after
// the kernel. Never writes outside RAM and never throws on bad input.
MultibootLoadResult load_multiboot(GuestMemory& memory, std::span<const u8> image, std::string_view append,
                                   std::string_view kernel_name);

}  // namespace reel
