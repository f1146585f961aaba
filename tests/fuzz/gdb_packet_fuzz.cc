// Random bytes from a "debugger" into the gdb stub's packet reader, and every
// packet it yields through the argument parsers the stub uses: nothing may
// crash, a packet's payload is never longer than kMaxPacket, and a
// well-formed packet re-framed by frame_packet parses back to itself.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness/gdb_packet.h"

using namespace reel::gdb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PacketReader reader;
  std::vector<PacketEvent> events;
  // Two feeds, split in the middle, so framing across reads is covered.
  reader.feed(std::span<const uint8_t>(data, size / 2), events);
  reader.feed(std::span<const uint8_t>(data + size / 2, size - size / 2), events);
  for (const PacketEvent& e : events) {
    if (e.kind != PacketEvent::Kind::packet) continue;
    if (e.payload.size() > kMaxPacket) std::abort();
    const std::string& p = e.payload;
    const std::string_view rest = p.empty() ? std::string_view() : std::string_view(p).substr(1);
    (void)parse_address_length(rest);
    (void)parse_memory_write_hex(rest);
    (void)parse_memory_write_binary(rest);
    (void)parse_breakpoint(rest);
    (void)parse_vcont(rest);
    (void)parse_xfer_read(p);
    (void)parse_hex(rest);
    (void)parse_hex_le32(rest);
    (void)from_hex(rest);
    (void)unescape_binary(p);
    (void)run_length_decode(p);
    if (const auto x = parse_xfer_read(p)) (void)xfer_reply(p, x->offset, x->length);
    // Round trip: framing the payload (escaped) and reading it back gives
    // the same bytes once unescaped.
    if (const auto raw = unescape_binary(p)) {
      PacketReader again;
      std::vector<PacketEvent> back;
      again.feed(frame_packet(*raw, (size & 1) != 0), back);
      if (back.size() != 1 || back[0].kind != PacketEvent::Kind::packet) {
        if (raw->size() * 2 <= kMaxPacket) std::abort();
        continue;
      }
      std::string expanded = back[0].payload;
      if (size & 1) {
        const auto d = run_length_decode(expanded);
        if (!d) std::abort();
        expanded = *d;
      }
      const auto un = unescape_binary(expanded);
      if (!un || *un != *raw) std::abort();
    }
  }
  return 0;
}
