// The application-layer parsers of the user-mode stack (DHCP, DNS, TFTP)
// on arbitrary UDP payloads. The first byte picks the protocol (mod 3:
// 0 DHCP, 1 DNS, 2 TFTP), the rest is the payload. A refused payload must
// carry a reason; an accepted one must keep every accessor inside the
// payload, and whatever it holds must survive the builders where they
// apply (TFTP requests and OACKs rebuilt and parsed again unchanged).

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "netstack/wire/dhcp.h"
#include "netstack/wire/dns.h"
#include "netstack/wire/tftp.h"

namespace {

using namespace reel;
using namespace reel::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

// Every span an accessor hands out lies inside the payload.
void inside(std::span<const u8> all, std::span<const u8> part) {
  if (part.empty()) return;
  check(part.data() >= all.data() && part.data() + part.size() <= all.data() + all.size());
}

volatile u64 g_sink;
void touch(std::span<const u8> s) {
  u64 h = 0;
  for (u8 b : s) h = h * 31 + b;
  g_sink = h;
}
void touch(std::string_view s) { touch(std::span(reinterpret_cast<const u8*>(s.data()), s.size())); }

void fuzz_dhcp(std::span<const u8> in) {
  auto m = DhcpMessage::parse(in);
  if (!m) {
    check(m.error != DhcpError::none);
    check(!to_string(m.error).empty());
    return;
  }
  g_sink = m->op() + m->htype() + m->hlen() + m->hops() + m->xid() + m->secs() + m->flags() + m->ciaddr() +
           m->yiaddr() + m->siaddr() + m->giaddr() + m->overload() + m->broadcast_flag();
  inside(in, m->chaddr());
  inside(in, m->hardware_address());
  inside(in, m->sname());
  inside(in, m->file());
  std::size_t count = 0;
  for (DhcpOption o : *m) {
    check(o.code != dhcp_option::pad && o.code != dhcp_option::end);
    inside(in, o.value);
    touch(o.value);
    check(++count <= in.size());
  }
  if (auto t = m->message_type()) g_sink = static_cast<u8>(*t);
  g_sink = m->requested_ip().value_or(0) + m->server_id().value_or(0) + m->lease_time().value_or(0) +
           m->max_message_size().value_or(0);
  if (auto v = m->parameter_request_list()) inside(in, *v);
  if (auto v = m->client_id()) inside(in, *v);
  if (auto v = m->hostname()) touch(*v);

  // Answer it the way the server would, echoing what the client sent.
  std::array<u8, 1500> out{};
  DhcpReplyHeader h;
  h.xid = m->xid();
  h.flags = m->flags();
  h.hlen = m->hlen();
  std::copy(m->chaddr().begin(), m->chaddr().end(), h.chaddr.begin());
  DhcpReplyBuilder b(out, h);
  b.message_type(DhcpMessageType::offer).server_id(0x0a000202);
  if (auto v = m->hostname(); v && !v->empty()) b.hostname(*v);
  if (auto v = m->client_id()) b.raw_option(dhcp_option::client_id, *v);
  auto n = b.finish();
  if (n) {
    auto r = DhcpMessage::parse(std::span(out).first(*n));
    check(r.has_value());
    check(r->xid() == m->xid() && r->message_type() == DhcpMessageType::offer);
  }
}

void fuzz_dns(std::span<const u8> in) {
  auto m = DnsMessage::parse(in);
  if (!m) {
    check(m.error != DnsError::none);
    check(!to_string(m.error).empty());
    return;
  }
  g_sink = m->id() + m->flags() + m->is_response() + m->opcode() + m->authoritative() + m->truncated() +
           m->recursion_desired() + m->recursion_available() + m->rcode() + m->trailing_bytes();
  for (const DnsQuestion& q : m->questions()) {
    check(q.name.size() <= kDnsMaxNameWire);
    touch(q.name);
    g_sink = q.type + q.klass;
  }
  for (const auto* list : {&m->answers(), &m->authorities(), &m->additionals()}) {
    for (const DnsRecord& r : *list) {
      check(r.name.size() <= kDnsMaxNameWire && r.target.size() <= kDnsMaxNameWire);
      touch(r.name);
      touch(r.target);
      inside(in, r.rdata);
      touch(r.rdata);
      g_sink = r.type + r.klass + r.ttl + r.has_target();
      if (auto a = r.a()) g_sink = (*a)[0];
      if (auto a = r.aaaa()) g_sink = (*a)[15];
    }
  }
  // A question the builder accepts comes back unchanged (lower/upper case
  // kept; names with dots inside labels are not representable and refused
  // or split, so only check when the builder accepts and labels had no dot).
  if (!m->questions().empty()) {
    const DnsQuestion& q = m->questions()[0];
    std::array<u8, 512> out{};
    if (auto n = build_dns_query(out, m->id(), q.name, static_cast<DnsType>(q.type), DnsRecursion::desired)) {
      auto r = DnsMessage::parse(std::span(out).first(*n));
      check(r.has_value());
      check(r->questions().size() == 1 && r->questions()[0].type == q.type);
    }
  }
}

void fuzz_tftp(std::span<const u8> in) {
  auto p = TftpPacket::parse(in);
  if (!p) {
    check(p.error != TftpError::none);
    check(!to_string(p.error).empty());
    return;
  }
  g_sink = static_cast<u16>(p->opcode()) + static_cast<u8>(p->mode()) + p->block() + p->error_code();
  check(p->filename().size() <= kTftpMaxFilename || p->opcode() == TftpOpcode::error);
  touch(p->filename());
  touch(p->error_message());
  inside(in, p->data());
  touch(p->data());
  for (const TftpOption& o : p->options()) {
    touch(o.name);
    touch(o.value);
  }
  g_sink = p->blksize().value_or(0) + p->tsize().value_or(0) + p->timeout().value_or(0);
  if (auto b = p->blksize()) check(*b >= kTftpMinBlockSize && *b <= kTftpMaxBlockSize);

  std::vector<u8> out(in.size() + 16);
  std::optional<std::size_t> n;
  switch (p->opcode()) {
    case TftpOpcode::rrq:
    case TftpOpcode::wrq:
      n = build_tftp_request(out, p->opcode(), p->filename(), p->mode(), p->options());
      break;
    case TftpOpcode::oack:
      n = build_tftp_oack(out, p->options());
      break;
    case TftpOpcode::data:
      n = build_tftp_data(out, p->block(), p->data());
      break;
    case TftpOpcode::ack:
      n = build_tftp_ack(out, p->block());
      break;
    case TftpOpcode::error:
      n = build_tftp_error(out, static_cast<TftpErrorCode>(p->error_code()), p->error_message());
      break;
  }
  check(n.has_value());
  auto r = TftpPacket::parse(std::span(out).first(*n));
  check(r.has_value() && r->opcode() == p->opcode() && r->filename() == p->filename() &&
        r->options().size() == p->options().size() && r->block() == p->block());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Copy so reads past the payload hit ASan's redzone, not the selector.
  std::vector<u8> payload(data + 1, data + size);
  switch (data[0] % 3) {
    case 0:
      fuzz_dhcp(payload);
      break;
    case 1:
      fuzz_dns(payload);
      break;
    case 2:
      fuzz_tftp(payload);
      break;
  }
  return 0;
}
