#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/component.h"
#include "core/frame_port.h"
#include "core/scheduler.h"
#include "core/state_archive.h"
#include "core/types.h"
#include "netstack/gateway_link.h"
#include "netstack/ipv4_reassembly.h"
#include "netstack/ping_nat.h"
#include "netstack/port_forwards.h"
#include "netstack/tcp_nat.h"
#include "netstack/tftp_server.h"
#include "netstack/udp_nat.h"
#include "netstack/user_net_config.h"
#include "netstack/wire/ethernet.h"

namespace reel {

class Machine;

namespace wire {
class Ipv4Packet;
struct Ipv4Fields;
class UdpDatagram;
class DhcpMessage;
}  // namespace wire

// `-net user`: the gateway of QEMU's user-mode network, as a port on a VLAN
// hub. It answers ARP for the gateway and DNS addresses, checks and
// reassembles IPv4 input, answers ICMP echo to those addresses, runs the
// DHCP server, and hands everything else to the services behind it (TCP and
// UDP NAT, ping, TFTP, port forwards), for which it is the GatewayLink. All
// of them reach the host only through HostIO, so the stack itself runs in
// replay: a bug in it reproduces there.
class UserNet : public Component, public FramePort, public GatewayLink {
 public:
  using Config = UserNetConfig;

  // libslirp's sizes: 16 ARP entries (round-robin replacement) and 16
  // leases, one per address from dhcp_start up.
  static constexpr std::size_t kArpTableSize = 16;
  static constexpr std::size_t kLeaseCount = 16;
  static constexpr u32 kLeaseSeconds = 86400;
  // libslirp pads every BOOTP reply to a 548-byte payload (312-byte vendor area).
  static constexpr std::size_t kDhcpReplySize = 548;

  UserNet(std::string name, Machine& machine, Config config);
  ~UserNet() override;

  void receive_frame(std::span<const u8> frame) override;

  // GatewayLink: what the services behind the gateway use.
  Machine& machine() override { return m_machine; }
  const UserNetConfig& config() const override { return m_config; }
  u64 now_ns() const override;
  bool send_to_guest(const GatewayDatagram& datagram, std::span<const u8> payload) override;
  bool send_to_guest_framed(const GatewayDatagram& datagram, std::span<u8> frame, std::size_t size) override;
  void send_icmp_error(std::span<const u8> original, u8 type, u8 code) override;
  void wake_at(u64 deadline_ns) override;
  std::optional<HostTarget> host_target(u32 destination, u16 port) override;
  u32 guest_visible_source(u32 host_ip) const override;
  void log(const std::string& line) override;
  // QEMU 0.x's `info network` line: "net=10.0.2.0, restricted=n".
  std::string describe_port() const override;
  // The gateway is outside the guest: like QEMU's slirp it keeps its ARP
  // table and leases across a guest reset.
  void reset() override {}
  REEL_COMPONENT_STATE

  // 52:55 followed by the address, as libslirp names its virtual hosts.
  static wire::MacAddress mac_for(u32 address);

  struct Counters {
    u64 frames_in = 0;
    u64 frames_out = 0;
    // Ethernet
    u64 dropped_not_for_us = 0;  // unicast to another MAC, or multicast
    u64 dropped_bad_ethernet = 0;
    u64 dropped_vlan_tagged = 0;
    u64 dropped_ethertype = 0;  // neither ARP nor IPv4 (IPv6 included, for now)
    // ARP
    u64 arp_replies = 0;
    u64 arp_gratuitous = 0;
    u64 arp_ignored = 0;  // a request for an address that is not ours
    u64 dropped_bad_arp = 0;
    // IPv4
    u64 dropped_ipv4_malformed = 0;  // short, bad version/IHL/length/options
    u64 dropped_ipv4_checksum = 0;
    u64 dropped_ipv4_fragment = 0;  // refused by the reassembler (its own counters say why)
    u64 dropped_ttl_expired = 0;    // TTL 0 on arrival (time exceeded sent)
    u64 dropped_ip_protocol = 0;    // neither ICMP, UDP nor TCP
    u64 dropped_restricted = 0;     // restrict=on and not for the gateway itself
    u64 dropped_unroutable = 0;     // a reply to a sender with no usable address (0.0.0.0)
    u64 dropped_no_arp = 0;         // to a guest address not in the ARP table (a request went out)
    u64 dropped_too_big_df = 0;     // larger than the MTU with DF set
    u64 fragments_out = 0;          // fragments of datagrams larger than the MTU
    // ICMP
    u64 icmp_echo_replies = 0;
    u64 icmp_errors_sent = 0;
    u64 dropped_bad_icmp = 0;      // short or bad checksum
    u64 dropped_icmp_ignored = 0;  // other ICMP types
    // UDP and TCP
    u64 dropped_bad_udp = 0;  // shorter than its header, bad length or checksum
    // DHCP
    u64 dhcp_offers = 0;
    u64 dhcp_acks = 0;
    u64 dhcp_naks = 0;
    u64 dhcp_informs = 0;
    u64 dhcp_releases = 0;
    u64 dhcp_declines = 0;
    u64 dropped_dhcp_malformed = 0;     // not a BOOTP/DHCP message the wire view accepts
    u64 dropped_dhcp_not_request = 0;   // op is not BOOTREQUEST, or not Ethernet
    u64 dropped_dhcp_unknown_type = 0;  // a message type a server does not take
    u64 dropped_dhcp_other_server = 0;  // REQUEST naming another server
    u64 dropped_dhcp_no_address = 0;    // all leases taken
    u64 dropped_dhcp_bad_release = 0;   // RELEASE of an address the client does not hold
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(frames_in), REEL_FIELD(frames_out), REEL_FIELD(dropped_not_for_us),
         REEL_FIELD(dropped_bad_ethernet), REEL_FIELD(dropped_vlan_tagged), REEL_FIELD(dropped_ethertype),
         REEL_FIELD(arp_replies), REEL_FIELD(arp_gratuitous), REEL_FIELD(arp_ignored),
         REEL_FIELD(dropped_bad_arp), REEL_FIELD(dropped_ipv4_malformed), REEL_FIELD(dropped_ipv4_checksum),
         REEL_FIELD(dropped_ipv4_fragment), REEL_FIELD(dropped_ttl_expired), REEL_FIELD(dropped_ip_protocol),
         REEL_FIELD(dropped_restricted), REEL_FIELD(dropped_unroutable), REEL_FIELD(icmp_echo_replies),
         REEL_FIELD(icmp_errors_sent), REEL_FIELD(dropped_bad_icmp), REEL_FIELD(dropped_icmp_ignored),
         REEL_FIELD(dropped_bad_udp), REEL_FIELD(dhcp_offers), REEL_FIELD(dhcp_acks), REEL_FIELD(dhcp_naks),
         REEL_FIELD(dhcp_informs), REEL_FIELD(dhcp_releases), REEL_FIELD(dhcp_declines),
         REEL_FIELD(dropped_dhcp_malformed), REEL_FIELD(dropped_dhcp_not_request),
         REEL_FIELD(dropped_dhcp_unknown_type), REEL_FIELD(dropped_dhcp_other_server),
         REEL_FIELD(dropped_dhcp_no_address), REEL_FIELD(dropped_dhcp_bad_release),
         REEL_FIELD(dropped_no_arp), REEL_FIELD(dropped_too_big_df), REEL_FIELD(fragments_out));
    }
  };
  const Counters& counters() const { return m_counters; }
  const Ipv4Reassembly& reassembly() const { return m_reassembly; }
  const TcpNat& tcp() const { return *m_tcp; }
  const UdpNat& udp() const { return *m_udp; }
  const PingNat& ping() const { return *m_ping; }
  const TftpServer& tftp() const { return *m_tftp; }

  // Binds the configured port forwards (hostfwd=, -redir). Returns "" or
  // the first rule's one-line error; the harness turns that into exit 2.
  std::string start_forwards();
  // The monitor's hostfwd_add / hostfwd_remove.
  std::string add_forward(const UserNetForward& rule) { return m_forwards.add(rule); }
  std::string remove_forward(bool udp, const std::string& host_address, u16 host_port) {
    return m_forwards.remove(udp, host_address, host_port);
  }
  const PortForwards& forwards() const { return m_forwards; }
  // `info usernet`: forwards, leases, the NAT's connections, one per line.
  std::vector<std::string> describe_state() const;
  // Re-registers host socket handlers after a state load.
  void rebind_sockets();

  struct ArpEntry {
    u32 ip = 0;  // 0: unused slot
    wire::MacAddress mac{};
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(ip), REEL_FIELD(mac));
    }
  };
  // Slots in table order (unused ones have ip 0).
  const std::array<ArpEntry, kArpTableSize>& arp_table() const { return m_arp; }
  std::optional<wire::MacAddress> arp_lookup(u32 ip) const;
  // The same without a copy, for the per-segment path: the entry (or the
  // broadcast address), valid until the table next changes; null if none.
  const wire::MacAddress* arp_find(u32 ip) const;
  // The guest's MAC for a datagram to it (as arp_find), or null after
  // counting the drop and sending an ARP request.
  const wire::MacAddress* guest_mac_or_ask(u32 destination);
  // The IPv4 header fields for a datagram (takes the next identification).
  wire::Ipv4Fields header_for(const GatewayDatagram& d);

  struct LeaseInfo {
    u32 address = 0;
    wire::MacAddress mac{};
    bool declined = false;  // a client said the address is in use: never offered again
  };
  // Allocated leases in address order.
  std::vector<LeaseInfo> leases() const;
  std::optional<u32> lease_for(const wire::MacAddress& mac) const;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_arp), REEL_FIELD(m_arp_next), REEL_FIELD(m_leases), REEL_FIELD(m_ip_id),
       REEL_FIELD(m_counters), REEL_FIELD(m_reassembly), REEL_FIELD(m_forwards),
       cereal::make_nvp("tcp", *m_tcp), cereal::make_nvp("udp", *m_udp), cereal::make_nvp("ping", *m_ping),
       cereal::make_nvp("tftp", *m_tftp), REEL_FIELD(m_resolver_host), REEL_FIELD(m_resolver_port),
       REEL_FIELD(m_resolver_known));
  }

 private:
  struct Lease {
    bool allocated = false;
    bool declined = false;
    wire::MacAddress mac{};
    template <class Archive>
    void serialize(Archive& ar) {
      ar(REEL_FIELD(allocated), REEL_FIELD(declined), REEL_FIELD(mac));
    }
  };

  bool is_local(u32 ip) const { return ip == m_config.host || ip == m_config.dns; }
  u32 broadcast_address() const { return m_config.network | ~m_config.netmask; }

  void arp_input(const wire::MacAddress& frame_source, std::span<const u8> payload);
  void arp_learn(u32 ip, const wire::MacAddress& mac);
  void ipv4_input(const wire::MacAddress& frame_source, std::span<const u8> payload);
  void ipv4_dispatch(const wire::Ipv4Packet& ip);
  void on_timer();
  void send_arp_request(u32 target);
  // The resolver DNS queries go to: the resolver= option, else the first
  // nameserver of the host's /etc/resolv.conf, read once through HostIO.
  std::optional<HostTarget> resolver();
  void icmp_input(const wire::Ipv4Packet& ip);
  void udp_input(const wire::Ipv4Packet& ip);
  void dhcp_input(const wire::UdpDatagram& udp);

  // Lease slots: the one `mac` holds, a free one, or the requested one.
  std::optional<std::size_t> slot_of(const wire::MacAddress& mac) const;
  std::optional<std::size_t> new_slot(const wire::MacAddress& mac) const;
  std::optional<std::size_t> requested_slot(u32 address, const wire::MacAddress& mac) const;
  u32 slot_address(std::size_t slot) const { return m_config.dhcp_start + static_cast<u32>(slot); }

  enum class DhcpReply : u8 { offer, ack, nak, inform_ack };
  void send_dhcp_reply(const wire::DhcpMessage& request, DhcpReply kind, u32 yiaddr);

  // Sends an IPv4 datagram whose payload already sits at out[34..]. The
  // Ethernet destination comes from the ARP table (broadcast for broadcast
  // addresses); unknown destinations are dropped, since every reply goes to
  // an address learnt from the frame it answers.
  struct IpOut {
    u32 source = 0;
    u32 destination = 0;
    u8 protocol = 0;
    u8 tos = 0;
    u8 ttl = 64;
    bool dont_fragment = false;
  };
  void send_ipv4(std::span<u8> frame, const IpOut& out, std::size_t payload_size);
  void send_icmp_error(const wire::Ipv4Packet& original, u8 type, u8 code);
  void send_ipv4_frame(const wire::MacAddress& dst, const wire::Ipv4Fields& f, std::span<const u8> payload);

  Machine& m_machine;
  Config m_config;
  std::array<ArpEntry, kArpTableSize> m_arp{};
  u32 m_arp_next = 0;  // round-robin victim
  std::array<Lease, kLeaseCount> m_leases{};
  u16 m_ip_id = 0;  // libslirp numbers its datagrams from one counter
  Counters m_counters;
  Ipv4Reassembly m_reassembly;
  Scheduler::TimerId m_timer = 0;  // shared by the services (wake_at); registered before them
  // The services behind the gateway, each with the gateway as its link.
  std::unique_ptr<TcpNat> m_tcp;
  std::unique_ptr<UdpNat> m_udp;
  std::unique_ptr<PingNat> m_ping;
  std::unique_ptr<TftpServer> m_tftp;
  PortForwards m_forwards;
  std::string m_resolver_host;  // empty: none found
  u16 m_resolver_port = 0;
  bool m_resolver_known = false;  // looked up already
};

}  // namespace reel
