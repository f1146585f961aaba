// Arbitrary bytes as a -kernel image: the multiboot loader accepts or
// refuses them with a message, and never writes outside guest RAM.

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/guest_memory.h"
#include "core/multiboot_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static reel::GuestMemory memory(4u << 20);
  const reel::MultibootLoadResult r =
      reel::load_multiboot(memory, std::span<const uint8_t>(data, size), "fuzz", "fuzz.elf");
  if (!r.ok && r.error.empty()) __builtin_trap();
  return 0;
}
