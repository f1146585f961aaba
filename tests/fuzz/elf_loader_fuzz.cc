// Arbitrary bytes as a -kernel image: the ELF view and the multiboot
// loader accept or refuse them with a one-line message, never write
// outside guest RAM and never read outside the input.

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/elf_image.h"
#include "core/guest_memory.h"
#include "core/multiboot_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> image(data, size);

  const reel::ElfImage elf(image);
  if (elf.ok() == !elf.error().empty()) __builtin_trap();
  uint64_t sum = elf.entry();
  for (const auto& ph : elf.load_segments()) {
    const auto bytes = elf.segment_bytes(ph);
    if (bytes.size() != ph.filesz) __builtin_trap();
    for (const uint8_t b : bytes) sum += b;
  }
  if (!elf.ok() && !elf.program_headers().empty()) __builtin_trap();

  // 4 MiB: small enough to be quick, large enough to hold the VGA hole and
  // some RAM above 1 MiB.
  static reel::GuestMemory memory(4u << 20);
  const reel::MultibootLoadResult r = reel::load_multiboot(memory, image, "fuzz", "fuzz.elf");
  if (!r.ok && (r.error.empty() || r.error.find('\n') != std::string::npos)) __builtin_trap();
  if (r.ok && !memory.is_ram(r.mbi_address, 88)) __builtin_trap();
  // Keeps the reads above from being optimised away.
  __asm__ volatile("" : : "r"(sum) : "memory");
  return 0;
}
