// The network guests (netinfo, netpeer) under qemu-system-i386, the oracle
// for the NE2000 driver and the IPv4 kit before reel's own NE2000 runs them:
// pairs over a socket listen/connect link, three guests on a multicast
// hub, a guest with two NICs on two VLANs, the ISA card on an isapc, and a
// server restarted under a pinging client. Every guest must exit through
// isa-debug-exit with code 0 (status 1) and print the expected lines.
// Skipped with a message when QEMU is not on PATH (and the multicast cases
// when multicast does not loop back on 127.0.0.1 here). Ports are free
// ones on 127.0.0.1 picked at run time; a hung guest is killed, failing
// the test instead of blocking ctest.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{90000};  // the guests give up after timeout=40 s themselves

class NetGuestsUnderQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    m_qemu = find_on_path("qemu-system-i386");
    if (m_qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH; network guests not checked under QEMU";
    for (const char* guest : {"netpeer", "netinfo"}) {
      if (access(guest_path(guest).c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built: " << guest_path(guest);
    }
  }

  // qemu-system-i386 running `guest` with `append`, then `machine` (NICs,
  // backends, -M).
  BackgroundProcess start(const std::string& guest, const std::string& append,
                          const std::vector<std::string>& machine) {
    std::vector<std::string> argv = {m_qemu,    "-display",      "none",    "-serial", "stdio", "-no-reboot",
                                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel",
                                     guest_path(guest), "-append", append};
    argv.insert(argv.end(), machine.begin(), machine.end());
    return spawn_process(argv);
  }

  void skip_unless_multicast(int port) {
    if (!multicast_loops_back(port))
      GTEST_SKIP() << "multicast to 230.0.0.1 does not loop back through 127.0.0.1 on this machine";
  }

  std::string m_qemu;
};

TEST_F(NetGuestsUnderQemu, NetinfoSelfTestOnTwoPciCardsAndTheIsaCard) {
  BackgroundProcess pci = start("netinfo", "", {"-net", "nic,model=ne2k_pci,macaddr=" + mac(1), "-net",
                                                "nic,model=ne2k_pci,macaddr=" + mac(2)});
  const ProcessResult p = wait_process(pci, kGuestTimeout);
  EXPECT_EQ(p.status, 1) << describe(p);
  EXPECT_TRUE(has_lines_in_order(
      p.out, {"netinfo: 2 card(s)", "nic0: ne2k_pci 00:03.0 io c000 irq 11",
              "nic0: mac 52:54:00:00:00:01, 16-bit card, word transfers, tx page 40, ring 46-80",
              "nic0: self-test ok", "nic0: ring self-test ok", "nic0: transmit ok, completion interrupt seen",
              "nic1: mac 52:54:00:00:00:02, 16-bit card, word transfers, tx page 40, ring 46-80",
              "nic1: self-test ok", "nic1: ring self-test ok", "nic1: transmit ok, completion interrupt seen",
              "netinfo: ok"}))
      << describe(p);

  BackgroundProcess isa = start("netinfo", "width=8", {"-M", "isapc", "-net", "nic,model=ne2k_isa,macaddr=" + mac(3)});
  const ProcessResult i = wait_process(isa, kGuestTimeout);
  EXPECT_EQ(i.status, 1) << describe(i);
  EXPECT_TRUE(has_lines_in_order(
      i.out, {"netinfo: 1 card(s)", "nic0: ne2k_isa io 300 irq 9",
              "nic0: mac 52:54:00:00:00:03, 16-bit card, byte transfers, tx page 40, ring 46-80",
              "nic0: self-test ok",
              "ne2000: bad receive header at page 48 (status 01 next 00 count 64, curr 49); receiver reset",
              "nic0: ring self-test ok", "nic0: transmit ok, completion interrupt seen", "netinfo: ok"}))
      << describe(i);
}

// Scenario 1: two guests ping each other over a socket listen/connect link
// and finish with the done handshake.
TEST_F(NetGuestsUnderQemu, TwoPeersOverSocketPingEachOther) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess a = start("netpeer", "ip=10.0.2.15 peer=10.0.2.16 count=4 wait=2000 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(1), "-net", "socket,listen=" + link});
  ASSERT_TRUE(wait_listening(port, a)) << describe(stop_process(a));
  BackgroundProcess b = start("netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=4 wait=2000 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  const ProcessResult rb = wait_process(b, kGuestTimeout);
  const ProcessResult ra = wait_process(a, kGuestTimeout);
  EXPECT_EQ(ra.status, 1) << describe(ra);
  EXPECT_EQ(rb.status, 1) << describe(rb);

  std::vector<std::string> want_a = {"net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:01 16-bit",
                                     "net: nic0 ip 10.0.2.15/24", "netpeer: role peer, 4 pings to each of 1 peer(s)",
                                     "arp 10.0.2.16 is 52:54:00:00:00:02"};
  for (const auto& l : ping_lines("10.0.2.16", 4)) want_a.push_back(l);
  want_a.insert(want_a.end(), {"peer 10.0.2.16: finished", "netpeer: ok"});
  EXPECT_TRUE(has_lines_in_order(ra.out, want_a)) << describe(ra);
  // Nothing timing-dependent: the whole output is exactly these lines.
  EXPECT_EQ(lines_of(ra.out).size(), want_a.size()) << describe(ra);

  std::vector<std::string> want_b = {"net: nic0 ip 10.0.2.16/24", "arp 10.0.2.15 is 52:54:00:00:00:01"};
  for (const auto& l : ping_lines("10.0.2.15", 4)) want_b.push_back(l);
  want_b.insert(want_b.end(), {"peer 10.0.2.15: finished", "netpeer: ok"});
  EXPECT_TRUE(has_lines_in_order(rb.out, want_b)) << describe(rb);
}

// Scenario 2: three guests on one multicast hub, each pinging the other two.
TEST_F(NetGuestsUnderQemu, ThreePeersOverMulticastPingEachOther) {
  const int port = free_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  skip_unless_multicast(port);
  const std::string hub = "socket,mcast=230.0.0.1:" + std::to_string(port) + ",localaddr=127.0.0.1";
  const std::vector<std::string> ips = {"10.0.2.11", "10.0.2.12", "10.0.2.13"};
  std::vector<BackgroundProcess> guests;
  for (int i = 0; i < 3; ++i) {
    std::string peers;
    for (int j = 0; j < 3; ++j) {
      if (j != i) peers += (peers.empty() ? "" : ",") + ips[j];
    }
    guests.push_back(start("netpeer", "ip=" + ips[i] + " peer=" + peers + " count=3 wait=2000 timeout=40",
                           {"-net", "nic,model=ne2k_pci,macaddr=" + mac(i + 1), "-net", hub}));
  }
  for (int i = 0; i < 3; ++i) {
    const ProcessResult r = wait_process(guests[i], kGuestTimeout);
    EXPECT_EQ(r.status, 1) << ips[i] << "\n" << describe(r);
    std::vector<std::string> want = {"net: nic0 ip " + ips[i] + "/24",
                                     "netpeer: role peer, 3 pings to each of 2 peer(s)"};
    for (int j = 0; j < 3; ++j) {
      if (j == i) continue;
      want.push_back("arp " + ips[j] + " is " + mac(j + 1));
      for (const auto& l : ping_lines(ips[j], 3)) want.push_back(l);
    }
    for (int j = 0; j < 3; ++j) {
      if (j != i) want.push_back("peer " + ips[j] + ": finished");
    }
    want.push_back("netpeer: ok");
    EXPECT_TRUE(has_lines_in_order(r.out, want)) << ips[i] << "\n" << describe(r);
  }
}

// Scenario 3: one guest with two NICs, each on its own VLAN (socket link)
// leading to a different peer; broadcasts must never cross over.
TEST_F(NetGuestsUnderQemu, TwoNicsOnTwoVlansStayIsolated) {
  const int port0 = free_port(SOCK_STREAM), port1 = free_port(SOCK_STREAM);
  ASSERT_GT(port0, 0);
  ASSERT_GT(port1, 0);
  ASSERT_NE(port0, port1);
  const std::string link0 = "127.0.0.1:" + std::to_string(port0), link1 = "127.0.0.1:" + std::to_string(port1);
  BackgroundProcess x = start(
      "netpeer", "ip0=10.0.2.15 ip1=10.0.3.15 peer=10.0.2.16,10.0.3.16 isolate=1 count=3 wait=2000 timeout=40",
      {"-netdev", "socket,id=vlan0,listen=" + link0, "-device", "ne2k_pci,netdev=vlan0,mac=" + mac(1), "-netdev",
       "socket,id=vlan1,listen=" + link1, "-device", "ne2k_pci,netdev=vlan1,mac=" + mac(0x11)});
  ASSERT_TRUE(wait_listening(port0, x) && wait_listening(port1, x)) << describe(stop_process(x));
  BackgroundProcess y = start("netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=3 wait=2000 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(2), "-net", "socket,connect=" + link0});
  BackgroundProcess z = start("netpeer", "ip=10.0.3.16 peer=10.0.3.15 count=3 wait=2000 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(0x12), "-net", "socket,connect=" + link1});
  const ProcessResult rx = wait_process(x, kGuestTimeout);
  const ProcessResult ry = wait_process(y, kGuestTimeout);
  const ProcessResult rz = wait_process(z, kGuestTimeout);
  EXPECT_EQ(rx.status, 1) << describe(rx);
  EXPECT_EQ(ry.status, 1) << describe(ry);
  EXPECT_EQ(rz.status, 1) << describe(rz);

  std::vector<std::string> want = {"net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:01 16-bit",
                                   "net: nic1 ne2k_pci 00:04.0 io c100 irq 11 mac 52:54:00:00:00:11 16-bit",
                                   "net: nic0 ip 10.0.2.15/24", "net: nic1 ip 10.0.3.15/24",
                                   "arp 10.0.2.16 is 52:54:00:00:00:02"};
  for (const auto& l : ping_lines("10.0.2.16", 3)) want.push_back(l);
  want.push_back("arp 10.0.3.16 is 52:54:00:00:00:12");
  for (const auto& l : ping_lines("10.0.3.16", 3)) want.push_back(l);
  want.insert(want.end(), {"peer 10.0.2.16: finished", "peer 10.0.3.16: finished",
                           "isolation nic0: peer broadcasts seen, nothing from other VLANs",
                           "isolation nic1: peer broadcasts seen, nothing from other VLANs", "netpeer: ok"});
  EXPECT_TRUE(has_lines_in_order(rx.out, want)) << describe(rx);
  EXPECT_TRUE(has_lines_in_order(ry.out, {"ping 10.0.2.15: 3/3 replies, rtt ok", "netpeer: ok"})) << describe(ry);
  EXPECT_TRUE(has_lines_in_order(rz.out, {"ping 10.0.3.15: 3/3 replies, rtt ok", "netpeer: ok"})) << describe(rz);
}

// The isolation check has teeth: with both NICs on one multicast hub the
// two-NIC guest sees its own other card and the other VLAN's peer.
TEST_F(NetGuestsUnderQemu, BridgedVlansAreReportedAsLeaking) {
  const int port = free_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  skip_unless_multicast(port);
  const std::string hub = "socket,mcast=230.0.0.1:" + std::to_string(port) + ",localaddr=127.0.0.1";
  BackgroundProcess x =
      start("netpeer", "ip0=10.0.2.15 ip1=10.0.3.15 peer=10.0.2.16,10.0.3.16 isolate=1 count=2 timeout=40",
            {"-netdev", hub + ",id=vlan0", "-device", "ne2k_pci,netdev=vlan0,mac=" + mac(1), "-netdev",
             hub + ",id=vlan1", "-device", "ne2k_pci,netdev=vlan1,mac=" + mac(0x11)});
  BackgroundProcess y = start("netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=2 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(2), "-net", hub});
  BackgroundProcess z = start("netpeer", "ip=10.0.3.16 peer=10.0.3.15 count=2 timeout=40",
                              {"-net", "nic,model=ne2k_pci,macaddr=" + mac(0x12), "-net", hub});
  const ProcessResult rx = wait_process(x, kGuestTimeout);
  const ProcessResult ry = wait_process(y, kGuestTimeout);
  const ProcessResult rz = wait_process(z, kGuestTimeout);
  EXPECT_EQ(rx.status, 7) << "netpeer fails with code 3 (status 7)\n" << describe(rx);
  EXPECT_TRUE(has_lines_in_order(rx.out, {"netpeer: FAIL VLAN isolation"})) << describe(rx);
  EXPECT_NE(rx.out.find("frame(s) from outside its VLAN"), std::string::npos) << describe(rx);
  // The peers finish or give up on their own (the failing guest may exit
  // before acknowledging their done): either way they end, not hang.
  EXPECT_TRUE(ry.status == 1 || ry.status == 7) << describe(ry);
  EXPECT_TRUE(rz.status == 1 || rz.status == 7) << describe(rz);
}

// Scenario 4: the ISA card on an isapc: one guest names it (nic=isa io=
// irq=), the other finds it after an empty PCI scan and moves bytes 8 bits
// at a time.
TEST_F(NetGuestsUnderQemu, IsaCardsOnIsapcPingEachOther) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess a =
      start("netpeer", "nic=isa io=0x300 irq=9 ip=10.0.2.15 peer=10.0.2.16 count=3 wait=2000 timeout=40",
            {"-M", "isapc", "-net", "nic,model=ne2k_isa,macaddr=" + mac(1), "-net", "socket,listen=" + link});
  ASSERT_TRUE(wait_listening(port, a)) << describe(stop_process(a));
  BackgroundProcess b =
      start("netpeer", "ip=10.0.2.16 peer=10.0.2.15 width=8 count=3 wait=2000 timeout=40",
            {"-M", "isapc", "-net", "nic,model=ne2k_isa,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  const ProcessResult rb = wait_process(b, kGuestTimeout);
  const ProcessResult ra = wait_process(a, kGuestTimeout);
  EXPECT_EQ(ra.status, 1) << describe(ra);
  EXPECT_EQ(rb.status, 1) << describe(rb);
  std::vector<std::string> want_a = {"net: nic0 ne2k_isa io 300 irq 9 mac 52:54:00:00:00:01 16-bit",
                                     "net: nic0 ip 10.0.2.15/24", "arp 10.0.2.16 is 52:54:00:00:00:02"};
  for (const auto& l : ping_lines("10.0.2.16", 3)) want_a.push_back(l);
  want_a.insert(want_a.end(), {"peer 10.0.2.16: finished", "netpeer: ok"});
  EXPECT_TRUE(has_lines_in_order(ra.out, want_a)) << describe(ra);
  std::vector<std::string> want_b = {"net: nic0 ne2k_isa io 300 irq 9 mac 52:54:00:00:00:02 16-bit byte-mode",
                                     "net: nic0 ip 10.0.2.16/24", "arp 10.0.2.15 is 52:54:00:00:00:01"};
  for (const auto& l : ping_lines("10.0.2.15", 3)) want_b.push_back(l);
  want_b.insert(want_b.end(), {"peer 10.0.2.15: finished", "netpeer: ok"});
  EXPECT_TRUE(has_lines_in_order(rb.out, want_b)) << describe(rb);
}

// Scenario 6's guest side: a client that needs 12 replies keeps pinging
// (with timeouts) while its server is killed and booted again, and both
// finish. A multicast hub stands in for reel's reconnecting socket backend
// (QEMU's connect= side does not reconnect).
TEST_F(NetGuestsUnderQemu, ClientRecoversWhenTheServerRestarts) {
  const int port = free_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  skip_unless_multicast(port);
  const std::string hub = "socket,mcast=230.0.0.1:" + std::to_string(port) + ",localaddr=127.0.0.1";
  const std::vector<std::string> server_nic = {"-net", "nic,model=ne2k_pci,macaddr=" + mac(1), "-net", hub};
  const std::string server_args = "ip=10.0.2.15 peer=10.0.2.16 role=server timeout=40";
  BackgroundProcess server = start("netpeer", server_args, server_nic);
  BackgroundProcess client =
      start("netpeer", "ip=10.0.2.16 peer=10.0.2.15 role=client count=12 interval=200 wait=500 timeout=40",
            {"-net", "nic,model=ne2k_pci,macaddr=" + mac(2), "-net", hub});
  bool saw_third = false;
  for (int i = 0; i < 1500 && !saw_third; ++i) {
    saw_third = output_so_far(client).find("seq=3 ok") != std::string::npos;
    if (!saw_third) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(saw_third) << describe(stop_process(client));
  stop_process(server);
  std::this_thread::sleep_for(milliseconds(1500));
  BackgroundProcess again = start("netpeer", server_args, server_nic);
  const ProcessResult rc = wait_process(client, kGuestTimeout);
  const ProcessResult rs = wait_process(again, kGuestTimeout);
  EXPECT_EQ(rc.status, 1) << describe(rc);
  EXPECT_EQ(rs.status, 1) << describe(rs);
  EXPECT_NE(rc.out.find(" timeout"), std::string::npos) << "no ping was lost while the server was away\n"
                                                         << describe(rc);
  EXPECT_TRUE(has_lines_in_order(rc.out, {"netpeer: role client, 12 pings to each of 1 peer(s)",
                                          "ping 10.0.2.15 seq=3 ok", "ping 10.0.2.15: 12/12 replies, rtt ok",
                                          "peer 10.0.2.15: finished", "netpeer: ok"}))
      << describe(rc);
  EXPECT_TRUE(has_lines_in_order(rs.out, {"netpeer: role server, answering 1 peer(s)", "peer 10.0.2.16: finished",
                                          "netpeer: ok"}))
      << describe(rs);
}

}  // namespace
}  // namespace reel::test
