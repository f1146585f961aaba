// Arbitrary bytes as an Ethernet frame, walked down through every layer
// netstack/wire/ knows (Ethernet, ARP, IPv4, ICMP, UDP, TCP): every accessor
// is touched, and whatever parses is rebuilt with the builders and parsed
// again, which must give the same fields.
//
// Input: one mode byte, then the frame. Mode bit 0 repairs the IPv4, ICMP,
// UDP and TCP checksums first, so the fuzzer reaches the layers below a
// checksum without having to guess it.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"

namespace {

using namespace reel;
using namespace reel::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

// Sums every byte so the compiler cannot drop a read.
volatile u32 g_sink;
void touch(std::span<const u8> bytes) {
  u32 s = 0;
  for (u8 b : bytes) s += b;
  g_sink = g_sink + s;
}

void repair_checksums(std::vector<u8>& f) {
  std::size_t off = 14;
  if (f.size() < off) return;
  if (load_be16(&f[12]) == 0x8100) off = 18;
  if (f.size() < off + 20 || load_be16(&f[off - 2]) != 0x0800) return;
  u8* ip = &f[off];
  const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
  if (ihl < 20 || off + ihl > f.size()) return;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, internet_checksum(std::span<const u8>(ip, ihl)));
  const std::size_t total = std::min<std::size_t>(load_be16(ip + 2), f.size() - off);
  if (total < ihl || (load_be16(ip + 6) & 0x3fff) != 0) return;
  u8* l4 = ip + ihl;
  const std::size_t len = total - ihl;
  const u32 src = load_be32(ip + 12), dst = load_be32(ip + 16);
  std::size_t sum_at = 0, sum_len = len;
  bool pseudo = true;
  switch (ip[9]) {
    case 1:
      if (len < 8) return;
      sum_at = 2;
      pseudo = false;
      break;
    case 17:
      if (len < 8) return;
      sum_at = 6;
      sum_len = load_be16(l4 + 4);
      if (sum_len < 8 || sum_len > len) return;
      break;
    case 6:
      if (len < 20) return;
      sum_at = 16;
      break;
    default:
      return;
  }
  store_be16(l4 + sum_at, 0);
  InternetChecksum c;
  if (pseudo) c.add_ipv4_pseudo_header(src, dst, ip[9], static_cast<u16>(sum_len));
  c.add(std::span<const u8>(l4, sum_len));
  store_be16(l4 + sum_at, c.checksum());
}

void walk_icmp(const Ipv4Packet& ip) {
  if (ip.is_fragment()) return;
  const auto m = IcmpMessage::parse(ip.payload());
  if (!m) {
    check(m.error != IcmpError::none);
    return;
  }
  touch(m->bytes());
  g_sink = m->type() + m->code() + m->checksum() + m->rest_of_header() + m->identifier() + m->sequence() +
           m->next_hop_mtu() + m->is_echo();
  touch(m->body());
  std::vector<u8> out(m->bytes().size());
  const auto n = build_icmp_error(out, m->type(), m->code(), m->rest_of_header(), m->body());
  check(n == out.size());
  const auto again = IcmpMessage::parse(out);
  check(again && again->type() == m->type() && again->code() == m->code() &&
        again->rest_of_header() == m->rest_of_header() && std::ranges::equal(again->body(), m->body()));
  if (m->is_echo()) {
    const auto e =
        build_icmp_echo(out, static_cast<IcmpType>(m->type()), m->identifier(), m->sequence(), m->body());
    check(e == out.size());
    check(IcmpMessage::parse(out).message.has_value());
  }
  // An error about this very packet.
  std::array<u8, 128> err{};
  const auto quote = icmp_error_quote(ip);
  check(quote.size() <= ip.header_length() + 8);
  const auto q = build_icmp_error(err, 3, 3, 0, quote);
  check(q.has_value() == (quote.size() + 8 <= err.size()));
}

void walk_udp(const Ipv4Packet& ip) {
  const auto u = UdpDatagram::parse(ip);
  if (!u) {
    check(u.error != UdpError::none);
    return;
  }
  touch(u->bytes());
  g_sink = u->source_port() + u->destination_port() + u->length() + u->checksum() + u->has_checksum();
  touch(u->payload());
  std::vector<u8> out(u->bytes().size());
  const auto n =
      build_udp(out, ip.source(), ip.destination(), u->source_port(), u->destination_port(), u->payload());
  check(n == out.size());
  const auto again = UdpDatagram::parse(out, ip.source(), ip.destination());
  check(again && again->has_checksum() && again->source_port() == u->source_port() &&
        again->destination_port() == u->destination_port() &&
        std::ranges::equal(again->payload(), u->payload()));
}

void walk_tcp(const Ipv4Packet& ip) {
  const auto t = TcpSegment::parse(ip);
  if (!t) {
    check(t.error != TcpError::none);
    return;
  }
  touch(t->bytes());
  g_sink = t->source_port() + t->destination_port() + t->sequence() + t->acknowledgment() + t->flags() +
           t->window() + t->checksum() + t->urgent_pointer() + t->sequence_length() +
           static_cast<u32>(t->header_length()) + t->has(kTcpSyn);
  touch(t->option_bytes());
  touch(t->payload());
  const TcpOptions& o = t->options();
  check(o.sack_block_count <= kTcpMaxSackBlocks);
  for (const TcpSackBlock& b : o.sacks()) g_sink = b.left + b.right;
  TcpFields f;
  f.source_port = t->source_port();
  f.destination_port = t->destination_port();
  f.sequence = t->sequence();
  f.acknowledgment = t->acknowledgment();
  f.flags = t->flags();
  f.window = t->window();
  f.urgent_pointer = t->urgent_pointer();
  f.options = o;
  f.options.unknown_count = 0;
  const auto header = tcp_header_length(f.options);
  // The builder's NOP alignment can need more room than a packed original.
  if (!header) return;
  std::vector<u8> out(*header + t->payload().size());
  const auto n = build_tcp(out, ip.source(), ip.destination(), f, t->payload());
  check(n == out.size());
  const auto again = TcpSegment::parse(out, ip.source(), ip.destination());
  check(again && again->options() == f.options && again->sequence() == f.sequence &&
        again->acknowledgment() == f.acknowledgment && again->flags() == f.flags &&
        std::ranges::equal(again->payload(), t->payload()));
}

void walk_ipv4(std::span<const u8> bytes) {
  const auto ip = Ipv4Packet::parse(bytes);
  if (!ip) {
    check(ip.error != Ipv4Error::none);
    return;
  }
  touch(ip->bytes());
  g_sink = ip->tos() + ip->dscp() + ip->ecn() + ip->total_length() + ip->identification() +
           ip->reserved_flag() + ip->dont_fragment() + ip->more_fragments() + ip->fragment_offset() +
           ip->fragment_offset_bytes() + ip->is_fragment() + ip->ttl() + ip->protocol() +
           ip->header_checksum() + ip->source() + ip->destination();
  touch(ip->options());
  touch(ip->header());
  touch(ip->payload());
  check(ip->header_length() + ip->payload().size() == ip->total_length());

  Ipv4Fields f;
  f.tos = ip->tos();
  f.identification = ip->identification();
  f.dont_fragment = ip->dont_fragment();
  f.more_fragments = ip->more_fragments();
  f.fragment_offset = ip->fragment_offset();
  f.ttl = ip->ttl();
  f.protocol = ip->protocol();
  f.source = ip->source();
  f.destination = ip->destination();
  f.options = ip->options();
  std::vector<u8> out(ip->total_length());
  const auto n = build_ipv4(out, f, ip->payload());
  check(n == out.size());
  const auto again = Ipv4Packet::parse(out);
  check(again && again->identification() == f.identification &&
        again->fragment_offset() == f.fragment_offset && again->more_fragments() == f.more_fragments &&
        again->dont_fragment() == f.dont_fragment && again->source() == f.source &&
        again->destination() == f.destination && std::ranges::equal(again->options(), ip->options()) &&
        std::ranges::equal(again->payload(), ip->payload()));

  switch (ip->protocol()) {
    case 1:
      walk_icmp(*ip);
      break;
    case 6:
      walk_tcp(*ip);
      break;
    case 17:
      walk_udp(*ip);
      break;
    default:
      break;
  }
}

void walk_arp(std::span<const u8> bytes) {
  const auto a = ArpPacket::parse(bytes);
  if (!a) {
    check(a.error != ArpError::none);
    return;
  }
  touch(a->sender_mac());
  touch(a->target_mac());
  g_sink = static_cast<u32>(a->operation()) + a->sender_ip() + a->target_ip();
  std::array<u8, kArpPacketSize> out{};
  check(build_arp(out, a->fields()) == kArpPacketSize);
  check(std::ranges::equal(out, bytes.first(kArpPacketSize)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::vector<u8> frame(data + 1, data + size);
  if (data[0] & 1) repair_checksums(frame);
  const auto eth = EthernetFrame::parse(frame);
  if (!eth) {
    check(eth.error != EthernetError::none);
    return 0;
  }
  touch(eth->destination());
  touch(eth->source());
  g_sink = eth->ether_type() + eth->vlan_tci() + eth->vlan_id() + eth->vlan_priority() + eth->is_broadcast() +
           eth->is_multicast() + eth->has_vlan_tag() + static_cast<u32>(eth->header_size());
  touch(eth->payload());

  std::vector<u8> out(kEthernetHeaderSize + eth->payload().size());
  check(build_ethernet(out, eth->destination(), eth->source(), eth->ether_type(), eth->payload()) ==
        out.size());
  const auto again = EthernetFrame::parse(out);
  check(again && again->ether_type() == eth->ether_type() && !again->has_vlan_tag() &&
        std::ranges::equal(again->payload(), eth->payload()));

  if (eth->ether_type() == static_cast<u16>(EtherType::arp)) walk_arp(eth->payload());
  if (eth->ether_type() == static_cast<u16>(EtherType::ipv4)) walk_ipv4(eth->payload());
  return 0;
}
