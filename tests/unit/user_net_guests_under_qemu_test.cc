// The dhcpping guest under qemu-system-i386's user-mode network (`-net
// user`, libslirp), the reference that reel's own user-mode gateway must
// match: a lease of 10.0.2.15 with router 10.0.2.2 and DNS 10.0.2.3 and
// echo replies from both; two cards on one hub each with its own lease
// (10.0.2.15, 10.0.2.16); the optional options (hostname, domain, search
// list, TFTP server name, boot file); the ISA card on an isapc; and a card
// with no server, which must give up with a FAIL line. libslirp answers
// all of it locally: nothing leaves the host and no address outside
// 10.0.2.0/24 is used. Skipped with a message when QEMU is not on PATH.

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{60000};  // the guests give up after timeout=30 s themselves

class UserNetGuestsUnderQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    m_qemu = find_on_path("qemu-system-i386");
    if (m_qemu.empty()) GTEST_SKIP() << "qemu-system-i386 is not on PATH; dhcpping not checked under QEMU";
    if (access(guest_path("dhcpping").c_str(), R_OK) != 0)
      GTEST_SKIP() << "guest not built: " << guest_path("dhcpping");
  }

  ProcessResult run(const std::string& append, const std::vector<std::string>& machine) {
    std::vector<std::string> argv = {m_qemu,    "-display",
                                     "none",    "-serial",
                                     "stdio",   "-no-reboot",
                                     "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                     "-kernel", guest_path("dhcpping"),
                                     "-append", append};
    argv.insert(argv.end(), machine.begin(), machine.end());
    BackgroundProcess p = spawn_process(argv);
    return wait_process(p, kGuestTimeout);
  }

  std::string m_qemu;
};

// What a card prints for pinging one address `count` times.
std::vector<std::string> pings(const std::string& ip, const std::string& mac, int count) {
  std::vector<std::string> lines = {"arp " + ip + " is " + mac};
  for (int seq = 1; seq <= count; ++seq)
    lines.push_back("ping " + ip + " seq=" + std::to_string(seq) + " ok");
  lines.push_back("ping " + ip + ": " + std::to_string(count) + "/" + std::to_string(count) + " replies");
  return lines;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& lines) {
  to.insert(to.end(), lines.begin(), lines.end());
}

const std::string kGatewayMac = "52:55:0a:00:02:02", kDnsMac = "52:55:0a:00:02:03";

TEST_F(UserNetGuestsUnderQemu, LeaseAndPingsOfGatewayAndDns) {
  const ProcessResult r = run("count=3 release=1 detail=1 timeout=30",
                              {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56", "-net", "user"});
  EXPECT_EQ(r.status, 1) << describe(r);
  std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit",
      "dhcpping: 1 card(s), 3 pings to the router and the DNS server of each lease",
      "dhcp nic0: offer from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 bytes, "
      "options 34 "
      "bytes: 53/1 54/4 1/4 3/4 6/4 51/4",
      "dhcp nic0: offer flags 0 ciaddr 0.0.0.0 yiaddr 10.0.2.15 siaddr 10.0.2.2 giaddr 0.0.0.0",
      "dhcp nic0: ack from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 bytes, "
      "options 34 "
      "bytes: 53/1 54/4 1/4 3/4 6/4 51/4",
      "dhcp nic0: ack flags 0 ciaddr 0.0.0.0 yiaddr 10.0.2.15 siaddr 10.0.2.2 giaddr 0.0.0.0",
      "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400"};
  append(want, pings("10.0.2.2", kGatewayMac, 3));
  append(want, pings("10.0.2.3", kDnsMac, 3));
  append(want, {"dhcp nic0: released 10.0.2.15 to 10.0.2.2", "dhcpping: ok"});
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  // Nothing timing-dependent: the whole output is exactly these lines.
  EXPECT_EQ(lines_of(r.out).size(), want.size()) << describe(r);
}

// QEMU 7.2 puts both `-net nic` cards and `-net user` on hub 0: each card
// takes its own lease (keyed by its MAC), and each pings through itself
// although both sit on one subnet.
TEST_F(UserNetGuestsUnderQemu, TwoCardsOnOneHubGetTwoLeases) {
  const ProcessResult r =
      run("count=2 release=1 timeout=30", {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56", "-net",
                                           "nic,model=ne2k_pci,macaddr=52:54:00:12:34:57", "-net", "user"});
  EXPECT_EQ(r.status, 1) << describe(r);
  std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit",
      "net: nic1 ne2k_pci 00:04.0 io c100 irq 11 mac 52:54:00:12:34:57 16-bit",
      "dhcpping: 2 card(s), 2 pings to the router and the DNS server of each lease",
      "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400"};
  append(want, pings("10.0.2.2", kGatewayMac, 2));
  append(want, pings("10.0.2.3", kDnsMac, 2));
  want.push_back("dhcp nic1: lease 10.0.2.16/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400");
  append(want, pings("10.0.2.2", kGatewayMac, 2));
  append(want, pings("10.0.2.3", kDnsMac, 2));
  append(want, {"dhcp nic0: released 10.0.2.15 to 10.0.2.2", "dhcp nic1: released 10.0.2.16 to 10.0.2.2",
                "dhcpping: ok"});
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  EXPECT_EQ(lines_of(r.out).size(), want.size()) << describe(r);
}

// hostname=, domainname=, dnssearch=, bootfile= and tftp-server-name=:
// libslirp sends options 12, 15, 119 and 66, and the boot file only in the
// BOOTP file field (no option 67).
TEST_F(UserNetGuestsUnderQemu, OptionalOptionsShow) {
  const ProcessResult r =
      run("count=1 detail=1 timeout=30", {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56", "-net",
                                          "user,hostname=guest1,domainname=example.test,dnssearch=a.test,"
                                          "bootfile=pxe.0,tftp-server-name=tftp.test"});
  EXPECT_EQ(r.status, 1) << describe(r);
  std::vector<std::string> want = {
      "dhcp nic0: offer from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 bytes, "
      "options 77 "
      "bytes: 53/1 54/4 1/4 3/4 6/4 51/4 12/6 15/12 66/9 119/8",
      "dhcp nic0: offer flags 0 ciaddr 0.0.0.0 yiaddr 10.0.2.15 siaddr 10.0.2.2 giaddr 0.0.0.0",
      "dhcp nic0: ack from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 bytes, "
      "options 77 "
      "bytes: 53/1 54/4 1/4 3/4 6/4 51/4 12/6 15/12 66/9 119/8",
      "dhcp nic0: ack flags 0 ciaddr 0.0.0.0 yiaddr 10.0.2.15 siaddr 10.0.2.2 giaddr 0.0.0.0",
      "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400",
      "dhcp nic0: hostname guest1",
      "dhcp nic0: domain example.test",
      "dhcp nic0: search a.test",
      "dhcp nic0: tftp-server tftp.test",
      "dhcp nic0: file pxe.0"};
  append(want, pings("10.0.2.2", kGatewayMac, 1));
  append(want, pings("10.0.2.3", kDnsMac, 1));
  want.push_back("dhcpping: ok");
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  EXPECT_EQ(r.out.find("dhcp nic0: bootfile"), std::string::npos) << "libslirp 4.7 sends no option 67\n"
                                                                  << describe(r);
}

// Two dnssearch= domains: libslirp compresses the second one's "test"
// into a pointer to the first (20 bytes for both), which the client
// follows.
TEST_F(UserNetGuestsUnderQemu, SearchListWithACompressionPointer) {
  const ProcessResult r =
      run("count=1 detail=1 timeout=30", {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56", "-net",
                                          "user,dnssearch=a.test,dnssearch=b.example.test"});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"dhcp nic0: ack from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 "
              "bytes, options "
              "56 bytes: 53/1 54/4 1/4 3/4 6/4 51/4 119/20",
              "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400",
              "dhcp nic0: search a.test,b.example.test", "dhcpping: ok"}))
      << describe(r);
}

// nak=100: the first REQUEST asks for 10.0.2.115, outside libslirp's 16
// addresses; its NAK (53 and 56 only, no server id, yiaddr all ones) sends
// the client back to DISCOVER, and the second round gets 10.0.2.15.
TEST_F(UserNetGuestsUnderQemu, NakStartsOver) {
  const ProcessResult r = run("count=1 detail=1 nak=100 timeout=30",
                              {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56", "-net", "user"});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"dhcp nic0: DHCPNAK from 10.0.2.2 for 10.0.2.115, starting over",
              "dhcp nic0: nak from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 "
              "bytes, options 37 "
              "bytes: 53/1 56/31",
              "dhcp nic0: nak flags 0 ciaddr 0.0.0.0 yiaddr 255.255.255.255 siaddr 10.0.2.2 giaddr 0.0.0.0",
              "dhcp nic0: nak message \"requested address not available\"",
              "dhcp nic0: offer from 10.0.2.2 52:55:0a:00:02:02 to 255.255.255.255 ff:ff:ff:ff:ff:ff, 548 "
              "bytes, options 34 "
              "bytes: 53/1 54/4 1/4 3/4 6/4 51/4",
              "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400",
              "dhcpping: ok"}))
      << describe(r);
  EXPECT_EQ(r.out.find(" again"), std::string::npos) << "no retransmission expected\n" << describe(r);
}

TEST_F(UserNetGuestsUnderQemu, IsaCardOnIsapc) {
  const ProcessResult r =
      run("nic=isa count=2 timeout=30",
          {"-M", "isapc", "-net", "nic,model=ne2k_isa,macaddr=52:54:00:12:34:56", "-net", "user"});
  EXPECT_EQ(r.status, 1) << describe(r);
  std::vector<std::string> want = {
      "net: nic0 ne2k_isa io 300 irq 9 mac 52:54:00:12:34:56 16-bit",
      "dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3 server 10.0.2.2 lease 86400"};
  append(want, pings("10.0.2.2", kGatewayMac, 2));
  append(want, pings("10.0.2.3", kDnsMac, 2));
  want.push_back("dhcpping: ok");
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
}

// A hub with no server: DISCOVER at 0 s and 4 s (the backoff's first step),
// then the run's bound ends it with FAIL lines and code 3 (status 7).
TEST_F(UserNetGuestsUnderQemu, NoServerGivesUpWithFailLine) {
  const ProcessResult r = run("timeout=6", {"-net", "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56"});
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"dhcp nic0: no DHCPOFFER yet, DHCPDISCOVER again",
              "dhcp nic0: FAIL no DHCPOFFER after 2 DHCPDISCOVER(s)", "dhcpping: FAIL no lease (nic0)"}))
      << describe(r);
}

}  // namespace
}  // namespace reel::test
