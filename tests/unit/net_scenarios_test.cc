// The network scenarios under reel itself, each guest recorded
// (`reel record`, which is also live) and then replayed with no sockets
// and compared: same serial output, same exit status, same final state
// hash. Two guests over a socket listen/connect link, three over
// multicast, one guest with two NICs on two VLANs, the ISA card on an
// isapc, a reel guest and a qemu-system-i386 guest on one VLAN, and a
// listener restarted under a connecting client that must reconnect. Ports
// are free ones on 127.0.0.1; a hung guest is killed and fails the test.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{90000};  // the guests give up after timeout=40 s themselves

struct Recorded {
  std::string name;
  std::string journal;
  BackgroundProcess process;
};

class NetScenarios : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* guest : {"netpeer", "netinfo"}) {
      if (access(guest_path(guest).c_str(), R_OK) != 0)
        GTEST_SKIP() << "guest not built: " << guest_path(guest);
    }
    m_dir = scratch_dir();
  }

  // `reel record` of `guest` with `append` and the network options.
  Recorded record(const std::string& name, const std::string& guest, const std::string& append,
                  const std::vector<std::string>& net) {
    Recorded r;
    r.name = name;
    r.journal = m_dir + "/" + name + ".reel";
    std::vector<std::string> argv = {
        reel_binary(), "record", "-o",      r.journal, "-kernel", guest_path(guest),
        "-append",     append,   "-serial", "stdio",   "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};
    argv.insert(argv.end(), net.begin(), net.end());
    r.process = spawn_process(argv);
    return r;
  }

  // Replays the journal and checks it against the recorded run.
  void expect_replays(const Recorded& r, const ProcessResult& recorded) {
    SCOPED_TRACE(r.name);
    const ProcessResult replayed = run_reel({"replay", r.journal});
    EXPECT_EQ(replayed.status, recorded.status) << describe(replayed);
    EXPECT_EQ(replayed.out, recorded.out);
    const std::string hash = summary_field(recorded.err, "state_hash");
    EXPECT_FALSE(hash.empty()) << describe(recorded);
    EXPECT_EQ(summary_field(replayed.err, "state_hash"), hash) << describe(replayed);
    EXPECT_EQ(summary_field(replayed.err, "icount"), summary_field(recorded.err, "icount"));
  }

  void skip_unless_multicast(int port) {
    if (!multicast_loops_back(port))
      GTEST_SKIP() << "multicast to 230.0.0.1 does not loop back through 127.0.0.1 on this machine";
  }

  std::string m_dir;
};

std::vector<std::string> peer_lines(const std::string& first_line, const std::string& ip,
                                    const std::string& peer, const std::string& peer_mac, int count) {
  std::vector<std::string> want = {
      first_line, "net: nic0 ip " + ip + "/24",
      "netpeer: role peer, " + std::to_string(count) + " pings to each of 1 peer(s)",
      "arp " + peer + " is " + peer_mac};
  for (const auto& l : ping_lines(peer, count)) want.push_back(l);
  want.insert(want.end(), {"peer " + peer + ": finished", "netpeer: ok"});
  return want;
}

TEST_F(NetScenarios, NetinfoSelfTestOnPciAndIsaCards) {
  Recorded pci = record("netinfo_pci", "netinfo", "",
                        {"-net", "nic,macaddr=" + mac(1), "-net", "nic,macaddr=" + mac(2)});
  const ProcessResult p = wait_process(pci.process, kGuestTimeout);
  EXPECT_EQ(p.status, 1) << describe(p);
  EXPECT_TRUE(has_lines_in_order(
      p.out, {"netinfo: 2 card(s)", "nic0: ne2k_pci 00:03.0 io c000 irq 11",
              "nic0: mac 52:54:00:00:00:01, 16-bit card, word transfers, tx page 40, ring 46-80",
              "nic0: self-test ok", "nic0: ring self-test ok", "nic0: transmit ok, completion interrupt seen",
              "nic1: self-test ok", "nic1: ring self-test ok", "nic1: transmit ok, completion interrupt seen",
              "netinfo: ok"}))
      << describe(p);
  expect_replays(pci, p);

  Recorded isa =
      record("netinfo_isa", "netinfo", "width=8", {"-M", "isapc", "-net", "nic,macaddr=" + mac(3)});
  const ProcessResult i = wait_process(isa.process, kGuestTimeout);
  EXPECT_EQ(i.status, 1) << describe(i);
  EXPECT_TRUE(has_lines_in_order(
      i.out, {"netinfo: 1 card(s)", "nic0: ne2k_isa io 300 irq 9", "nic0: self-test ok",
              "nic0: ring self-test ok", "nic0: transmit ok, completion interrupt seen", "netinfo: ok"}))
      << describe(i);
  expect_replays(isa, i);
}

TEST_F(NetScenarios, TwoGuestsOverSocketListenConnect) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  Recorded a = record("listen", "netpeer", "ip=10.0.2.15 peer=10.0.2.16 count=4 wait=2000 timeout=40",
                      {"-net", "nic,macaddr=" + mac(1), "-net", "socket,listen=" + link});
  ASSERT_TRUE(wait_listening(port, a.process)) << describe(stop_process(a.process));
  Recorded b = record("connect", "netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=4 wait=2000 timeout=40",
                      {"-net", "nic,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  const ProcessResult rb = wait_process(b.process, kGuestTimeout);
  const ProcessResult ra = wait_process(a.process, kGuestTimeout);
  ASSERT_EQ(ra.status, 1) << describe(ra);
  ASSERT_EQ(rb.status, 1) << describe(rb);
  const auto want_a = peer_lines("net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:01 16-bit",
                                 "10.0.2.15", "10.0.2.16", mac(2), 4);
  EXPECT_TRUE(has_lines_in_order(ra.out, want_a)) << describe(ra);
  EXPECT_EQ(lines_of(ra.out).size(), want_a.size()) << describe(ra);
  EXPECT_TRUE(has_lines_in_order(
      rb.out, peer_lines("net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:02 16-bit",
                         "10.0.2.16", "10.0.2.15", mac(1), 4)))
      << describe(rb);
  EXPECT_NE(ra.err.find("socket.0: connection from 127.0.0.1:"), std::string::npos) << describe(ra);
  expect_replays(a, ra);
  expect_replays(b, rb);
}

TEST_F(NetScenarios, ThreeGuestsOverMulticast) {
  const int port = free_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  skip_unless_multicast(port);
  const std::string hub = "socket,mcast=230.0.0.1:" + std::to_string(port) + ",localaddr=127.0.0.1";
  const std::vector<std::string> ips = {"10.0.2.11", "10.0.2.12", "10.0.2.13"};
  std::vector<Recorded> guests;
  for (int i = 0; i < 3; ++i) {
    std::string peers;
    for (int j = 0; j < 3; ++j) {
      if (j != i) peers += (peers.empty() ? "" : ",") + ips[j];
    }
    guests.push_back(record("mcast" + std::to_string(i), "netpeer",
                            "ip=" + ips[i] + " peer=" + peers + " count=3 wait=2000 timeout=40",
                            {"-net", "nic,macaddr=" + mac(i + 1), "-net", hub}));
  }
  for (int i = 0; i < 3; ++i) {
    const ProcessResult r = wait_process(guests[i].process, kGuestTimeout);
    EXPECT_EQ(r.status, 1) << ips[i] << "\n" << describe(r);
    std::vector<std::string> want = {"net: nic0 ip " + ips[i] + "/24"};
    for (int j = 0; j < 3; ++j) {
      if (j == i) continue;
      want.push_back("arp " + ips[j] + " is " + mac(j + 1));
      for (const auto& l : ping_lines(ips[j], 3)) want.push_back(l);
    }
    want.push_back("netpeer: ok");
    EXPECT_TRUE(has_lines_in_order(r.out, want)) << ips[i] << "\n" << describe(r);
    expect_replays(guests[i], r);
  }
}

TEST_F(NetScenarios, TwoNicsOnTwoVlans) {
  const int port0 = free_port(SOCK_STREAM), port1 = free_port(SOCK_STREAM);
  ASSERT_GT(port0, 0);
  ASSERT_GT(port1, 0);
  ASSERT_NE(port0, port1);
  const std::string link0 = "127.0.0.1:" + std::to_string(port0),
                    link1 = "127.0.0.1:" + std::to_string(port1);
  Recorded x =
      record("two_nics", "netpeer",
             "ip0=10.0.2.15 ip1=10.0.3.15 peer=10.0.2.16,10.0.3.16 isolate=1 count=3 wait=2000 timeout=40",
             {"-net", "nic,vlan=0,macaddr=" + mac(1), "-net", "socket,vlan=0,listen=" + link0, "-net",
              "nic,vlan=1,macaddr=" + mac(0x11), "-net", "socket,vlan=1,listen=" + link1});
  ASSERT_TRUE(wait_listening(port0, x.process) && wait_listening(port1, x.process))
      << describe(stop_process(x.process));
  Recorded y = record("vlan0_peer", "netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=3 wait=2000 timeout=40",
                      {"-net", "nic,macaddr=" + mac(2), "-net", "socket,connect=" + link0});
  Recorded z = record("vlan1_peer", "netpeer", "ip=10.0.3.16 peer=10.0.3.15 count=3 wait=2000 timeout=40",
                      {"-net", "nic,macaddr=" + mac(0x12), "-net", "socket,connect=" + link1});
  const ProcessResult rx = wait_process(x.process, kGuestTimeout);
  const ProcessResult ry = wait_process(y.process, kGuestTimeout);
  const ProcessResult rz = wait_process(z.process, kGuestTimeout);
  ASSERT_EQ(rx.status, 1) << describe(rx);
  EXPECT_EQ(ry.status, 1) << describe(ry);
  EXPECT_EQ(rz.status, 1) << describe(rz);
  EXPECT_TRUE(has_lines_in_order(
      rx.out, {"net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:01 16-bit",
               "net: nic1 ne2k_pci 00:04.0 io c100 irq 11 mac 52:54:00:00:00:11 16-bit",
               "ping 10.0.2.16: 3/3 replies, rtt ok", "ping 10.0.3.16: 3/3 replies, rtt ok",
               "isolation nic0: peer broadcasts seen, nothing from other VLANs",
               "isolation nic1: peer broadcasts seen, nothing from other VLANs", "netpeer: ok"}))
      << describe(rx);
  expect_replays(x, rx);
  expect_replays(y, ry);
  expect_replays(z, rz);
}

TEST_F(NetScenarios, IsaCardsOnIsapc) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  // -M isapc makes ne2k_isa the default model.
  Recorded a = record("isa_listen", "netpeer",
                      "nic=isa io=0x300 irq=9 ip=10.0.2.15 peer=10.0.2.16 count=3 wait=2000 timeout=40",
                      {"-M", "isapc", "-net", "nic,macaddr=" + mac(1), "-net", "socket,listen=" + link});
  ASSERT_TRUE(wait_listening(port, a.process)) << describe(stop_process(a.process));
  Recorded b = record(
      "isa_connect", "netpeer", "ip=10.0.2.16 peer=10.0.2.15 width=8 count=3 wait=2000 timeout=40",
      {"-M", "isapc", "-net", "nic,model=ne2k_isa,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  const ProcessResult rb = wait_process(b.process, kGuestTimeout);
  const ProcessResult ra = wait_process(a.process, kGuestTimeout);
  ASSERT_EQ(ra.status, 1) << describe(ra);
  ASSERT_EQ(rb.status, 1) << describe(rb);
  EXPECT_TRUE(
      has_lines_in_order(ra.out, peer_lines("net: nic0 ne2k_isa io 300 irq 9 mac 52:54:00:00:00:01 16-bit",
                                            "10.0.2.15", "10.0.2.16", mac(2), 3)))
      << describe(ra);
  EXPECT_TRUE(has_lines_in_order(
      rb.out, peer_lines("net: nic0 ne2k_isa io 300 irq 9 mac 52:54:00:00:00:02 16-bit byte-mode",
                         "10.0.2.16", "10.0.2.15", mac(1), 3)))
      << describe(rb);
  expect_replays(a, ra);
  expect_replays(b, rb);
}

TEST_F(NetScenarios, ReelGuestAndQemuGuestShareAVlan) {
  const std::string qemu = find_on_path("qemu-system-i386");
  if (qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH; reel-to-QEMU VLAN not checked";
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  BackgroundProcess q =
      spawn_process({qemu, "-display", "none", "-serial", "stdio", "-no-reboot", "-device",
                     "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", guest_path("netpeer"), "-append",
                     "ip=10.0.2.15 peer=10.0.2.16 count=4 wait=2000 timeout=40", "-net",
                     "nic,model=ne2k_pci,macaddr=" + mac(1), "-net", "socket,listen=" + link});
  ASSERT_TRUE(wait_listening(port, q)) << describe(stop_process(q));
  Recorded r = record("with_qemu", "netpeer", "ip=10.0.2.16 peer=10.0.2.15 count=4 wait=2000 timeout=40",
                      {"-net", "nic,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  const ProcessResult rr = wait_process(r.process, kGuestTimeout);
  const ProcessResult rq = wait_process(q, kGuestTimeout);
  EXPECT_EQ(rq.status, 1) << describe(rq);
  ASSERT_EQ(rr.status, 1) << describe(rr);
  EXPECT_TRUE(has_lines_in_order(
      rr.out, peer_lines("net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:00:00:02 16-bit",
                         "10.0.2.16", "10.0.2.15", mac(1), 4)))
      << describe(rr);
  EXPECT_TRUE(has_lines_in_order(rq.out, ping_lines("10.0.2.16", 4))) << describe(rq);
  expect_replays(r, rr);
}

// The seed's complaint: a connecting side that loses its peer must not
// leave the VLAN dead. The listener is stopped mid-session and started
// again; the connector reconnects and the client gets all its replies.
TEST_F(NetScenarios, ConnectorRecoversWhenTheListenerRestarts) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  const std::vector<std::string> server_net = {"-net", "nic,macaddr=" + mac(1), "-net",
                                               "socket,listen=" + link};
  const std::string server_args = "ip=10.0.2.15 peer=10.0.2.16 role=server timeout=40";
  Recorded first = record("server_first", "netpeer", server_args, server_net);
  ASSERT_TRUE(wait_listening(port, first.process)) << describe(stop_process(first.process));
  Recorded client =
      record("client", "netpeer",
             "ip=10.0.2.16 peer=10.0.2.15 role=client count=12 interval=200 wait=500 timeout=40",
             {"-net", "nic,macaddr=" + mac(2), "-net", "socket,connect=" + link});
  bool saw_third = false;
  for (int i = 0; i < 1500 && !saw_third; ++i) {
    saw_third = output_so_far(client.process).find("seq=3 ok") != std::string::npos;
    if (!saw_third) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(saw_third) << describe(stop_process(client.process));
  const ProcessResult stopped = stop_process(first.process);  // SIGTERM: an interrupted recording
  EXPECT_EQ(stopped.status, 130) << describe(stopped);
  std::this_thread::sleep_for(milliseconds(1500));
  Recorded again = record("server_again", "netpeer", server_args, server_net);
  const ProcessResult rc = wait_process(client.process, kGuestTimeout);
  const ProcessResult rs = wait_process(again.process, kGuestTimeout);
  EXPECT_EQ(rs.status, 1) << describe(rs);
  ASSERT_EQ(rc.status, 1) << describe(rc);
  EXPECT_NE(rc.out.find(" timeout"), std::string::npos) << "no ping was lost while the server was away\n"
                                                        << describe(rc);
  EXPECT_TRUE(has_lines_in_order(rc.out, {"ping 10.0.2.15 seq=3 ok", "ping 10.0.2.15: 12/12 replies, rtt ok",
                                          "peer 10.0.2.15: finished", "netpeer: ok"}))
      << describe(rc);
  EXPECT_NE(rc.err.find("socket.0: lost 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << describe(rc);
  EXPECT_NE(rc.err.find("socket.0: connected to 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << describe(rc);
  // All three recordings replay, the interrupted one up to where it was cut.
  expect_replays(client, rc);
  expect_replays(again, rs);
  const ProcessResult replayed_first = run_reel({"replay", first.journal});
  EXPECT_EQ(replayed_first.out, stopped.out);
  EXPECT_EQ(replayed_first.status, stopped.status) << describe(replayed_first);
}

}  // namespace
}  // namespace reel::test
