#include "netstack/udp_nat.h"

#include <algorithm>
#include <charconv>

#include "core/machine.h"
#include "netstack/gateway_link.h"
#include "netstack/wire/dns.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace reel {

namespace {

constexpr u16 kDnsPort = 53;

bool is_multicast(u32 ip) { return (ip >> 28) == 0xe; }

std::string ns_as_seconds(u64 ns) {
  const u64 ms = ns / 1'000'000;
  std::string frac = std::to_string(ms % 1000);
  frac.insert(0, 3 - frac.size(), '0');
  return std::to_string(ms / 1000) + "." + frac + "s";
}

}  // namespace

std::optional<u32> UdpNat::parse_host_address(const std::string& text) {
  u32 ip = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    // Digits only: from_chars alone would take a sign or accept "1.2.3.4x".
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    unsigned value = 0;
    const auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc{} || value > 255 || next - p > 3) return std::nullopt;
    ip = (ip << 8) | value;
    p = next;
  }
  if (p != end) return std::nullopt;
  return ip;
}

UdpNat::UdpNat(GatewayLink& link) : m_link(link) {}

void UdpNat::rebuild_index() {
  m_by_guest.clear();
  for (const auto& [socket, flow] : m_flows) m_by_guest[guest_key(flow.guest_ip, flow.guest_port)] = socket;
}

void UdpNat::bind_socket(SocketId socket) {
  m_link.machine().set_socket_handler(socket,
                                      [this, socket](const SocketEvent& e) { on_socket_event(socket, e); });
}

void UdpNat::rebind_sockets() {
  for (const auto& [socket, flow] : m_flows) bind_socket(socket);
}

void UdpNat::close_flow(SocketId socket) {
  auto it = m_flows.find(socket);
  if (it == m_flows.end()) return;
  Machine& machine = m_link.machine();
  machine.clear_socket_handler(socket);
  if (!it->second.forward) machine.host().socket_close(socket);
  const u64 key = guest_key(it->second.guest_ip, it->second.guest_port);
  auto idx = m_by_guest.find(key);
  if (idx != m_by_guest.end() && idx->second == socket) m_by_guest.erase(idx);
  m_flows.erase(it);
}

void UdpNat::close_all() {
  std::vector<SocketId> nat;
  for (const auto& [socket, flow] : m_flows) {
    if (!flow.forward) nat.push_back(socket);
  }
  for (SocketId s : nat) close_flow(s);
}

void UdpNat::set_expiry(Flow& flow, u64 expires_ns) {
  flow.expires_ns = expires_ns;
  // Expiries mostly move later; one pending wake at the earliest known one
  // is enough, on_timer() asks for the next.
  if (m_wake_ns == 0 || expires_ns < m_wake_ns) {
    m_wake_ns = expires_ns;
    m_link.wake_at(expires_ns);
  }
}

void UdpNat::remember_peer(Flow& flow, u32 host_ip, u16 host_port, u32 guest_ip, u16 guest_port) {
  const u64 now = m_link.now_ns();
  for (Peer& p : flow.peers) {
    if (p.guest_ip == guest_ip && p.guest_port == guest_port) {
      p.host_ip = host_ip;
      p.host_port = host_port;
      p.last_used_ns = now;
      return;
    }
  }
  const Peer fresh{host_ip, host_port, guest_ip, guest_port, now};
  if (flow.peers.size() < kMaxPeersPerFlow) {
    flow.peers.push_back(fresh);
    return;
  }
  auto victim = std::min_element(flow.peers.begin(), flow.peers.end(), [](const Peer& a, const Peer& b) {
    return a.last_used_ns < b.last_used_ns;
  });
  *victim = fresh;
  ++m_counters.peers_forgotten;
}

UdpNat::Flow* UdpNat::flow_for_source(u32 guest_ip, u16 guest_port, SocketId& socket) {
  auto idx = m_by_guest.find(guest_key(guest_ip, guest_port));
  if (idx != m_by_guest.end()) {
    socket = idx->second;
    return &m_flows.at(socket);
  }
  std::size_t nat_flows = 0;
  for (const auto& [s, flow] : m_flows) nat_flows += flow.forward ? 0 : 1;
  if (nat_flows >= kMaxFlows) {
    // The flow idle longest goes (lowest socket id among equals): a new
    // flow is more likely wanted than one nobody used for the longest time.
    std::optional<SocketId> victim;
    u64 oldest = 0;
    for (const auto& [s, flow] : m_flows) {
      if (flow.forward) continue;
      if (!victim || flow.last_active_ns < oldest) {
        victim = s;
        oldest = flow.last_active_ns;
      }
    }
    close_flow(*victim);
    ++m_counters.flows_evicted;
  }
  SocketSpec spec;
  spec.kind = SocketSpec::Kind::udp;  // any address, port 0: the host picks the port
  const SocketOpenResult r = m_link.machine().host().socket_open(spec);
  if (!r.ok) {
    ++m_counters.dropped_socket_open;
    return nullptr;
  }
  Flow flow;
  flow.guest_ip = guest_ip;
  flow.guest_port = guest_port;
  flow.last_active_ns = m_link.now_ns();
  m_flows[r.id] = flow;
  m_by_guest[guest_key(guest_ip, guest_port)] = r.id;
  bind_socket(r.id);
  ++m_counters.flows_opened;
  socket = r.id;
  return &m_flows.at(r.id);
}

void UdpNat::guest_datagram(const wire::Ipv4Packet& ip, const wire::UdpDatagram& udp) {
  const UserNetConfig& config = m_link.config();
  const u32 src = ip.source();
  const u32 dst = ip.destination();
  const u16 sport = udp.source_port();
  const u16 dport = udp.destination_port();
  const u32 net_broadcast = config.network | ~config.netmask;
  // Port 0 on either side has let guests confuse NAT tables before
  // (libslirp's CVE history); nothing legitimate uses it.
  if (sport == 0) {
    ++m_counters.dropped_source_port_zero;
    return;
  }
  if (dport == 0) {
    ++m_counters.dropped_destination_port_zero;
    return;
  }
  // Replies could never reach such a source.
  if (src == 0 || src == 0xffffffffu || src == net_broadcast || is_multicast(src)) {
    ++m_counters.dropped_bad_source;
    return;
  }
  if (dst == 0xffffffffu || dst == net_broadcast || is_multicast(dst)) {
    ++m_counters.dropped_broadcast;
    return;
  }

  auto existing = m_by_guest.find(guest_key(src, sport));
  std::optional<SocketAddress> to;
  if (existing != m_by_guest.end()) {
    // A destination the flow already knows keeps its host peer (a forward's
    // peer on 127.0.0.2 stays there, though 10.0.2.2 means 127.0.0.1).
    for (const Peer& p : m_flows.at(existing->second).peers) {
      if (p.guest_ip == dst && p.guest_port == dport) to = SocketAddress{p.host_ip, p.host_port};
    }
  }
  if (!to) {
    const std::optional<GatewayLink::HostTarget> target = m_link.host_target(dst, dport);
    if (!target) {
      if (dst == config.dns) {
        // A real host at that address with nothing on the port would say so.
        m_link.send_icmp_error(ip.bytes(), 3, 3);
        ++m_counters.port_unreachable_sent;
      } else {
        ++m_counters.dropped_no_target;
      }
      return;
    }
    const std::optional<u32> host_ip = parse_host_address(target->host);
    if (!host_ip || target->port == 0) {
      ++m_counters.dropped_bad_target;
      return;
    }
    to = SocketAddress{*host_ip, target->port};
  }

  SocketId socket = 0;
  Flow* flow = flow_for_source(src, sport, socket);
  if (!flow) return;
  const u64 now = m_link.now_ns();
  remember_peer(*flow, to->ip, to->port, dst, dport);
  flow->last_active_ns = now;
  if (!flow->forward) set_expiry(*flow, now + kIdleNs);

  if (dst == config.dns && dport == kDnsPort) {
    ++m_counters.dns_queries;
    const wire::DnsParsed dns = wire::DnsMessage::parse(udp.payload());
    if (!dns || dns->is_response()) ++m_counters.dns_not_a_query;
  }
  const std::span<const u8> payload = udp.payload();
  const size_t sent = m_link.machine().host().socket_send_to(socket, *to, payload);
  if (sent != payload.size()) {
    ++m_counters.dropped_host_send;
    return;
  }
  ++m_counters.datagrams_out;
}

void UdpNat::host_datagram(SocketId socket, Flow& flow, const SocketEvent& event) {
  (void)socket;
  const UserNetConfig& config = m_link.config();
  if (event.peer.port == 0) {
    ++m_counters.dropped_peer_port_zero;
    return;
  }
  if (event.bytes.size() > kMaxUdpPayload) {
    ++m_counters.dropped_too_big;
    return;
  }
  const u64 now = m_link.now_ns();
  // The most recently used destination this peer stands for.
  Peer* known = nullptr;
  for (Peer& p : flow.peers) {
    if (p.host_ip == event.peer.ip && p.host_port == event.peer.port &&
        (!known || p.last_used_ns > known->last_used_ns)) {
      known = &p;
    }
  }
  u32 src = 0;
  u16 sport = event.peer.port;
  if (known) {
    src = known->guest_ip;
    sport = known->guest_port;
    known->last_used_ns = now;
  } else {
    // libslirp delivers datagrams from anyone to the flow's port; the
    // guest's answer must reach that peer again, so it is remembered.
    src = m_link.guest_visible_source(event.peer.ip);
    ++m_counters.unsolicited_datagrams;
    remember_peer(flow, event.peer.ip, event.peer.port, src, sport);
  }
  flow.last_active_ns = now;
  // libslirp shortens the life of a flow answered from port 53; judged by
  // the port the guest sees, so a resolver on another host port counts too.
  if (!flow.forward) set_expiry(flow, now + (sport == kDnsPort ? kDnsIdleNs : kIdleNs));

  std::vector<u8> out(wire::kUdpHeaderSize + event.bytes.size());
  if (!wire::build_udp(out, src, flow.guest_ip, sport, flow.guest_port, event.bytes)) {
    ++m_counters.dropped_too_big;
    return;
  }
  GatewayDatagram d;
  d.source = src;
  d.destination = flow.guest_ip;
  d.protocol = static_cast<u8>(wire::IpProtocol::udp);
  if (!m_link.send_to_guest(d, out)) {
    ++m_counters.dropped_guest_unreachable;
    return;
  }
  ++m_counters.datagrams_in;
  if (src == config.dns && sport == kDnsPort) ++m_counters.dns_answers;
}

void UdpNat::on_socket_event(SocketId socket, const SocketEvent& event) {
  auto it = m_flows.find(socket);
  if (it == m_flows.end()) {
    ++m_counters.dropped_unknown_socket;
    return;
  }
  switch (event.kind) {
    case SocketEvent::Kind::datagram:
      host_datagram(socket, it->second, event);
      return;
    case SocketEvent::Kind::error: {
      ++m_counters.host_errors;
      const Flow& flow = it->second;
      m_link.log("udp: " + format_socket_address({flow.guest_ip, flow.guest_port}) +
                 ": host socket failed: " + event.error);
      // The socket is dead; a forward's is the gateway's to close, but no
      // more events come from it either way.
      close_flow(socket);
      return;
    }
    default:
      ++m_counters.dropped_unexpected_event;
      return;
  }
}

void UdpNat::add_forward(SocketId socket, u32 guest_ip, u16 guest_port) {
  auto idx = m_by_guest.find(guest_key(guest_ip, guest_port));
  if (idx != m_by_guest.end()) close_flow(idx->second);
  if (m_flows.count(socket)) close_flow(socket);
  Flow flow;
  flow.guest_ip = guest_ip;
  flow.guest_port = guest_port;
  flow.forward = true;
  flow.last_active_ns = m_link.now_ns();
  m_flows[socket] = flow;
  m_by_guest[guest_key(guest_ip, guest_port)] = socket;
  bind_socket(socket);
}

void UdpNat::remove_forward(SocketId socket) {
  auto it = m_flows.find(socket);
  if (it != m_flows.end() && it->second.forward) close_flow(socket);
}

void UdpNat::on_timer(u64 now_ns) {
  if (m_wake_ns != 0 && now_ns >= m_wake_ns) m_wake_ns = 0;
  std::vector<SocketId> expired;
  for (const auto& [socket, flow] : m_flows) {
    if (!flow.forward && flow.expires_ns <= now_ns) expired.push_back(socket);
  }
  for (SocketId s : expired) {
    close_flow(s);
    ++m_counters.flows_expired;
  }
  std::optional<u64> next;
  for (const auto& [socket, flow] : m_flows) {
    if (!flow.forward && (!next || flow.expires_ns < *next)) next = flow.expires_ns;
  }
  if (next && (m_wake_ns == 0 || *next < m_wake_ns)) {
    m_wake_ns = *next;
    m_link.wake_at(*next);
  }
}

std::vector<UdpNat::FlowInfo> UdpNat::flows() const {
  std::vector<FlowInfo> out;
  for (const auto& [socket, flow] : m_flows) {
    out.push_back(
        FlowInfo{socket, flow.guest_ip, flow.guest_port, flow.forward, flow.forward ? 0 : flow.expires_ns});
  }
  return out;
}

std::optional<UdpNat::FlowInfo> UdpNat::flow_for(u32 guest_ip, u16 guest_port) const {
  auto idx = m_by_guest.find(guest_key(guest_ip, guest_port));
  if (idx == m_by_guest.end()) return std::nullopt;
  const Flow& flow = m_flows.at(idx->second);
  return FlowInfo{idx->second, flow.guest_ip, flow.guest_port, flow.forward,
                  flow.forward ? 0 : flow.expires_ns};
}

std::vector<std::string> UdpNat::describe_flows() const {
  std::vector<std::string> lines;
  const u64 now = m_link.now_ns();
  for (const auto& [socket, flow] : m_flows) {
    std::string line = "udp " + format_socket_address({flow.guest_ip, flow.guest_port}) +
                       (flow.forward ? " forward" : " nat") + " socket " + std::to_string(socket);
    for (const Peer& p : flow.peers) {
      line += ' ';
      line += format_socket_address({p.guest_ip, p.guest_port});
      if (p.guest_ip != p.host_ip || p.guest_port != p.host_port) {
        line += '=';
        line += format_socket_address({p.host_ip, p.host_port});
      }
    }
    if (!flow.forward) {
      line += " expires in ";
      line += ns_as_seconds(flow.expires_ns > now ? flow.expires_ns - now : 0);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace reel
