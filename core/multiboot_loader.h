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

// Loads a Multiboot (v1) kernel the way QEMU's -kernel does: ELF PT_LOAD
// segments at their physical addresses (or the a.out kludge when header
// flag 16 is set), bss zeroed, then a multiboot information structure with
// memory sizes, a memory map, the command line "<kernel> <append>" and the
// boot loader name, placed after the kernel. Never writes outside RAM.
MultibootLoadResult load_multiboot(GuestMemory& memory, std::span<const u8> image, std::string_view append,
                                   std::string_view kernel_name);

}  // namespace reel
