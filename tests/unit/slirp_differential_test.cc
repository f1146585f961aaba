// reel's -net user gateway against libslirp (QEMU's user-mode network, the
// behaviour reel's users know), in one process: both stacks get the same
// guest frames and their answers are compared field by field. The IPv4
// identification (and so the header checksum) is the only field allowed to
// differ: each stack numbers its datagrams from its own counter.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/user_net.h"
#include "tests/unit/fake_host_io.h"
#include "tests/unit/guest_frames.h"

#ifdef REEL_HAVE_LIBSLIRP
#include <slirp/libslirp.h>

// libslirp 4.7 keeps a TFTP session's glib allocations past
// slirp_cleanup(); that leak is the oracle's, not reel's.
extern "C" const char* __lsan_default_suppressions() { return "leak:libslirp.so\nleak:libglib-2.0.so\n"; }
#endif

namespace reel {
namespace {

using namespace reel::wire;
using namespace reel::test::frames;
using Frames = std::vector<std::vector<u8>>;

#ifdef REEL_HAVE_LIBSLIRP

// libslirp with QEMU's defaults for -net user, time standing still.
class Libslirp {
 public:
  explicit Libslirp(const std::string& tftp_root = {}) : m_tftp_root(tftp_root) {
    SlirpConfig cfg{};
    if (!m_tftp_root.empty()) cfg.tftp_path = m_tftp_root.c_str();
    cfg.version = 3;
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.in6_enabled = false;
    m_callbacks.send_packet = [](const void* buf, size_t len, void* opaque) -> ssize_t {
      auto* self = static_cast<Libslirp*>(opaque);
      const auto* p = static_cast<const u8*>(buf);
      self->m_got.emplace_back(p, p + len);
      return static_cast<ssize_t>(len);
    };
    m_callbacks.guest_error = [](const char*, void*) {};
    m_callbacks.clock_get_ns = [](void*) -> int64_t { return 1'000'000'000; };
    m_callbacks.timer_new = [](SlirpTimerCb, void*, void*) -> void* { return new int(0); };
    m_callbacks.timer_free = [](void* t, void*) { delete static_cast<int*>(t); };
    m_callbacks.timer_mod = [](void*, int64_t, void*) {};
    m_callbacks.register_poll_fd = [](int, void*) {};
    m_callbacks.unregister_poll_fd = [](int, void*) {};
    m_callbacks.notify = [](void*) {};
    m_slirp = slirp_new(&cfg, &m_callbacks, this);
  }
  ~Libslirp() {
    if (m_slirp) slirp_cleanup(m_slirp);
  }
  Frames exchange(std::span<const u8> frame) {
    m_got.clear();
    slirp_input(m_slirp, frame.data(), static_cast<int>(frame.size()));
    return std::exchange(m_got, {});
  }
  bool ok() const { return m_slirp != nullptr; }

 private:
  std::string m_tftp_root;
  SlirpCb m_callbacks{};
  Slirp* m_slirp = nullptr;
  Frames m_got;
};

// reel's gateway alone on a hub with a test port playing the guest.
class Reel {
 public:
  explicit Reel(const UserNetConfig& config = {})
      : m_machine(MachineConfig{}, m_host), m_hub(0), m_net("user.0", m_machine, config) {
    m_hub.attach(m_guest, "guest");
    m_hub.attach(m_net, "user.0");
  }
  test::FakeHostIO& host() { return m_host; }
  Frames exchange(std::span<const u8> frame) {
    m_guest.got.clear();
    m_guest.send(frame);
    return std::exchange(m_guest.got, {});
  }

 private:
  test::FakeHostIO m_host;
  Machine m_machine;
  Hub m_hub;
  UserNet m_net;
  GuestPort m_guest;
};

// The name of the field at byte `at` of an Ethernet/IPv4 frame, for the
// failure message.
std::string field_at(const std::vector<u8>& f, std::size_t at) {
  if (at < 6) return "ethernet destination";
  if (at < 12) return "ethernet source";
  if (at < 14) return "ethertype";
  const u16 type = static_cast<u16>(f[12] << 8 | f[13]);
  if (type == 0x0806) return "ARP byte " + std::to_string(at - 14);
  if (type != 0x0800 || f.size() < 34) return "payload byte " + std::to_string(at - 14);
  static const char* const kIp[] = {
      "ip version/ihl", "ip tos",         "ip total length",   "ip total length",
      "ip id",          "ip id",          "ip flags/fragment", "ip flags/fragment",
      "ip ttl",         "ip protocol",    "ip checksum",       "ip checksum",
      "ip source",      "ip source",      "ip source",         "ip source",
      "ip destination", "ip destination", "ip destination",    "ip destination"};
  if (at < 34) return kIp[at - 14];
  const std::size_t l4 = at - 34;
  if (f[23] == 17) {
    if (l4 < 8) return "udp header byte " + std::to_string(l4);
    const std::size_t bootp = l4 - 8;
    if (bootp < 236) {
      static const std::pair<std::size_t, const char*> kBootp[] = {
          {0, "bootp op"},      {1, "bootp htype"},   {2, "bootp hlen"},    {3, "bootp hops"},
          {4, "bootp xid"},     {8, "bootp secs"},    {10, "bootp flags"},  {12, "bootp ciaddr"},
          {16, "bootp yiaddr"}, {20, "bootp siaddr"}, {24, "bootp giaddr"}, {28, "bootp chaddr"},
          {44, "bootp sname"},  {108, "bootp file"}};
      const char* name = "bootp";
      for (const auto& [off, n] : kBootp)
        if (bootp >= off) name = n;
      return name;
    }
    return "udp payload byte " + std::to_string(bootp) + " (DHCP options area)";
  }
  if (f[23] == 1) return "icmp byte " + std::to_string(l4);
  return "l4 byte " + std::to_string(l4);
}

void expect_same(const Frames& ours, const Frames& theirs, const std::string& what) {
  ASSERT_EQ(ours.size(), theirs.size())
      << what << ": reel sent " << ours.size() << " frames, libslirp " << theirs.size();
  for (std::size_t i = 0; i < ours.size(); ++i) {
    std::vector<u8> a = ours[i], b = theirs[i];
    // libslirp pads short frames to 60 bytes (if_encap); so does reel's ARP.
    if (a.size() >= 34 && a[12] == 0x08 && a[13] == 0x00) {
      for (std::size_t k : {18u, 19u, 24u, 25u}) a[k] = b.size() > k ? b[k] : 0;
    }
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t k = 0; k < n; ++k) {
      if (a[k] != b[k]) {
        ADD_FAILURE() << what << ", frame " << i << ": " << field_at(b, k) << " differs at byte " << k
                      << ": reel 0x" << std::hex << int{a[k]} << ", libslirp 0x" << int{b[k]} << std::dec;
        break;
      }
    }
    EXPECT_EQ(a.size(), b.size()) << what << ", frame " << i << ": length";
  }
}

class SlirpDifferential : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(slirp.ok()) << "slirp_new failed"; }
  // Both answer `frame` alike; `answers` is how many frames libslirp sends
  // (so that two silent stacks do not pass for agreement by accident).
  void both(std::span<const u8> frame, const std::string& what, std::size_t answers = 1) {
    const Frames theirs = slirp.exchange(frame);
    EXPECT_EQ(theirs.size(), answers) << what << ": libslirp's answer count changed; the test needs a look";
    expect_same(reel.exchange(frame), theirs, what);
  }
  Libslirp slirp;
  Reel reel;
};

// TFTP: libslirp serves a real directory; reel's gateway reads through its
// HostIO, here a fake holding the same file.
class SlirpTftpDifferential : public ::testing::Test {
 protected:
  SlirpTftpDifferential() : slirp(make_root()), reel(tftp_config()) {
    reel.host().files_root = "/tftp";
    reel.host().files["boot.bin"] = contents;
    reel.host().refused_names.insert("../etc/passwd");
  }
  ~SlirpTftpDifferential() override {
    std::remove((root + "/boot.bin").c_str());
    rmdir(root.c_str());
  }
  std::string make_root() {
    char dir[] = "/tmp/reel-tftp-XXXXXX";
    root = mkdtemp(dir);
    contents.resize(3000);
    for (std::size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<u8>(i * 31 + 7);
    FILE* f = std::fopen((root + "/boot.bin").c_str(), "wb");
    std::fwrite(contents.data(), 1, contents.size(), f);
    std::fclose(f);
    return root;
  }
  static UserNetConfig tftp_config() {
    UserNetConfig c;
    c.tftp_root = "/tftp";
    return c;
  }
  void both(std::span<const u8> frame, const std::string& what, std::size_t answers = 1) {
    const Frames theirs = slirp.exchange(frame);
    EXPECT_EQ(theirs.size(), answers) << what << ": libslirp's answer count changed; the test needs a look";
    expect_same(reel.exchange(frame), theirs, what);
  }
  std::vector<u8> tftp(u16 port, std::vector<u8> payload) {
    return udp_frame(kGuestIp, kHost, port, 69, payload, kGuestMac, kGatewayMac);
  }
  static std::vector<u8> rrq(const std::string& name, const std::vector<std::string>& options = {},
                             u16 opcode = 1) {
    std::vector<u8> p = {0, static_cast<u8>(opcode)};
    auto put = [&](const std::string& s) {
      p.insert(p.end(), s.begin(), s.end());
      p.push_back(0);
    };
    put(name);
    put("octet");
    for (const auto& o : options) put(o);
    return p;
  }
  static std::vector<u8> ack(u16 block) {
    return {0, 4, static_cast<u8>(block >> 8), static_cast<u8>(block)};
  }

  std::string root;
  std::vector<u8> contents;
  Libslirp slirp;
  Reel reel;
};

TEST_F(SlirpTftpDifferential, RrqWithOptionsThenBlocks) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP");
  both(tftp(2000, rrq("boot.bin", {"blksize", "1024", "tsize", "0"})), "RRQ blksize 1024 tsize 0 (OACK)");
  both(tftp(2000, ack(0)), "ACK 0 (DATA 1)");
  both(tftp(2000, ack(1)), "ACK 1 (DATA 2)");
  both(tftp(2000, ack(2)), "ACK 2 (DATA 3, the short last block)");
}

TEST_F(SlirpTftpDifferential, RrqWithoutOptionsAndOversizedBlksize) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP");
  both(tftp(2001, rrq("boot.bin")), "RRQ without options (DATA 1 of 512)");
  both(tftp(2002, rrq("boot.bin", {"blksize", "1468"})), "RRQ blksize 1468 (capped)");
}

TEST_F(SlirpTftpDifferential, Errors) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP");
  both(tftp(2003, rrq("missing.bin")), "RRQ for a missing file");
  both(tftp(2004, rrq("../etc/passwd")), "RRQ leaving the root");
  // The one deliberate difference: libslirp ignores a WRQ, leaving the
  // client to time out; reel answers at once with RFC 1350's error 4.
  EXPECT_TRUE(slirp.exchange(tftp(2005, rrq("boot.bin", {}, 2))).empty());
  const Frames wrq = reel.exchange(tftp(2005, rrq("boot.bin", {}, 2)));
  ASSERT_EQ(wrq.size(), 1u);
  const auto eth = EthernetFrame::parse(wrq[0]);
  ASSERT_TRUE(eth);
  const auto ip = Ipv4Packet::parse(eth->payload());
  ASSERT_TRUE(ip);
  const auto udp = UdpDatagram::parse(*ip);
  ASSERT_TRUE(udp);
  ASSERT_GE(udp->payload().size(), 4u);
  EXPECT_EQ(udp->payload()[1], 5);  // ERROR
  EXPECT_EQ(udp->payload()[3], 4);  // illegal TFTP operation
  both(tftp(2006, rrq(std::string(600, 'a'))), "RRQ with a 600-byte name");
}

TEST_F(SlirpDifferential, ArpForTheGatewayAndDns) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP who-has 10.0.2.2");
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kDns), "ARP who-has 10.0.2.3");
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, 0x0a000209), "ARP who-has 10.0.2.9", 0);
}

TEST_F(SlirpDifferential, DhcpDiscoverAndRequest) {
  ClientMessage c;
  c.parameters = {1, 3, 6, 12, 15, 28, 42, 51, 54, 119};
  both(dhcp_frame(c), "DHCPDISCOVER");
  c.type = DhcpMessageType::request;
  c.requested = kGuestIp;
  c.server_id = kHost;
  both(dhcp_frame(c), "DHCPREQUEST");
  // A second client gets the next address from both.
  ClientMessage d;
  d.mac = kGuest2Mac;
  d.xid = 0x01020304;
  both(dhcp_frame(d), "DHCPDISCOVER from a second MAC");
}

TEST_F(SlirpDifferential, DhcpWithoutParameterList) {
  ClientMessage c;
  both(dhcp_frame(c), "DHCPDISCOVER without option 55");
}

TEST_F(SlirpDifferential, EchoToTheGatewayAndDns) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP");
  std::vector<u8> data(56);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<u8>(i);
  both(ping_frame(kGuestIp, kHost, 0x1234, 1, data), "ICMP echo to 10.0.2.2");
  both(ping_frame(kGuestIp, kDns, 0x1234, 2, data, kDnsMac), "ICMP echo to 10.0.2.3");
  both(ping_frame(kGuestIp, kHost, 0x1234, 3, {}), "ICMP echo without data");
}

TEST_F(SlirpDifferential, BadInputIsDroppedByBoth) {
  both(arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost), "ARP");
  // UDP from 0.0.0.0:0 (a libslirp CVE).
  both(udp_frame(0, kHost, 0, 9, std::vector<u8>(4), kGuestMac, kGatewayMac), "UDP from 0.0.0.0:0", 0);
  // An ARP frame cut short.
  auto arp = arp_frame(ArpOperation::request, kGuestMac, kGuestIp, kHost);
  arp.resize(30);
  both(arp, "truncated ARP", 0);
}

#else

TEST(SlirpDifferential, NeedsLibslirp) {
  GTEST_SKIP() << "libslirp-dev is not installed (scripts/setup.sh installs it)";
}

#endif

}  // namespace
}  // namespace reel
