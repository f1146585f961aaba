#pragma once

#include <optional>
#include <span>
#include <string>

#include "core/types.h"
#include "netstack/user_net_config.h"

namespace reel {

class Machine;

// An IPv4 datagram the gateway sends toward the guest.
struct GatewayDatagram {
  u32 source = 0;       // host order (10.0.2.2 is 0x0a000202)
  u32 destination = 0;  // a guest address
  u8 protocol = 0;      // wire::IpProtocol
  u8 tos = 0;
  u8 ttl = 64;
  bool dont_fragment = false;
};

// What the services behind `-net user` (TCP and UDP NAT, DNS forwarding,
// TFTP, port forwards) need from the gateway that owns them: a way to the
// guest, the virtual clock and one shared timer, and the machine (for
// host() sockets and files, set_socket_handler, log). UserNet implements
// it; unit tests implement it with a fake that collects what is sent.
//
// Services keep all of their state in plain serializable values (socket
// ids, sequence numbers, buffers) so that the gateway's state hash covers
// them and a snapshot can be restored; socket handlers are re-registered
// with rebind_sockets() after a load.
class GatewayLink {
 public:
  virtual ~GatewayLink() = default;
  virtual Machine& machine() = 0;
  virtual const UserNetConfig& config() const = 0;
  virtual u64 now_ns() const = 0;

  // Sends one IPv4 datagram whose payload (the whole UDP/TCP/ICMP message,
  // its checksum already computed) is `payload`. Datagrams larger than
  // the guest's MTU (1500) are fragmented unless dont_fragment is set,
  // in which case they are dropped and counted. Returns false when the
  // guest's MAC is not known: the gateway then sends an ARP request and the
  // caller treats the datagram as lost (TCP retransmits; UDP drops).
  virtual bool send_to_guest(const GatewayDatagram& datagram, std::span<const u8> payload) = 0;

  // Room a service leaves in front of a message it builds for
  // send_to_guest_framed: Ethernet and IPv4 headers without options.
  static constexpr std::size_t kFrameHeadroom = 14 + 20;
  // send_to_guest for a payload already built at
  // frame[kFrameHeadroom, kFrameHeadroom + size): the gateway writes the
  // headers into the headroom instead of copying the payload into a frame
  // of its own, which on a bulk transfer is one copy of every byte less.
  virtual bool send_to_guest_framed(const GatewayDatagram& datagram, std::span<u8> frame, std::size_t size) {
    return send_to_guest(datagram, std::span<const u8>(frame).subspan(kFrameHeadroom, size));
  }

  // An ICMP error about `original` (the guest's IPv4 datagram, header
  // first), sent by the gateway with libslirp's rules (never about ICMP
  // errors, fragments after the first, broadcasts).
  virtual void send_icmp_error(std::span<const u8> original, u8 type, u8 code) = 0;

  // Asks for the owning service's on_timer(now) at virtual time
  // `deadline_ns` or soon after. Services keep their own deadlines and may
  // be woken early or more than once; they must act only on what is due.
  virtual void wake_at(u64 deadline_ns) = 0;

  // Where a guest flow to destination:port goes on the host: the gateway
  // address (10.0.2.2) is the host's 127.0.0.1, the DNS address's port 53
  // is the resolver, other addresses are themselves. nullopt when the flow
  // may not leave (restrict=on, the DNS address on another port, an
  // address inside the virtual network that is not the gateway's).
  struct HostTarget {
    std::string host;  // dotted quad
    u16 port = 0;
  };
  virtual std::optional<HostTarget> host_target(u32 destination, u16 port) = 0;
  // The reverse, for connections and datagrams arriving from the host
  // (port forwards): the address the guest sees them come from
  // (127.0.0.1 and other loopback addresses become the gateway address).
  virtual u32 guest_visible_source(u32 host_ip) const = 0;

  // A line for the user ("reel: ..."), at a deterministic point.
  virtual void log(const std::string& line) = 0;
};

}  // namespace reel
