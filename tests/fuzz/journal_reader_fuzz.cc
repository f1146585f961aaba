// Arbitrary bytes as a journal: the reader either accepts them or throws
// JournalError; it never crashes, hangs or reads out of bounds.

#include <cstddef>
#include <cstdint>
#include <span>

#include "replay/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool allow_truncated : {false, true}) {
    try {
      const reel::JournalReader r =
          reel::JournalReader::parse(std::span<const uint8_t>(data, size), "fuzz", {allow_truncated});
      for (const auto& e : r.events()) {
        if (e.kind == reel::EventKind::end) (void)reel::decode_end(e, "fuzz");
      }
    } catch (const reel::JournalError&) {
    }
  }
  return 0;
}
