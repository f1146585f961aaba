// Arbitrary frames from the guest, host socket events and the passing of
// virtual time, interleaved, into the user-mode gateway and the services
// behind it (TCP and UDP NAT, ping, TFTP, port forwards): nothing may crash,
// read out of bounds or leak; every frame it sends back must parse (with
// correct IPv4, ICMP, UDP and TCP checksums); leases stay in range and one
// per MAC; a save/load round trip gives the same state.
//
// Input: one config byte (bit 0 restrict=on, bit 1 hostname/domainname/
// dnssearch/bootfile/tftp-server-name set, bit 2 a tftp= root, bit 3 two
// port forwards, bit 4 host sockets take at most 100 bytes per send), then
// records: a flags byte, a big-endian 16-bit length, and that many bytes.
// Flags bits 1-2 say what the record is: 0 or 3 a guest frame (bit 0:
// repair its IPv4/ICMP/UDP checksums first, so the fuzzer reaches what sits
// behind them), 1 a host socket event (kind, socket, peer port (2), then
// the data), 2 time passing (16-bit milliseconds).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/user_net.h"
#include "netstack/wire/checksum.h"
#include "netstack/wire/dhcp.h"
#include "netstack/wire/ethernet.h"
#include "netstack/wire/icmp.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "netstack/wire/udp.h"
#include "tests/fuzz/null_host_io.h"

namespace {

using namespace reel;
using namespace reel::wire;

void check(bool ok) {
  if (!ok) std::abort();
}

class Guest : public FramePort {
 public:
  void receive_frame(std::span<const u8> frame) override { got.emplace_back(frame.begin(), frame.end()); }
  std::string describe_port() const override { return "fuzz guest"; }
  void send(std::span<const u8> frame) { transmit(frame); }
  std::vector<std::vector<u8>> got;
};

void repair_checksums(std::vector<u8>& f) {
  const std::size_t off = kEthernetHeaderSize;
  if (f.size() < off + 20 || load_be16(&f[12]) != 0x0800) return;
  u8* ip = &f[off];
  const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
  if (ihl < 20 || off + ihl > f.size()) return;
  store_be16(ip + 10, 0);
  store_be16(ip + 10, internet_checksum(std::span<const u8>(ip, ihl)));
  const std::size_t total = std::min<std::size_t>(load_be16(ip + 2), f.size() - off);
  if (total < ihl) return;
  u8* l4 = ip + ihl;
  const std::size_t len = total - ihl;
  if (ip[9] == 1 && len >= 8) {
    store_be16(l4 + 2, 0);
    store_be16(l4 + 2, internet_checksum(std::span<const u8>(l4, len)));
  } else if (ip[9] == 17 && len >= 8) {
    const std::size_t ulen = std::min<std::size_t>(load_be16(l4 + 4), len);
    if (ulen < 8) return;
    store_be16(l4 + 6, 0);
    InternetChecksum c;
    c.add_ipv4_pseudo_header(load_be32(ip + 12), load_be32(ip + 16), 17, static_cast<u16>(ulen));
    c.add(std::span<const u8>(l4, ulen));
    u16 sum = c.checksum();
    store_be16(l4 + 6, sum == 0 ? 0xffff : sum);
  } else if (ip[9] == 6 && len >= 20) {
    store_be16(l4 + 16, 0);
    InternetChecksum c;
    c.add_ipv4_pseudo_header(load_be32(ip + 12), load_be32(ip + 16), 6, static_cast<u16>(len));
    c.add(std::span<const u8>(l4, len));
    store_be16(l4 + 16, c.checksum());
  }
}

// What the gateway sends must be well formed.
void check_output(std::span<const u8> frame) {
  const auto eth = EthernetFrame::parse(frame);
  check(eth.frame.has_value());
  if (eth->ether_type() != static_cast<u16>(EtherType::ipv4)) return;
  const auto ip = Ipv4Packet::parse(eth->payload());
  check(ip.packet.has_value());
  if (ip->protocol() == static_cast<u8>(IpProtocol::icmp)) {
    check(IcmpMessage::parse(ip->payload()).message.has_value());
  } else if (ip->protocol() == static_cast<u8>(IpProtocol::udp)) {
    if (ip->is_fragment()) return;  // large NAT datagrams leave in pieces
    const auto udp = UdpDatagram::parse(*ip);
    check(udp.datagram.has_value());
    if (udp->source_port() == kDhcpServerPort) check(DhcpMessage::parse(udp->payload()).has_value());
  } else if (ip->protocol() == static_cast<u8>(IpProtocol::tcp)) {
    check(TcpSegment::parse(*ip).segment.has_value());
  }
}

// Binary, not JSON: rapidjson's writer trips UBSan (an offset applied to
// its null stack on first use), which is not ours to fix here.
std::string save(UserNet& net) {
  std::ostringstream s;
  {
    BinaryOut ar(s);
    net.save_state(ar);
  }
  return s.str();
}

// A host socket event built from fuzz bytes, for a socket the services may
// or may not own.
SocketEvent host_event(std::span<const u8> b, fuzz::NullHostIO& host) {
  SocketEvent e;
  if (b.size() < 4) return e;
  e.kind = static_cast<SocketEvent::Kind>(b[0] % 8);
  e.socket = b[1] % (host.next_id() + 1);
  e.peer = SocketAddress{(b[0] & 0x80) ? 0x7f000035u : 0x7f000001u, load_be16(&b[2])};
  e.bytes.assign(b.begin() + 4, b.end());
  if (e.kind == SocketEvent::Kind::accepted) e.accepted = host.new_id();
  if (e.kind == SocketEvent::Kind::connect_failed || e.kind == SocketEvent::Kind::error) e.error = "fuzz";
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  UserNet::Config config;
  config.restrict = (data[0] & 1) != 0;
  if (data[0] & 2) {
    config.hostname = "guest";
    config.domainname = "example.org";
    config.dns_search = {"example.org", "a.example.org"};
    config.bootfile = "http://10.0.2.2/boot.efi";
    config.tftp_server_name = "10.0.2.2";
  }
  if (data[0] & 4) config.tftp_root = "/srv/tftp";
  if (data[0] & 8) {
    config.forwards.push_back(UserNetForward{false, "127.0.0.1", 5555, 0, 23});
    config.forwards.push_back(UserNetForward{true, "127.0.0.1", 5560, 0, 117});
  }
  config.resolver = "127.0.0.1:5353";
  // A small machine per input: the services register timers and socket
  // handlers with it, which must not outlive them.
  fuzz::NullHostIO host;
  host.take = (data[0] & 16) ? 100 : SIZE_MAX;
  Machine machine(MachineConfig{.ram_bytes = 1u << 20, .icount_shift = 0, .seed = 0}, host);
  Hub hub(0);
  UserNet net("user.0", machine, config);
  Guest guest;
  hub.attach(guest, "guest");
  hub.attach(net, "user.0");
  check(net.start_forwards().empty());

  std::size_t at = 1;
  while (at + 3 <= size) {
    const u8 flags = data[at];
    const std::size_t len = std::min<std::size_t>(load_be16(data + at + 1), size - at - 3);
    std::vector<u8> bytes(data + at + 3, data + at + 3 + len);
    at += 3 + len;
    guest.got.clear();
    switch ((flags >> 1) & 3) {
      case 1:
        machine.deliver_socket_event(host_event(bytes, host));
        break;
      case 2:
        if (bytes.size() >= 2) {
          machine.clock().advance_idle_to(machine.clock().now_ns() +
                                          u64{load_be16(bytes.data())} * 1'000'000);
          machine.scheduler().run_due(machine.clock().now_ns());
        }
        break;
      default:
        if (flags & 1) repair_checksums(bytes);
        guest.send(bytes);
        break;
    }
    for (const auto& out : guest.got) check_output(out);
  }

  std::set<MacAddress> macs;
  for (const auto& lease : net.leases()) {
    check(lease.address >= config.dhcp_start && lease.address < config.dhcp_start + UserNet::kLeaseCount);
    if (!lease.declined) check(macs.insert(lease.mac).second);
  }
  check(net.describe_port().starts_with("net="));
  (void)net.describe_state();

  const std::string before = save(net);
  UserNet copy("user.1", machine, config);
  {
    std::istringstream bin(before);
    BinaryIn in(bin);
    copy.load_state(in);
  }
  check(save(copy) == before);
  return 0;
}
