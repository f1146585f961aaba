#pragma once

// Frames a guest would send to the -net user gateway, built with the wire/
// builders: shared by the gateway's unit tests and the differential test
// against libslirp, so both feed the same bytes.

#include <gtest/gtest.h>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/frame_port.h"
#include "netstack/wire/arp.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/udp.h"

namespace reel::test::frames {

using namespace reel::wire;

inline constexpr MacAddress kGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
inline constexpr MacAddress kGuest2Mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x57};
inline constexpr MacAddress kGatewayMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
inline constexpr MacAddress kDnsMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x03};
inline constexpr u32 kGuestIp = 0x0a00020f;
inline constexpr u32 kHost = 0x0a000202;
inline constexpr u32 kDns = 0x0a000203;

class GuestPort : public FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override { got.emplace_back(frame.begin(), frame.end()); }
  std::string describe_port() const override { return "test guest"; }
  void send(std::span<const u8> frame) { transmit(frame); }
  std::vector<std::vector<u8>> got;
};

inline std::vector<u8> ethernet(const MacAddress& dst, const MacAddress& src, EtherType type,
                                std::span<const u8> payload) {
  std::vector<u8> out(kEthernetHeaderSize + payload.size());
  EXPECT_TRUE(build_ethernet(out, dst, src, static_cast<u16>(type), payload));
  return out;
}

inline std::vector<u8> ipv4(const Ipv4Fields& f, std::span<const u8> payload) {
  std::vector<u8> out(20 + f.options.size() + payload.size());
  EXPECT_TRUE(build_ipv4(out, f, payload));
  return out;
}

inline Ipv4Fields ip_fields(u32 src, u32 dst, IpProtocol p) {
  Ipv4Fields f;
  f.source = src;
  f.destination = dst;
  f.protocol = static_cast<u8>(p);
  f.identification = 0x1234;
  return f;
}

inline std::vector<u8> arp_frame(ArpOperation op, const MacAddress& smac, u32 sip, u32 tip,
                                 const MacAddress& dst = kBroadcastMac) {
  ArpFields a;
  a.operation = op;
  a.sender_mac = smac;
  a.sender_ip = sip;
  a.target_ip = tip;
  std::vector<u8> p(kArpPacketSize);
  EXPECT_TRUE(build_arp(p, a));
  return ethernet(dst, smac, EtherType::arp, p);
}

inline std::vector<u8> ping_frame(u32 src, u32 dst, u16 id, u16 seq, std::span<const u8> data,
                                  const MacAddress& dmac = kGatewayMac) {
  std::vector<u8> icmp(kIcmpHeaderSize + data.size());
  EXPECT_TRUE(build_icmp_echo(icmp, IcmpType::echo_request, id, seq, data));
  return ethernet(dmac, kGuestMac, EtherType::ipv4, ipv4(ip_fields(src, dst, IpProtocol::icmp), icmp));
}

inline std::vector<u8> udp_frame(u32 src, u32 dst, u16 sport, u16 dport, std::span<const u8> payload,
                                 const MacAddress& smac = kGuestMac, const MacAddress& dmac = kBroadcastMac) {
  std::vector<u8> udp(kUdpHeaderSize + payload.size());
  EXPECT_TRUE(build_udp(udp, src, dst, sport, dport, payload));
  return ethernet(dmac, smac, EtherType::ipv4, ipv4(ip_fields(src, dst, IpProtocol::udp), udp));
}

struct ClientMessage {
  DhcpMessageType type = DhcpMessageType::discover;
  MacAddress mac = kGuestMac;
  u32 xid = 0xdeadbeef;
  u32 ciaddr = 0;
  std::optional<u32> requested;
  std::optional<u32> server_id;
  std::vector<u8> parameters;  // option 55
};

inline std::vector<u8> dhcp_payload(const ClientMessage& c) {
  std::vector<u8> out(300);
  DhcpReplyHeader h;
  h.xid = c.xid;
  h.ciaddr = c.ciaddr;
  std::copy(c.mac.begin(), c.mac.end(), h.chaddr.begin());
  DhcpReplyBuilder b(out, h);
  b.message_type(c.type);
  auto addr = [](u32 a) {
    return std::vector<u8>{static_cast<u8>(a >> 24), static_cast<u8>(a >> 16), static_cast<u8>(a >> 8),
                           static_cast<u8>(a)};
  };
  if (c.requested) b.raw_option(dhcp_option::requested_ip, addr(*c.requested));
  if (c.server_id) b.raw_option(dhcp_option::server_id, addr(*c.server_id));
  if (!c.parameters.empty()) b.raw_option(dhcp_option::parameter_request_list, c.parameters);
  EXPECT_TRUE(b.finish(300));
  out[0] = 1;  // BOOTREQUEST
  return out;
}

inline std::vector<u8> dhcp_frame(const ClientMessage& c) {
  const u32 src = c.type == DhcpMessageType::inform || c.type == DhcpMessageType::release ? c.ciaddr : 0;
  const u32 dst = c.type == DhcpMessageType::release ? kHost : 0xffffffff;
  return udp_frame(src, dst, kDhcpClientPort, kDhcpServerPort, dhcp_payload(c), c.mac);
}

}  // namespace reel::test::frames
