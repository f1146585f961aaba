#include "netstack/ping_nat.h"

#include <algorithm>

#include "core/machine.h"
#include "netstack/gateway_link.h"
#include "netstack/udp_nat.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"

namespace reel {

namespace {

bool is_multicast(u32 ip) { return (ip >> 28) == 0xe; }

}  // namespace

PingNat::PingNat(GatewayLink& link) : m_link(link) {}

void PingNat::bind_socket(SocketId socket) {
  m_link.machine().set_socket_handler(socket,
                                      [this, socket](const SocketEvent& e) { on_socket_event(socket, e); });
}

void PingNat::rebind_sockets() {
  for (const auto& [socket, flow] : m_flows) bind_socket(socket);
}

void PingNat::close_flow(SocketId socket) {
  if (!m_flows.erase(socket)) return;
  m_link.machine().clear_socket_handler(socket);
  m_link.machine().host().socket_close(socket);
}

void PingNat::close_all() {
  std::vector<SocketId> all;
  for (const auto& [socket, flow] : m_flows) all.push_back(socket);
  for (SocketId s : all) close_flow(s);
}

void PingNat::set_expiry(Flow& flow, u64 expires_ns) {
  flow.expires_ns = expires_ns;
  if (m_wake_ns == 0 || expires_ns < m_wake_ns) {
    m_wake_ns = expires_ns;
    m_link.wake_at(expires_ns);
  }
}

std::optional<SocketId> PingNat::flow_for(u32 guest_ip, u16 identifier) {
  for (const auto& [socket, flow] : m_flows) {
    if (flow.guest_ip == guest_ip && flow.identifier == identifier) return socket;
  }
  const u64 now = m_link.now_ns();
  if (now < m_refused_until_ns) {
    ++m_counters.dropped_no_ping_socket;
    return std::nullopt;
  }
  if (m_flows.size() >= kMaxFlows) {
    auto victim = std::min_element(m_flows.begin(), m_flows.end(), [](const auto& a, const auto& b) {
      return a.second.last_active_ns < b.second.last_active_ns;
    });
    close_flow(victim->first);
    ++m_counters.flows_evicted;
  }
  SocketSpec spec;
  spec.kind = SocketSpec::Kind::icmp_echo;
  const SocketOpenResult r = m_link.machine().host().socket_open(spec);
  if (!r.ok) {
    // Usually ping_group_range: asking again on every packet would only
    // fill the journal with the same refusal.
    if (m_refused_until_ns == 0) m_link.log("ping: no host ping socket (" + r.error + "); pings are dropped");
    m_refused_until_ns = now + kRetryNs;
    ++m_counters.dropped_no_ping_socket;
    return std::nullopt;
  }
  Flow flow;
  flow.guest_ip = guest_ip;
  flow.identifier = identifier;
  flow.last_active_ns = now;
  m_flows[r.id] = flow;
  bind_socket(r.id);
  ++m_counters.flows_opened;
  return r.id;
}

void PingNat::guest_echo(const wire::Ipv4Packet& ip, const wire::IcmpMessage& echo) {
  const UserNetConfig& config = m_link.config();
  const u32 src = ip.source();
  const u32 dst = ip.destination();
  const u32 net_broadcast = config.network | ~config.netmask;
  if (echo.type() != static_cast<u8>(wire::IcmpType::echo_request) || echo.code() != 0) {
    ++m_counters.dropped_not_echo_request;
    return;
  }
  if (src == 0 || src == 0xffffffffu || src == net_broadcast || is_multicast(src)) {
    ++m_counters.dropped_bad_source;
    return;
  }
  if (dst == 0 || dst == 0xffffffffu || dst == net_broadcast || is_multicast(dst)) {
    ++m_counters.dropped_broadcast;
    return;
  }
  const std::optional<GatewayLink::HostTarget> target = m_link.host_target(dst, 0);
  if (!target) {
    ++m_counters.dropped_no_target;
    return;
  }
  const std::optional<u32> host_ip = UdpNat::parse_host_address(target->host);
  if (!host_ip) {
    ++m_counters.dropped_bad_target;
    return;
  }
  const std::optional<SocketId> socket = flow_for(src, echo.identifier());
  if (!socket) return;
  Flow& flow = m_flows.at(*socket);
  const u64 now = m_link.now_ns();
  flow.last_active_ns = now;
  set_expiry(flow, now + kIdleNs);
  bool known = false;
  for (Peer& p : flow.peers) {
    if (p.guest_ip == dst) {
      p.host_ip = *host_ip;
      p.last_used_ns = now;
      known = true;
    }
  }
  if (!known) {
    const Peer fresh{*host_ip, dst, now};
    if (flow.peers.size() < kMaxPeersPerFlow) {
      flow.peers.push_back(fresh);
    } else {
      *std::min_element(flow.peers.begin(), flow.peers.end(),
                        [](const Peer& a, const Peer& b) { return a.last_used_ns < b.last_used_ns; }) = fresh;
    }
  }
  // The whole request as the guest sent it: the host replaces the
  // identifier (and so the checksum) with its own.
  const std::span<const u8> bytes = echo.bytes();
  if (m_link.machine().host().socket_send_to(*socket, SocketAddress{*host_ip, 0}, bytes) != bytes.size()) {
    ++m_counters.dropped_host_send;
    return;
  }
  ++m_counters.requests_out;
}

void PingNat::host_reply(Flow& flow, const SocketEvent& event) {
  const std::vector<u8>& bytes = event.bytes;
  // The checksum is not trusted either way: the reply is rebuilt.
  if (bytes.size() < wire::kIcmpHeaderSize || bytes[0] != static_cast<u8>(wire::IcmpType::echo_reply) ||
      bytes[1] != 0 || bytes.size() > 65535 - 60) {
    ++m_counters.dropped_bad_reply;
    return;
  }
  const u64 now = m_link.now_ns();
  u32 src = 0;
  Peer* known = nullptr;
  for (Peer& p : flow.peers) {
    if (p.host_ip == event.peer.ip && (!known || p.last_used_ns > known->last_used_ns)) known = &p;
  }
  if (known) {
    src = known->guest_ip;
    known->last_used_ns = now;
  } else {
    src = m_link.guest_visible_source(event.peer.ip);
    ++m_counters.unsolicited_replies;
  }
  const u16 sequence = wire::load_be16(&bytes[6]);
  const std::span<const u8> data = std::span<const u8>(bytes).subspan(wire::kIcmpHeaderSize);
  std::vector<u8> out(bytes.size());
  if (!wire::build_icmp_echo(out, wire::IcmpType::echo_reply, flow.identifier, sequence, data)) {
    ++m_counters.dropped_bad_reply;
    return;
  }
  flow.last_active_ns = now;
  GatewayDatagram d;
  d.source = src;
  d.destination = flow.guest_ip;
  d.protocol = static_cast<u8>(wire::IpProtocol::icmp);
  if (!m_link.send_to_guest(d, out)) {
    ++m_counters.dropped_guest_unreachable;
    return;
  }
  ++m_counters.replies_in;
}

void PingNat::on_socket_event(SocketId socket, const SocketEvent& event) {
  auto it = m_flows.find(socket);
  if (it == m_flows.end()) {
    ++m_counters.dropped_unknown_socket;
    return;
  }
  switch (event.kind) {
    case SocketEvent::Kind::datagram:
      host_reply(it->second, event);
      return;
    case SocketEvent::Kind::error:
      ++m_counters.host_errors;
      close_flow(socket);
      return;
    default:
      ++m_counters.dropped_unexpected_event;
      return;
  }
}

void PingNat::on_timer(u64 now_ns) {
  if (m_wake_ns != 0 && now_ns >= m_wake_ns) m_wake_ns = 0;
  std::vector<SocketId> expired;
  for (const auto& [socket, flow] : m_flows) {
    if (flow.expires_ns <= now_ns) expired.push_back(socket);
  }
  for (SocketId s : expired) {
    close_flow(s);
    ++m_counters.flows_expired;
  }
  std::optional<u64> next;
  for (const auto& [socket, flow] : m_flows) {
    if (!next || flow.expires_ns < *next) next = flow.expires_ns;
  }
  if (next && (m_wake_ns == 0 || *next < m_wake_ns)) {
    m_wake_ns = *next;
    m_link.wake_at(*next);
  }
}

std::vector<std::string> PingNat::describe_flows() const {
  std::vector<std::string> lines;
  for (const auto& [socket, flow] : m_flows) {
    std::string line = "icmp ";
    line += format_ipv4(flow.guest_ip);
    line += " id ";
    line += std::to_string(flow.identifier);
    line += " socket ";
    line += std::to_string(socket);
    for (const Peer& p : flow.peers) {
      line += ' ';
      line += format_ipv4(p.guest_ip);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace reel
