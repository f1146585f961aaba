#include "netstack/user_net.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "core/machine.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace reel {

namespace {

constexpr u32 kLimitedBroadcast = 0xffffffff;
constexpr std::size_t kIpOffset = wire::kEthernetHeaderSize;
constexpr std::size_t kIpPayloadOffset = kIpOffset + wire::kIpv4MinHeaderSize;
constexpr std::size_t kUdpPayloadOffset = kIpPayloadOffset + wire::kUdpHeaderSize;
// libslirp sends its ARP replies in a 64-byte buffer, zero padded.
constexpr std::size_t kArpReplyFrameSize = 64;
// libslirp's IPTOS_LOWDELAY on DHCP replies, IPDEFTTL and MAXTTL.
constexpr u8 kTosLowDelay = 0x10;
constexpr u8 kDefaultTtl = 64;
constexpr u8 kMaxTtl = 255;
// An ICMP error quotes at most 576 - 20 - 8 bytes of the datagram (libslirp's ICMP_MAXDATALEN).
constexpr std::size_t kIcmpErrorMaxQuote = 548;
constexpr std::size_t kMaxIpPayload = 1500 - wire::kIpv4MinHeaderSize;
// libslirp sends vendor class "HTTPClient" when the bootfile is an http URL
// (UEFI HTTP boot).
constexpr u8 kOptionVendorClass = 60;
constexpr u8 kOptionMessage = 56;
constexpr std::string_view kNakMessage = "requested address not available";

std::span<const u8> bytes_of(std::string_view s) {
  return std::span(reinterpret_cast<const u8*>(s.data()), s.size());
}

wire::MacAddress chaddr_mac(const wire::DhcpMessage& msg) {
  wire::MacAddress mac;
  std::copy_n(msg.chaddr().begin(), mac.size(), mac.begin());
  return mac;
}

// libslirp's icmp_flush: ICMP types an error may be about (queries and
// replies); errors about errors, and about unknown types, are never sent.
bool may_answer_with_error(u8 icmp_type) {
  return icmp_type == 0 || icmp_type == 8 || (icmp_type >= 13 && icmp_type <= 18);
}

u64 reassembly_refusals(const Ipv4Reassembly::Counters& c) {
  return c.dropped_overlap + c.dropped_too_long + c.dropped_bad_fragment + c.dropped_too_many_fragments +
         c.dropped_memory;
}

// The first IPv4 "nameserver" line of a resolv.conf, or empty.
std::string first_nameserver(std::string_view text) {
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    constexpr std::string_view kKey = "nameserver";
    if (line.substr(0, kKey.size()) != kKey || line.size() == kKey.size() || !is_space(line[kKey.size()]))
      continue;
    line.remove_prefix(kKey.size());
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    std::size_t n = 0;
    while (n < line.size() && ((line[n] >= '0' && line[n] <= '9') || line[n] == '.')) ++n;
    // Only dotted quads: an IPv6 nameserver is no use to an IPv4 NAT.
    if (n > 0 && (n == line.size() || is_space(line[n]) || line[n] == '#') &&
        std::count(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(n), '.') == 3) {
      return std::string(line.substr(0, n));
    }
  }
  return {};
}

}  // namespace

UserNet::UserNet(std::string name, Machine& machine, Config config)
    : Component(std::move(name)),
      m_machine(machine),
      m_config(std::move(config)),
      m_timer(machine.scheduler().add_timer(this->name() + ".timer", [this] { on_timer(); })),
      m_tcp(std::make_unique<TcpNat>(*this)),
      m_udp(std::make_unique<UdpNat>(*this)),
      m_ping(std::make_unique<PingNat>(*this)),
      m_tftp(std::make_unique<TftpServer>(*this)),
      m_forwards(*this, PortForwards::Hooks{
                            [this](SocketId s, const SocketAddress& peer, u32 ip, u16 port) {
                              m_tcp->forward_accepted(s, peer, ip, port);
                            },
                            [this](SocketId s, u32 ip, u16 port) { m_udp->add_forward(s, ip, port); },
                            [this](SocketId s) { m_udp->remove_forward(s); },
                        }) {}

UserNet::~UserNet() = default;

std::string UserNet::describe_port() const {
  return "net=" + format_ipv4(m_config.network) + ", restricted=" + (m_config.restrict ? "y" : "n");
}

wire::MacAddress UserNet::mac_for(u32 address) {
  return {0x52,
          0x55,
          static_cast<u8>(address >> 24),
          static_cast<u8>(address >> 16),
          static_cast<u8>(address >> 8),
          static_cast<u8>(address)};
}

// ------------------------------------------------------------------ ARP --

std::optional<wire::MacAddress> UserNet::arp_lookup(u32 ip) const {
  const wire::MacAddress* mac = arp_find(ip);
  if (!mac) return std::nullopt;
  return *mac;
}

const wire::MacAddress* UserNet::arp_find(u32 ip) const {
  if (ip == kLimitedBroadcast || ip == broadcast_address()) return &wire::kBroadcastMac;
  if (ip == 0) return nullptr;
  for (const ArpEntry& e : m_arp) {
    if (e.ip == ip) return &e.mac;
  }
  return nullptr;
}

void UserNet::arp_learn(u32 ip, const wire::MacAddress& mac) {
  // libslirp's arp_table_add: broadcast addresses are never entries.
  if (ip == 0 || ip == kLimitedBroadcast || ip == broadcast_address()) return;
  if (is_local(ip)) return;       // a guest claiming the gateway's address does not get its replies
  if ((mac[0] & 1) != 0) return;  // a multicast MAC is nobody's address
  for (ArpEntry& e : m_arp) {
    if (e.ip == ip) {
      e.mac = mac;
      return;
    }
  }
  m_arp[m_arp_next] = ArpEntry{ip, mac};
  m_arp_next = static_cast<u32>((m_arp_next + 1) % kArpTableSize);
}

void UserNet::arp_input(const wire::MacAddress& frame_source, std::span<const u8> payload) {
  const auto arp = wire::ArpPacket::parse(payload);
  if (!arp) {
    ++m_counters.dropped_bad_arp;
    return;
  }
  if (arp->operation() == wire::ArpOperation::reply) {
    arp_learn(arp->sender_ip(), arp->sender_mac());
    return;
  }
  if (arp->target_ip() == arp->sender_ip()) {
    // Gratuitous ARP: an announcement, nothing to answer.
    ++m_counters.arp_gratuitous;
    arp_learn(arp->sender_ip(), arp->sender_mac());
    return;
  }
  // libslirp answers for its own addresses only (and guestfwd ones, later),
  // so a guest probing for a free address (sender 0.0.0.0) hears nothing
  // about the others.
  if (!is_local(arp->target_ip())) {
    ++m_counters.arp_ignored;
    return;
  }
  arp_learn(arp->sender_ip(), arp->sender_mac());
  std::array<u8, kArpReplyFrameSize> frame{};
  wire::ArpFields reply;
  reply.operation = wire::ArpOperation::reply;
  reply.sender_mac = mac_for(arp->target_ip());
  reply.sender_ip = arp->target_ip();
  reply.target_mac = arp->sender_mac();
  reply.target_ip = arp->sender_ip();
  const auto n = wire::build_arp(std::span(frame).subspan(wire::kEthernetHeaderSize), reply);
  if (!n) return;
  wire::build_ethernet(frame, frame_source, reply.sender_mac, static_cast<u16>(wire::EtherType::arp),
                       std::span(frame).subspan(wire::kEthernetHeaderSize, *n));
  ++m_counters.arp_replies;
  ++m_counters.frames_out;
  transmit(frame);
}

// ---------------------------------------------------------------- input --

void UserNet::receive_frame(std::span<const u8> frame) {
  ++m_counters.frames_in;
  const auto eth = wire::EthernetFrame::parse(frame);
  if (!eth) {
    ++m_counters.dropped_bad_ethernet;
    return;
  }
  // Unlike libslirp, which takes every frame on its hub, the gateway only
  // takes what is addressed to it: on a VLAN with two guests, their frames
  // to each other are not the gateway's business.
  const wire::MacAddress dst = eth->destination();
  if (!eth->is_broadcast() && dst != mac_for(m_config.host) && dst != mac_for(m_config.dns)) {
    ++m_counters.dropped_not_for_us;
    return;
  }
  if (eth->has_vlan_tag()) {
    ++m_counters.dropped_vlan_tagged;
    return;
  }
  switch (static_cast<wire::EtherType>(eth->ether_type())) {
    case wire::EtherType::arp:
      arp_input(eth->source(), eth->payload());
      return;
    case wire::EtherType::ipv4:
      ipv4_input(eth->source(), eth->payload());
      return;
    default:
      ++m_counters.dropped_ethertype;
      return;
  }
}

void UserNet::ipv4_input(const wire::MacAddress& frame_source, std::span<const u8> payload) {
  const auto ip = wire::Ipv4Packet::parse(payload);
  if (!ip) {
    if (ip.error == wire::Ipv4Error::bad_checksum)
      ++m_counters.dropped_ipv4_checksum;
    else
      ++m_counters.dropped_ipv4_malformed;
    return;
  }
  // The replies below go back to the sender; knowing its MAC from its own
  // frame saves an ARP round trip (libslirp learns only from ARP and DHCP).
  arp_learn(ip->source(), frame_source);
  if (ip->ttl() == 0) {
    ++m_counters.dropped_ttl_expired;
    send_icmp_error(*ip, static_cast<u8>(wire::IcmpType::time_exceeded),
                    static_cast<u8>(wire::IcmpTimeExceededCode::ttl));
    return;
  }
  if (ip->is_fragment()) {
    const u64 refused_before = reassembly_refusals(m_reassembly.counters());
    auto whole = m_reassembly.add(*ip, now_ns());
    if (const auto next = m_reassembly.next_deadline()) wake_at(*next);
    if (!whole) {
      // Waiting for more pieces is not a drop; a refusal is.
      if (reassembly_refusals(m_reassembly.counters()) != refused_before) ++m_counters.dropped_ipv4_fragment;
      return;
    }
    const auto reassembled = wire::Ipv4Packet::parse(*whole);
    if (!reassembled) {
      ++m_counters.dropped_ipv4_malformed;
      return;
    }
    ipv4_dispatch(*reassembled);
    return;
  }
  ipv4_dispatch(*ip);
}

void UserNet::ipv4_dispatch(const wire::Ipv4Packet& ip) {
  switch (ip.protocol()) {
    case static_cast<u8>(wire::IpProtocol::icmp):
      icmp_input(ip);
      return;
    case static_cast<u8>(wire::IpProtocol::udp):
      udp_input(ip);
      return;
    case static_cast<u8>(wire::IpProtocol::tcp):
      // restrict=on still carries forwarded connections; the NAT asks
      // host_target() before it opens anything for the guest.
      m_tcp->guest_segment(ip);
      return;
    default:
      ++m_counters.dropped_ip_protocol;
      return;
  }
}

// ----------------------------------------------------------------- ICMP --

void UserNet::icmp_input(const wire::Ipv4Packet& ip) {
  const auto icmp = wire::IcmpMessage::parse(ip.payload());
  if (!icmp) {
    ++m_counters.dropped_bad_icmp;
    return;
  }
  if (icmp->type() != static_cast<u8>(wire::IcmpType::echo_request)) {
    ++m_counters.dropped_icmp_ignored;
    return;
  }
  if (!is_local(ip.destination())) {
    if (m_config.restrict)
      ++m_counters.dropped_restricted;
    else
      m_ping->guest_echo(ip, *icmp);
    return;
  }
  // libslirp's icmp_reflect: same TOS and DF, options dropped, TTL 255.
  std::vector<u8> reply(ip.payload().size());
  const auto n = wire::build_icmp_echo(reply, wire::IcmpType::echo_reply, icmp->identifier(),
                                       icmp->sequence(), icmp->body());
  if (!n) return;
  if (arp_lookup(ip.source()) == std::nullopt) {
    ++m_counters.dropped_unroutable;  // from 0.0.0.0: nobody to answer
    return;
  }
  ++m_counters.icmp_echo_replies;
  send_to_guest(GatewayDatagram{ip.destination(), ip.source(), static_cast<u8>(wire::IpProtocol::icmp),
                                ip.tos(), kMaxTtl, ip.dont_fragment()},
                std::span<const u8>(reply).first(*n));
}

void UserNet::send_icmp_error(const wire::Ipv4Packet& original, u8 type, u8 code) {
  send_icmp_error(original.bytes(), type, code);
}

void UserNet::send_icmp_error(std::span<const u8> original, u8 type, u8 code) {
  // Works from raw bytes: the quote of a datagram that never reassembled
  // is a header whose length field promises more than is there.
  if (original.size() < wire::kIpv4MinHeaderSize) return;
  const std::size_t ihl = std::size_t{original[0] & 0x0fu} * 4;
  if (ihl < wire::kIpv4MinHeaderSize || ihl > original.size()) return;
  const u32 source =
      (u32{original[12]} << 24) | (u32{original[13]} << 16) | (u32{original[14]} << 8) | original[15];
  const u16 fragment_offset = static_cast<u16>(((original[6] & 0x1f) << 8) | original[7]);
  const u8 protocol = original[9];
  const u8 tos = original[1];
  // libslirp's icmp_send_error rules: only about first fragments, never
  // to a source that is not a host, never about an ICMP error.
  if (fragment_offset != 0) return;
  if ((source & 0x0fffffff) == 0 || source == kLimitedBroadcast || source == broadcast_address() ||
      (source >> 28) == 0xe) {
    return;
  }
  if (protocol == static_cast<u8>(wire::IpProtocol::icmp)) {
    if (original.size() == ihl) return;
    if (!may_answer_with_error(original[ihl])) return;
  }
  std::array<u8, wire::kEthernetHeaderSize + 1500> frame;
  const std::span<const u8> quote = original.first(std::min(original.size(), kIcmpErrorMaxQuote));
  const auto n = wire::build_icmp_error(std::span(frame).subspan(kIpPayloadOffset), type, code, 0, quote);
  if (!n) return;
  ++m_counters.icmp_errors_sent;
  send_ipv4(frame,
            IpOut{m_config.host, source, static_cast<u8>(wire::IpProtocol::icmp),
                  static_cast<u8>((tos & 0x1e) | 0xc0), kMaxTtl, false},
            *n);
}

// ------------------------------------------------------------------ UDP --

void UserNet::udp_input(const wire::Ipv4Packet& ip) {
  const auto udp = wire::UdpDatagram::parse(ip);
  if (!udp) {
    ++m_counters.dropped_bad_udp;
    return;
  }
  const u16 port = udp->destination_port();
  if (port == wire::kDhcpServerPort &&
      (ip.destination() == m_config.host || ip.destination() == kLimitedBroadcast)) {
    dhcp_input(*udp);
    return;
  }
  if (port == 69 && ip.destination() == m_config.host) {
    m_tftp->guest_datagram(ip, *udp);  // answers with an error when there is no tftp= root
    return;
  }
  // The NAT applies restrict=on through host_target(), so that DNS and the
  // replies of forwarded UDP flows still pass.
  m_udp->guest_datagram(ip, *udp);
}

// ----------------------------------------------------------------- DHCP --

std::optional<std::size_t> UserNet::slot_of(const wire::MacAddress& mac) const {
  for (std::size_t i = 0; i < kLeaseCount; ++i) {
    if (m_leases[i].allocated && !m_leases[i].declined && m_leases[i].mac == mac) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> UserNet::new_slot(const wire::MacAddress& mac) const {
  // The client's own lease first (libslirp would hand out a lower free slot
  // before finding it), then the lowest free one.
  if (auto s = slot_of(mac)) return s;
  for (std::size_t i = 0; i < kLeaseCount; ++i) {
    if (!m_leases[i].allocated) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> UserNet::requested_slot(u32 address, const wire::MacAddress& mac) const {
  if (address < m_config.dhcp_start || address - m_config.dhcp_start >= kLeaseCount) return std::nullopt;
  const std::size_t i = address - m_config.dhcp_start;
  const Lease& l = m_leases[i];
  if (l.declined) return std::nullopt;
  if (l.allocated && l.mac != mac) return std::nullopt;
  // A client that holds another address asks for this one: only one lease
  // per MAC, so two NICs never share and one NIC never hoards.
  if (auto own = slot_of(mac); own && *own != i) return std::nullopt;
  return i;
}

void UserNet::dhcp_input(const wire::UdpDatagram& udp) {
  const auto parsed = wire::DhcpMessage::parse(udp.payload());
  if (!parsed) {
    ++m_counters.dropped_dhcp_malformed;
    return;
  }
  const wire::DhcpMessage& msg = *parsed;
  if (msg.op() != 1 || msg.htype() != 1 || msg.hlen() != 6) {
    ++m_counters.dropped_dhcp_not_request;
    return;
  }
  const wire::MacAddress mac = chaddr_mac(msg);
  // No message type: a BOOTP client, answered as a REQUEST as libslirp does.
  const auto type = msg.message_type().value_or(wire::DhcpMessageType::request);
  u32 requested = msg.requested_ip().value_or(0);

  switch (type) {
    case wire::DhcpMessageType::discover: {
      std::optional<std::size_t> slot;
      if (requested != 0) slot = requested_slot(requested, mac);
      if (!slot) slot = new_slot(mac);
      if (!slot) {
        ++m_counters.dropped_dhcp_no_address;
        return;
      }
      m_leases[*slot].allocated = true;
      m_leases[*slot].mac = mac;
      ++m_counters.dhcp_offers;
      send_dhcp_reply(msg, DhcpReply::offer, slot_address(*slot));
      return;
    }
    case wire::DhcpMessageType::request: {
      if (auto server = msg.server_id(); server && *server != m_config.host) {
        // The client took another server's offer (RFC 2131 4.3.2).
        ++m_counters.dropped_dhcp_other_server;
        return;
      }
      if (requested == 0) requested = msg.ciaddr();  // renewing (libslirp's dhcp_decode)
      std::optional<std::size_t> slot;
      if (requested != 0) {
        slot = requested_slot(requested, mac);
        if (!slot) {
          ++m_counters.dhcp_naks;
          send_dhcp_reply(msg, DhcpReply::nak, 0);
          return;
        }
      } else {
        // Never offered: behave as if it had been (libslirp: a Windows fix,
        // it remembers its address).
        slot = new_slot(mac);
        if (!slot) {
          ++m_counters.dropped_dhcp_no_address;
          return;
        }
      }
      m_leases[*slot].allocated = true;
      m_leases[*slot].mac = mac;
      ++m_counters.dhcp_acks;
      send_dhcp_reply(msg, DhcpReply::ack, slot_address(*slot));
      return;
    }
    case wire::DhcpMessageType::inform:
      // The client configured its address itself and wants the rest
      // (RFC 2131 3.4). libslirp ignores INFORM.
      ++m_counters.dhcp_informs;
      send_dhcp_reply(msg, DhcpReply::inform_ack, 0);
      return;
    case wire::DhcpMessageType::release:
      // libslirp ignores RELEASE and keeps the address for the MAC.
      if (auto slot = slot_of(mac); slot && slot_address(*slot) == msg.ciaddr()) {
        m_leases[*slot] = Lease{};
        ++m_counters.dhcp_releases;
      } else {
        ++m_counters.dropped_dhcp_bad_release;
      }
      return;
    case wire::DhcpMessageType::decline: {
      // The client found its offered address in use on the wire: never hand
      // it out again (RFC 2131 4.3.3). libslirp ignores DECLINE.
      ++m_counters.dhcp_declines;
      const u32 address = requested;
      if (address >= m_config.dhcp_start && address - m_config.dhcp_start < kLeaseCount) {
        Lease& l = m_leases[address - m_config.dhcp_start];
        if (!l.allocated || l.mac == mac) l = Lease{true, true, {}};
      }
      return;
    }
    default:
      ++m_counters.dropped_dhcp_unknown_type;
      return;
  }
}

void UserNet::send_dhcp_reply(const wire::DhcpMessage& request, DhcpReply kind, u32 yiaddr) {
  std::array<u8, kUdpPayloadOffset + kDhcpReplySize> frame{};
  wire::DhcpReplyHeader h;
  h.xid = request.xid();
  std::copy(request.chaddr().begin(), request.chaddr().end(), h.chaddr.begin());
  // libslirp: flags 0, siaddr the gateway in OFFER and ACK, file the bootfile.
  const bool positive = kind != DhcpReply::nak;
  h.yiaddr = yiaddr;
  if (positive) h.siaddr = m_config.host;
  if (kind == DhcpReply::inform_ack) h.ciaddr = request.ciaddr();
  if (positive && m_config.bootfile.size() <= 127) h.file = m_config.bootfile;
  const std::span<u8> payload = std::span(frame).subspan(kUdpPayloadOffset);
  wire::DhcpReplyBuilder b(payload, h);

  if (!positive) {
    // libslirp's NAK has the message type and text only; RFC 2131 table 3
    // requires the server identifier too.
    b.message_type(wire::DhcpMessageType::nak)
        .server_id(m_config.host)
        .raw_option(kOptionMessage, bytes_of(kNakMessage));
  } else {
    // libslirp's order: 53, 54, 1, 3, 6, 51, 12, 15, 66, 119 (and 60).
    b.message_type(kind == DhcpReply::offer ? wire::DhcpMessageType::offer : wire::DhcpMessageType::ack)
        .server_id(m_config.host)
        .subnet_mask(m_config.netmask);
    if (!m_config.restrict) {
      const u32 dns[] = {m_config.dns};
      b.router(m_config.host).dns_servers(dns);
    }
    // RFC 2131 4.3.5: no lease time in the answer to an INFORM.
    if (kind != DhcpReply::inform_ack) b.lease_time(kLeaseSeconds);
    if (!m_config.hostname.empty()) b.hostname(m_config.hostname);
    if (!m_config.domainname.empty()) b.domain_name(m_config.domainname);
    if (!m_config.tftp_server_name.empty()) b.tftp_server_name(m_config.tftp_server_name);
    if (!m_config.dns_search.empty()) {
      std::vector<std::string_view> names(m_config.dns_search.begin(), m_config.dns_search.end());
      b.domain_search(names);
    }
    // libslirp names the boot file in the BOOTP field only; a client that
    // asks for option 67 gets it as well.
    if (!m_config.bootfile.empty()) {
      const auto wanted = request.parameter_request_list();
      if (wanted &&
          std::find(wanted->begin(), wanted->end(), wire::dhcp_option::bootfile_name) != wanted->end()) {
        b.bootfile_name(m_config.bootfile);
      }
      if (m_config.bootfile.starts_with("http://")) b.raw_option(kOptionVendorClass, bytes_of("HTTPClient"));
    }
  }
  const auto n = b.finish(kDhcpReplySize);
  if (!n) return;  // options longer than the 312-byte area: libslirp omits them, we send nothing
  if (yiaddr != 0) arp_learn(yiaddr, chaddr_mac(request));
  if (kind == DhcpReply::inform_ack) arp_learn(request.ciaddr(), chaddr_mac(request));
  // Every libslirp reply goes to 255.255.255.255; the answer to an INFORM
  // goes to the address the client already has (RFC 2131 4.3.5).
  const u32 destination =
      kind == DhcpReply::inform_ack && request.ciaddr() != 0 ? request.ciaddr() : kLimitedBroadcast;
  const auto udp = wire::build_udp(std::span(frame).subspan(kIpPayloadOffset), m_config.host, destination,
                                   wire::kDhcpServerPort, wire::kDhcpClientPort,
                                   std::span(frame).subspan(kUdpPayloadOffset, *n));
  if (!udp) return;
  send_ipv4(frame,
            IpOut{m_config.host, destination, static_cast<u8>(wire::IpProtocol::udp), kTosLowDelay,
                  kDefaultTtl, false},
            *udp);
}

// --------------------------------------------------------------- output --

void UserNet::send_ipv4(std::span<u8> frame, const IpOut& out, std::size_t payload_size) {
  const auto dst_mac = arp_lookup(out.destination);
  if (!dst_mac) {
    // Replies go to senders just learnt; only a sender without a usable
    // address (0.0.0.0) is left. libslirp drops those too (if_encap4).
    ++m_counters.dropped_unroutable;
    return;
  }
  wire::Ipv4Fields f;
  f.tos = out.tos;
  f.identification = m_ip_id++;
  f.dont_fragment = out.dont_fragment;
  f.ttl = out.ttl;
  f.protocol = out.protocol;
  f.source = out.source;
  f.destination = out.destination;
  const auto ip_len =
      wire::build_ipv4(frame.subspan(kIpOffset), f, frame.subspan(kIpPayloadOffset, payload_size));
  if (!ip_len) return;
  // libslirp sends every datagram from the gateway's MAC, whatever the source address.
  const auto n =
      wire::build_ethernet(frame, *dst_mac, mac_for(m_config.host), static_cast<u16>(wire::EtherType::ipv4),
                           frame.subspan(kIpOffset, *ip_len));
  if (!n) return;
  ++m_counters.frames_out;
  transmit(frame.first(*n));
}

void UserNet::send_ipv4_frame(const wire::MacAddress& dst, const wire::Ipv4Fields& f,
                              std::span<const u8> payload) {
  std::array<u8, wire::kEthernetHeaderSize + 1500> frame;
  const auto ip_len = wire::build_ipv4(std::span(frame).subspan(kIpOffset), f, payload);
  if (!ip_len) return;
  const auto n =
      wire::build_ethernet(frame, dst, mac_for(m_config.host), static_cast<u16>(wire::EtherType::ipv4),
                           std::span(frame).subspan(kIpOffset, *ip_len));
  if (!n) return;
  ++m_counters.frames_out;
  transmit(std::span(frame).first(*n));
}

void UserNet::send_arp_request(u32 target) {
  std::array<u8, kArpReplyFrameSize> frame{};
  wire::ArpFields request;
  request.operation = wire::ArpOperation::request;
  request.sender_mac = mac_for(m_config.host);
  request.sender_ip = m_config.host;
  request.target_ip = target;
  const auto n = wire::build_arp(std::span(frame).subspan(wire::kEthernetHeaderSize), request);
  if (!n) return;
  wire::build_ethernet(frame, wire::kBroadcastMac, request.sender_mac, static_cast<u16>(wire::EtherType::arp),
                       std::span(frame).subspan(wire::kEthernetHeaderSize, *n));
  ++m_counters.frames_out;
  transmit(frame);
}

// ------------------------------------------------------ the services' link --

u64 UserNet::now_ns() const { return m_machine.clock().now_ns(); }

const wire::MacAddress* UserNet::guest_mac_or_ask(u32 destination) {
  const wire::MacAddress* mac = arp_find(destination);
  if (!mac) {
    // libslirp holds one packet and sends an ARP request; reel drops it and
    // asks, and the sender's own recovery (TCP retransmission) does the rest.
    ++m_counters.dropped_no_arp;
    send_arp_request(destination);
  }
  return mac;
}

wire::Ipv4Fields UserNet::header_for(const GatewayDatagram& d) {
  wire::Ipv4Fields f;
  f.tos = d.tos;
  f.identification = m_ip_id++;
  f.dont_fragment = d.dont_fragment;
  f.ttl = d.ttl;
  f.protocol = d.protocol;
  f.source = d.source;
  f.destination = d.destination;
  return f;
}

bool UserNet::send_to_guest_framed(const GatewayDatagram& d, std::span<u8> frame, std::size_t size) {
  if (size > kMaxIpPayload || frame.size() < kFrameHeadroom + size) {
    return send_to_guest(d, std::span<const u8>(frame).subspan(kFrameHeadroom, size));
  }
  const auto mac = guest_mac_or_ask(d.destination);
  if (!mac) return false;
  // The builders see the payload already where it belongs and leave it.
  const auto ip_len = wire::build_ipv4(frame.subspan(kIpOffset), header_for(d),
                                       std::span<const u8>(frame).subspan(kFrameHeadroom, size));
  if (!ip_len) return false;
  const auto n =
      wire::build_ethernet(frame, *mac, mac_for(m_config.host), static_cast<u16>(wire::EtherType::ipv4),
                           std::span<const u8>(frame).subspan(kIpOffset, *ip_len));
  if (!n) return false;
  ++m_counters.frames_out;
  transmit(frame.first(*n));
  return true;
}

bool UserNet::send_to_guest(const GatewayDatagram& d, std::span<const u8> payload) {
  const wire::MacAddress* entry = guest_mac_or_ask(d.destination);
  if (!entry) return false;
  // A copy: a guest answering one fragment could change the table.
  const wire::MacAddress mac = *entry;
  wire::Ipv4Fields f = header_for(d);
  if (payload.size() <= kMaxIpPayload) {
    send_ipv4_frame(mac, f, payload);
    return true;
  }
  if (d.dont_fragment || payload.size() > 0xffff - wire::kIpv4MinHeaderSize) {
    ++m_counters.dropped_too_big_df;
    return false;
  }
  // Pieces of 1480 bytes (a multiple of 8) as RFC 791 cuts them.
  for (std::size_t off = 0; off < payload.size(); off += kMaxIpPayload) {
    const std::size_t len = std::min(kMaxIpPayload, payload.size() - off);
    f.more_fragments = off + len < payload.size();
    f.fragment_offset = static_cast<u16>(off / 8);
    ++m_counters.fragments_out;
    send_ipv4_frame(mac, f, payload.subspan(off, len));
  }
  return true;
}

void UserNet::wake_at(u64 deadline_ns) {
  Scheduler& s = m_machine.scheduler();
  if (!s.armed(m_timer) || deadline_ns < s.deadline(m_timer)) s.arm(m_timer, deadline_ns);
}

void UserNet::on_timer() {
  const u64 now = now_ns();
  for (const auto& quote : m_reassembly.expire(now)) {
    send_icmp_error(std::span<const u8>(quote), static_cast<u8>(wire::IcmpType::time_exceeded),
                    static_cast<u8>(wire::IcmpTimeExceededCode::reassembly));
  }
  if (const auto next = m_reassembly.next_deadline()) wake_at(*next);
  m_tcp->on_timer(now);
  m_udp->on_timer(now);
  m_ping->on_timer(now);
  m_tftp->on_timer(now);
}

std::optional<GatewayLink::HostTarget> UserNet::host_target(u32 destination, u16 port) {
  if (destination == m_config.dns) {
    if (port != 53) return std::nullopt;
    return resolver();
  }
  if (m_config.restrict) return std::nullopt;
  if (destination == m_config.host) return HostTarget{"127.0.0.1", port};
  // Other addresses inside the virtual network are nobody (libslirp's
  // guestfwd addresses would live here); broadcast and multicast go nowhere.
  if ((destination & m_config.netmask) == m_config.network) return std::nullopt;
  if (destination == 0 || destination == kLimitedBroadcast || (destination >> 28) >= 0xe) return std::nullopt;
  return HostTarget{format_ipv4(destination), port};
}

u32 UserNet::guest_visible_source(u32 host_ip) const {
  return (host_ip >> 24) == 127 ? m_config.host : host_ip;
}

void UserNet::log(const std::string& line) { m_machine.log(line); }

std::string UserNet::start_forwards() {
  for (const UserNetForward& f : m_config.forwards) {
    std::string error = m_forwards.add(f);
    if (!error.empty()) return error;
  }
  return {};
}

std::vector<std::string> UserNet::describe_state() const {
  std::vector<std::string> out;
  for (const std::string& f : m_forwards.describe()) out.push_back("forward " + f);
  for (const LeaseInfo& l : leases()) {
    char mac[18];
    std::snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", l.mac[0], l.mac[1], l.mac[2], l.mac[3],
                  l.mac[4], l.mac[5]);
    out.push_back("lease " + format_ipv4(l.address) + " " + mac + (l.declined ? " (declined)" : ""));
  }
  for (const std::string& c : m_tcp->describe_connections()) out.push_back(c);
  for (const std::string& f : m_udp->describe_flows()) out.push_back(f);
  for (const std::string& f : m_ping->describe_flows()) out.push_back(f);
  if (m_tftp->session_count() > 0) out.push_back("tftp sessions " + std::to_string(m_tftp->session_count()));
  return out;
}

void UserNet::rebind_sockets() {
  m_forwards.rebind_sockets();
  m_tcp->rebind_sockets();
  m_udp->rebind_sockets();
  m_ping->rebind_sockets();
}

std::optional<GatewayLink::HostTarget> UserNet::resolver() {
  if (!m_resolver_known) {
    m_resolver_known = true;
    std::string spec = m_config.resolver;
    if (spec.empty()) {
      // The host's resolver, as libslirp finds it. Read through HostIO, so
      // a replay sees the same nameserver whatever its host has.
      const HostFile f = m_machine.host().read_file_under("/", "etc/resolv.conf");
      if (f.ok)
        spec =
            first_nameserver(std::string_view(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size()));
      if (!spec.empty()) spec += ":53";
    }
    const auto colon = spec.rfind(':');
    if (colon != std::string::npos) {
      m_resolver_host = spec.substr(0, colon);
      unsigned port = 0;
      for (char c : spec.substr(colon + 1))
        port = (c >= '0' && c <= '9' && port < 65536) ? port * 10 + (c - '0') : 70000;
      m_resolver_port = port > 0 && port < 65536 ? static_cast<u16>(port) : 0;
      if (m_resolver_port == 0) m_resolver_host.clear();
    }
    if (m_resolver_host.empty())
      log(name() + ": no DNS resolver (none in /etc/resolv.conf): queries to " + format_ipv4(m_config.dns) +
          " are dropped");
  }
  if (m_resolver_host.empty()) return std::nullopt;
  return HostTarget{m_resolver_host, m_resolver_port};
}

// ---------------------------------------------------------------- state --

std::vector<UserNet::LeaseInfo> UserNet::leases() const {
  std::vector<LeaseInfo> out;
  for (std::size_t i = 0; i < kLeaseCount; ++i) {
    if (m_leases[i].allocated)
      out.push_back(LeaseInfo{slot_address(i), m_leases[i].mac, m_leases[i].declined});
  }
  return out;
}

std::optional<u32> UserNet::lease_for(const wire::MacAddress& mac) const {
  if (auto s = slot_of(mac)) return slot_address(*s);
  return std::nullopt;
}

}  // namespace reel
