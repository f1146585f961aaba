// Arbitrary bytes as a journal: the reader either accepts them or throws
// JournalError; it never crashes, hangs or reads out of bounds, and every
// event of a journal it accepts decodes (an exception escaping from the
// decoders below is a reader bug the fuzzer reports).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "replay/journal.h"

namespace {

void decode_all(const reel::JournalReader& r) {
  for (const reel::JournalEvent& e : r) {
    switch (e.kind) {
      case reel::EventKind::host_time:
        (void)reel::decode_host_time(e, "fuzz");
        break;
      case reel::EventKind::file_read:
        (void)reel::decode_file_read(e, "fuzz");
        break;
      case reel::EventKind::console_open:
        (void)reel::decode_console_open(e, "fuzz");
        break;
      case reel::EventKind::console_input:
        (void)reel::decode_console_input(e, "fuzz");
        break;
      case reel::EventKind::console_digest:
        (void)reel::decode_console_digest(e, "fuzz");
        break;
      case reel::EventKind::idle_advance:
        (void)reel::decode_idle_advance(e, "fuzz");
        break;
      case reel::EventKind::checkpoint:
        (void)reel::decode_checkpoint(e, "fuzz");
        break;
      case reel::EventKind::end:
        (void)reel::decode_end(e, "fuzz");
        break;
    }
    (void)reel::describe_event(e);
  }
  (void)r.end_record();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Without checksums the fuzzer reaches the header and event parsing,
  // which random bytes almost never would behind a valid XXH3.
  const reel::JournalReader::Options modes[] = {{false, true}, {true, true}, {false, false}, {true, false}};
  for (const auto& options : modes) {
    std::optional<reel::JournalReader> r;
    try {
      r = reel::JournalReader::parse(std::span<const uint8_t>(data, size), "fuzz", options);
    } catch (const reel::JournalError&) {
      continue;
    }
    decode_all(*r);
  }
  return 0;
}
