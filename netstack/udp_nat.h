#pragma once

#include <cereal/types/map.hpp>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/host_io.h"
#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class GatewayLink;

namespace wire {
class Ipv4Packet;
class UdpDatagram;
}  // namespace wire

// The UDP side of `-net user`: NAT of the guest's datagrams onto host UDP
// sockets, DNS forwarding (queries to the dns= address go to the resolver
// and the answers come back from that address), and hostfwd=udp: forwards.
//
// Like libslirp, a flow is one guest source (address and port) with one
// host socket bound to any address and port 0; datagrams from that source
// to several destinations share the socket. Each flow remembers which host
// peer stands for which guest-visible destination, so that a reply from
// the resolver appears to come from 10.0.2.3:53 and a reply from
// 127.0.0.1:p from 10.0.2.2:p. Nothing is buffered: a host datagram goes to
// the guest at once or is dropped and counted.
//
// Flows expire on virtual time when idle. All state is plain values keyed
// by socket id (ordered maps), so it serializes, hashes and compares in a
// deterministic order; socket handlers are re-registered by
// rebind_sockets() after a load.
class UdpNat {
 public:
  // libslirp's SO_EXPIRE and SO_EXPIREFAST: an ordinary flow lives 240 s
  // after its last datagram, a flow whose last answer came from port 53 only
  // 10 s (DNS lookups are one question, one answer).
  static constexpr u64 kIdleNs = 240'000'000'000ull;
  static constexpr u64 kDnsIdleNs = 10'000'000'000ull;
  // Host sockets are a host resource the guest must not exhaust.
  static constexpr std::size_t kMaxFlows = 1024;
  // Destinations remembered per flow (the reverse mapping of replies); the
  // least recently used one is forgotten first.
  static constexpr std::size_t kMaxPeersPerFlow = 16;
  static constexpr std::size_t kMaxUdpPayload = 65535 - 20 - 8;

  explicit UdpNat(GatewayLink& link);
  UdpNat(const UdpNat&) = delete;
  UdpNat& operator=(const UdpNat&) = delete;

  // A UDP datagram from the guest that is not for the gateway's own
  // DHCP/TFTP (the gateway dispatches those). ip and udp are already
  // checked (unfragmented, lengths and checksums).
  void guest_datagram(const wire::Ipv4Packet& ip, const wire::UdpDatagram& udp);

  // hostfwd=udp:...: `socket` is a bound host UDP socket the gateway opened
  // (and closes: remove_forward() only forgets it). Datagrams arriving on
  // it go to guest_ip:guest_port from guest_visible_source(peer.ip):peer.port;
  // the guest's datagrams from guest_port go back out through the same
  // socket (to the peer they answer, or wherever host_target() says). A
  // NAT flow of the same guest source is closed: the forward takes its
  // place, as in libslirp where the forward's socket owns that port.
  void add_forward(SocketId socket, u32 guest_ip, u16 guest_port);
  void remove_forward(SocketId socket);

  // Expires idle flows; asks for the next wake itself.
  void on_timer(u64 now_ns);
  // Re-registers socket handlers (after a load).
  void rebind_sockets();
  // Closes every NAT flow's socket (forwards are the gateway's).
  void close_all();

  struct Counters {
    u64 datagrams_out = 0;  // guest -> host, sent
    u64 datagrams_in = 0;   // host -> guest, delivered
    u64 flows_opened = 0;
    u64 flows_expired = 0;
    u64 flows_evicted = 0;  // the oldest idle flow made room for a new one
    u64 dns_queries = 0;
    u64 dns_answers = 0;
    u64 dns_not_a_query = 0;        // sent to the resolver anyway (libslirp forwards blindly)
    u64 unsolicited_datagrams = 0;  // from a peer the flow never sent to (delivered)
    u64 peers_forgotten = 0;        // a flow's peer table was full
    u64 port_unreachable_sent = 0;  // the DNS address on another port
    u64 dropped_source_port_zero = 0;
    u64 dropped_destination_port_zero = 0;
    u64 dropped_bad_source = 0;   // 0.0.0.0, broadcast or multicast source
    u64 dropped_broadcast = 0;    // to a broadcast or multicast address
    u64 dropped_no_target = 0;    // host_target() said the flow may not leave
    u64 dropped_bad_target = 0;   // host_target() gave no dotted quad
    u64 dropped_socket_open = 0;  // the host refused a socket
    u64 dropped_host_send = 0;    // the host dropped the datagram
    u64 dropped_peer_port_zero = 0;
    u64 dropped_too_big = 0;            // a host datagram that cannot fit an IPv4 datagram
    u64 dropped_guest_unreachable = 0;  // the guest's MAC is not known yet
    u64 dropped_unknown_socket = 0;     // an event for a socket no flow owns
    u64 host_errors = 0;                // `error` events: the flow is closed
    u64 dropped_unexpected_event = 0;   // an event kind a UDP socket never sends
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(datagrams_out), REEL_FIELD(datagrams_in), REEL_FIELD(flows_opened),
         REEL_FIELD(flows_expired), REEL_FIELD(flows_evicted), REEL_FIELD(dns_queries),
         REEL_FIELD(dns_answers), REEL_FIELD(dns_not_a_query), REEL_FIELD(unsolicited_datagrams),
         REEL_FIELD(peers_forgotten), REEL_FIELD(port_unreachable_sent), REEL_FIELD(dropped_source_port_zero),
         REEL_FIELD(dropped_destination_port_zero), REEL_FIELD(dropped_bad_source),
         REEL_FIELD(dropped_broadcast), REEL_FIELD(dropped_no_target), REEL_FIELD(dropped_bad_target),
         REEL_FIELD(dropped_socket_open), REEL_FIELD(dropped_host_send), REEL_FIELD(dropped_peer_port_zero),
         REEL_FIELD(dropped_too_big), REEL_FIELD(dropped_guest_unreachable),
         REEL_FIELD(dropped_unknown_socket), REEL_FIELD(host_errors), REEL_FIELD(dropped_unexpected_event));
    }
  };
  const Counters& counters() const { return m_counters; }

  // NAT flows and forwards.
  std::size_t flow_count() const { return m_flows.size(); }
  // One line per flow for `info network`, in socket-id order.
  std::vector<std::string> describe_flows() const;

  // What a flow looks like from outside (tests, the monitor).
  struct FlowInfo {
    SocketId socket = 0;
    u32 guest_ip = 0;
    u16 guest_port = 0;
    bool forward = false;
    u64 expires_ns = 0;  // 0 for forwards
  };
  std::vector<FlowInfo> flows() const;
  std::optional<FlowInfo> flow_for(u32 guest_ip, u16 guest_port) const;

  // HostTarget::host as an address: "10.0.2.3" -> 0x0a000203; nullopt for
  // anything that is not a dotted quad. Shared with PingNat.
  static std::optional<u32> parse_host_address(const std::string& text);

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_flows), REEL_FIELD(m_wake_ns), REEL_FIELD(m_counters));
    if constexpr (std::is_base_of_v<cereal::detail::InputArchiveBase, Archive>) rebuild_index();
  }

 private:
  // A host peer and the guest-visible address it stands for.
  struct Peer {
    u32 host_ip = 0;
    u16 host_port = 0;
    u32 guest_ip = 0;  // what the guest sends to / sees replies from
    u16 guest_port = 0;
    u64 last_used_ns = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(host_ip), REEL_FIELD(host_port), REEL_FIELD(guest_ip), REEL_FIELD(guest_port),
         REEL_FIELD(last_used_ns));
    }
  };
  struct Flow {
    u32 guest_ip = 0;
    u16 guest_port = 0;
    bool forward = false;  // a hostfwd= socket: never expires, not ours to close
    u64 last_active_ns = 0;
    u64 expires_ns = 0;
    std::vector<Peer> peers;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(guest_ip), REEL_FIELD(guest_port), REEL_FIELD(forward), REEL_FIELD(last_active_ns),
         REEL_FIELD(expires_ns), REEL_FIELD(peers));
    }
  };

  static u64 guest_key(u32 ip, u16 port) { return (u64{ip} << 16) | port; }
  void rebuild_index();
  void bind_socket(SocketId socket);
  void on_socket_event(SocketId socket, const SocketEvent& event);
  void host_datagram(SocketId socket, Flow& flow, const SocketEvent& event);
  // The flow for a guest source, opening one (and evicting) if needed.
  Flow* flow_for_source(u32 guest_ip, u16 guest_port, SocketId& socket);
  void close_flow(SocketId socket);
  void set_expiry(Flow& flow, u64 expires_ns);
  // Remembers that host peer `host` stands for guest-visible `guest`.
  void remember_peer(Flow& flow, u32 host_ip, u16 host_port, u32 guest_ip, u16 guest_port);

  GatewayLink& m_link;
  std::map<SocketId, Flow> m_flows;
  std::map<u64, SocketId> m_by_guest;  // derived from m_flows, not serialized
  u64 m_wake_ns = 0;                   // the wake asked for and not yet seen; 0: none
  Counters m_counters;
};

}  // namespace reel
