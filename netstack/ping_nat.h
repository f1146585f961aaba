#pragma once

#include <cereal/types/map.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/state_archive.h"
#include "core/types.h"

namespace reel {

class GatewayLink;

namespace wire {
class Ipv4Packet;
class IcmpMessage;
}  // namespace wire

// ICMP echo NAT of `-net user`: the guest's pings to addresses that are not
// the gateway's own go out through unprivileged host ping sockets
// (SocketSpec::Kind::icmp_echo, like libslirp's SOCK_DGRAM/IPPROTO_ICMP
// path), one per guest address and echo identifier. The host picks the
// identifier on the wire; replies come back with the guest's identifier,
// the sequence and data as received, from the address the guest pinged.
//
// Hosts often refuse ping sockets (net.ipv4.ping_group_range): the request
// is then dropped and counted, and opening is not tried again for
// kRetryNs of virtual time. libslirp falls back to a raw socket or to
// answering from the gateway; reel does neither (a raw socket needs
// privileges, and a fake answer would lie about reachability).
class PingNat {
 public:
  static constexpr u64 kIdleNs = 60'000'000'000ull;
  static constexpr u64 kRetryNs = 10'000'000'000ull;
  static constexpr std::size_t kMaxFlows = 64;
  // Pinged addresses remembered per flow, to map replies back.
  static constexpr std::size_t kMaxPeersPerFlow = 8;

  explicit PingNat(GatewayLink& link);
  PingNat(const PingNat&) = delete;
  PingNat& operator=(const PingNat&) = delete;

  // An echo request (checked: type 8, checksum) from the guest to an
  // address the gateway does not answer itself.
  void guest_echo(const wire::Ipv4Packet& ip, const wire::IcmpMessage& echo);
  void on_timer(u64 now_ns);
  void rebind_sockets();
  void close_all();

  struct Counters {
    u64 requests_out = 0;
    u64 replies_in = 0;
    u64 flows_opened = 0;
    u64 flows_expired = 0;
    u64 flows_evicted = 0;
    u64 unsolicited_replies = 0;  // from an address this flow never pinged (delivered)
    u64 dropped_not_echo_request = 0;
    u64 dropped_bad_source = 0;
    u64 dropped_broadcast = 0;
    u64 dropped_no_target = 0;
    u64 dropped_bad_target = 0;
    u64 dropped_no_ping_socket = 0;  // the host refused (or recently refused) a ping socket
    u64 dropped_host_send = 0;
    u64 dropped_bad_reply = 0;  // shorter than an ICMP header, or not an echo reply
    u64 dropped_guest_unreachable = 0;
    u64 dropped_unknown_socket = 0;
    u64 host_errors = 0;
    u64 dropped_unexpected_event = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(requests_out), REEL_FIELD(replies_in), REEL_FIELD(flows_opened),
         REEL_FIELD(flows_expired), REEL_FIELD(flows_evicted), REEL_FIELD(unsolicited_replies),
         REEL_FIELD(dropped_not_echo_request), REEL_FIELD(dropped_bad_source), REEL_FIELD(dropped_broadcast),
         REEL_FIELD(dropped_no_target), REEL_FIELD(dropped_bad_target), REEL_FIELD(dropped_no_ping_socket),
         REEL_FIELD(dropped_host_send), REEL_FIELD(dropped_bad_reply), REEL_FIELD(dropped_guest_unreachable),
         REEL_FIELD(dropped_unknown_socket), REEL_FIELD(host_errors), REEL_FIELD(dropped_unexpected_event));
    }
  };
  const Counters& counters() const { return m_counters; }
  std::size_t flow_count() const { return m_flows.size(); }
  std::vector<std::string> describe_flows() const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_flows), REEL_FIELD(m_refused_until_ns), REEL_FIELD(m_wake_ns), REEL_FIELD(m_counters));
  }

 private:
  struct Peer {
    u32 host_ip = 0;
    u32 guest_ip = 0;  // the address the guest pinged
    u64 last_used_ns = 0;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(host_ip), REEL_FIELD(guest_ip), REEL_FIELD(last_used_ns));
    }
  };
  struct Flow {
    u32 guest_ip = 0;
    u16 identifier = 0;  // the guest's
    u64 last_active_ns = 0;
    u64 expires_ns = 0;
    std::vector<Peer> peers;
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(guest_ip), REEL_FIELD(identifier), REEL_FIELD(last_active_ns), REEL_FIELD(expires_ns),
         REEL_FIELD(peers));
    }
  };

  void bind_socket(SocketId socket);
  void on_socket_event(SocketId socket, const SocketEvent& event);
  void host_reply(Flow& flow, const SocketEvent& event);
  std::optional<SocketId> flow_for(u32 guest_ip, u16 identifier);
  void close_flow(SocketId socket);
  void set_expiry(Flow& flow, u64 expires_ns);

  GatewayLink& m_link;
  std::map<SocketId, Flow> m_flows;
  u64 m_refused_until_ns = 0;  // no socket_open() before this (0: none refused)
  u64 m_wake_ns = 0;
  Counters m_counters;
};

}  // namespace reel
