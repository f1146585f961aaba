// The network options from the command line: the monitor's `info network`
// and `info registers` (stdio and Unix socket), commands typed at the
// monitor replayed from the journal, the pcap of `-net dump` read by
// tshark and rewritten identically by replay, a peer speaking garbage to a
// listening backend, and bad -net/-monitor options.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <vector>

#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{90000};

const std::vector<std::string> kExit = {"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};

std::vector<std::string> args(std::initializer_list<std::string> head,
                              const std::vector<std::string>& tail = {}) {
  std::vector<std::string> v(head);
  v.insert(v.end(), tail.begin(), tail.end());
  return v;
}

TEST(NetCli, MonitorInfoNetworkListsEveryVlan) {
  // timer runs about 0.5 s of virtual time; the monitor input arrives at
  // once, so it is answered while the guest runs.
  const ProcessResult r = run_reel(
      args({"run", "-kernel", guest_path("timer"), "-serial", "none", "-monitor", "stdio", "-net", "nic",
            "-net", "nic,vlan=1,model=ne2k_pci", "-net", "dump,vlan=1,file=" + scratch_dir() + "/v1.pcap",
            "-net", "nic,vlan=1,macaddr=52:54:00:aa:bb:cc"}),
      "info network\ninfo registers\nhelp\nfrobnicate\nquit\n");
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("VLAN 0 devices:\n"
                       "  ne2k_pci.0: model=ne2k_pci,macaddr=52:54:00:12:34:56\n"
                       "VLAN 1 devices:\n"
                       "  ne2k_pci.1: model=ne2k_pci,macaddr=52:54:00:12:34:57\n"
                       "  dump.0: dump to " +
                       scratch_dir() +
                       "/v1.pcap (len=65536)\n"
                       "  ne2k_pci.2: model=ne2k_pci,macaddr=52:54:00:aa:bb:cc\n"),
            std::string::npos)
      << describe(r);
  EXPECT_NE(r.out.find("EAX="), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("CR0="), std::string::npos) << describe(r);
  EXPECT_NE(r.out.find("info network"), std::string::npos) << "help lists the commands\n" << describe(r);
  EXPECT_NE(r.out.find("unknown command: 'frobnicate'"), std::string::npos) << describe(r);
}

TEST(NetCli, MonitorListsAddsAndRemovesPortForwards) {
  const int p1 = free_port(SOCK_STREAM);
  const int p2 = free_port(SOCK_STREAM);
  ASSERT_GT(p1, 0);
  ASSERT_GT(p2, 0);
  const std::string a = std::to_string(p1), b = std::to_string(p2);
  const std::string journal = scratch_dir() + "/hostfwd.reel";
  const std::string commands =
      "info network\nhostfwd_add tcp::" + b + "-:24\ninfo usernet\nhostfwd_remove tcp::" + b +
      "\nhostfwd_remove tcp::" + b + "\nhostfwd_add 0 user.0 udp:127.0.0.1:" + b +
      "-10.0.2.16:25\nhostfwd_add 1 user.0 tcp::1-:1\nhostfwd_add bogus\ninfo usernet\n";
  const ProcessResult rec =
      run_reel(args({"record", "-o", journal, "-kernel", guest_path("timer"), "-serial", "none", "-monitor",
                     "stdio", "-net", "nic", "-net", "user,hostfwd=tcp:127.0.0.1:" + a + "-:23"}),
               commands);
  ASSERT_EQ(rec.status, 0) << describe(rec);
  EXPECT_NE(rec.out.find("  user.0: net=10.0.2.0, restricted=n\n    hostfwd TCP 127.0.0.1:" + a +
                         " -> 10.0.2.15:23\n"),
            std::string::npos)
      << describe(rec);
  EXPECT_NE(rec.out.find("VLAN 0 (user.0):\n  forward TCP 127.0.0.1:" + a +
                         " -> 10.0.2.15:23\n  forward TCP 127.0.0.1:" + b + " -> 10.0.2.15:24\n"),
            std::string::npos)
      << describe(rec);
  EXPECT_NE(rec.out.find("host forwarding rule for tcp:127.0.0.1:" + b + " not found"), std::string::npos)
      << describe(rec);
  EXPECT_NE(rec.out.find("no user-mode network user.0 on VLAN 1"), std::string::npos) << describe(rec);
  EXPECT_NE(rec.out.find("hostfwd_add: expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport"),
            std::string::npos)
      << describe(rec);
  EXPECT_NE(rec.out.find("  forward UDP 127.0.0.1:" + b + " -> 10.0.2.16:25\n"), std::string::npos)
      << describe(rec);
  // The replay opens no socket, so the same ports being taken now changes nothing.
  const int hold = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(p1));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(hold, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(hold, 1), 0);
  const ProcessResult rep = run_reel({"replay", journal});
  close(hold);
  EXPECT_EQ(rep.status, rec.status) << describe(rep);
  EXPECT_EQ(rep.out, rec.out);
  // A forward whose port is taken is a one-line error, exit 2.
  const int hold2 = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(bind(hold2, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(hold2, 1), 0);
  const ProcessResult taken = run_reel(args({"run", "-kernel", guest_path("timer"), "-serial", "none", "-net",
                                             "nic", "-net", "user", "-redir", "tcp:" + a + "::23"}));
  close(hold2);
  EXPECT_EQ(taken.status, 2) << describe(taken);
  EXPECT_NE(taken.err.find("could not set up host forwarding rule tcp:127.0.0.1:" + a), std::string::npos)
      << describe(taken);
}

TEST(NetCli, DefaultNetworkIsANicOnAUserNetwork) {
  // QEMU's default: with no -net option the guest has a card and a gateway.
  const ProcessResult r =
      run_reel(args({"run", "-kernel", guest_path("dhcpping"), "-serial", "stdio"}, kExit));
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.out.find("dhcp nic0: lease 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3"), std::string::npos)
      << describe(r);
  const ProcessResult none =
      run_reel(args({"run", "-kernel", guest_path("dhcpping"), "-serial", "stdio", "-net", "none"}, kExit));
  EXPECT_NE(none.out.find("no NE2000 card found"), std::string::npos) << describe(none);
  const ProcessResult mon =
      run_reel(args({"run", "-kernel", guest_path("timer"), "-serial", "none", "-monitor", "stdio"}),
               "info network\nquit\n");
  EXPECT_NE(mon.out.find("VLAN 0 devices:\n  ne2k_pci.0: model=ne2k_pci,macaddr=52:54:00:12:34:56\n"
                         "  user.0: net=10.0.2.0, restricted=n\n"),
            std::string::npos)
      << describe(mon);
}

TEST(NetCli, MonitorCommandsAreJournaledAndReplayed) {
  const std::string journal = scratch_dir() + "/monitor.reel";
  const ProcessResult rec =
      run_reel(args({"record", "-o", journal, "-kernel", guest_path("timer"), "-serial",
                     "file:" + scratch_dir() + "/timer.out", "-monitor", "stdio", "-net", "nic"},
                    kExit),
               "info network\ninfo registers\n");
  ASSERT_TRUE(rec.status == 1 || rec.status == 0) << describe(rec);
  EXPECT_NE(rec.out.find("ne2k_pci.0: model=ne2k_pci"), std::string::npos) << describe(rec);
  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, rec.status) << describe(rep);
  EXPECT_EQ(rep.out, rec.out);  // the same answers at the same points, registers included
  EXPECT_EQ(summary_field(rep.err, "state_hash"), summary_field(rec.err, "state_hash"));
}

TEST(NetCli, MonitorOnAUnixSocket) {
  const std::string path = scratch_dir() + "/mon.sock";
  BackgroundProcess reel = spawn_process(args({reel_binary(), "run", "-kernel", guest_path("netpeer"),
                                               "-append", "ip=10.0.2.15 peer=10.0.2.16 role=server timeout=5",
                                               "-monitor", "unix:" + path + ",server", "-net", "nic"},
                                              kExit));
  // server (wait): reel waits for this client before the guest starts.
  int fd = -1;
  for (int i = 0; i < 200 && fd < 0; ++i) {
    const int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    if (connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      fd = s;
    } else {
      close(s);
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  ASSERT_GE(fd, 0) << describe(stop_process(reel));
  const std::string cmd = "info network\nquit\n";
  ASSERT_EQ(write(fd, cmd.data(), cmd.size()), static_cast<ssize_t>(cmd.size()));
  std::string got;
  char buf[512];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const ProcessResult r = wait_process(reel, kGuestTimeout);
  EXPECT_EQ(r.status, 0) << "quit ends the run\n" << describe(r);
  EXPECT_NE(got.find("monitor - type 'help'"), std::string::npos) << got;
  EXPECT_NE(got.find("VLAN 0 devices:\n  ne2k_pci.0: model=ne2k_pci,macaddr=52:54:00:12:34:56\n"),
            std::string::npos)
      << got;
}

TEST(NetCli, DumpWritesAPcapThatReplayRewritesIdentically) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string link = "127.0.0.1:" + std::to_string(port);
  const std::string pcap = scratch_dir() + "/vlan0.pcap";
  const std::string journal = scratch_dir() + "/dump.reel";
  BackgroundProcess a = spawn_process(
      args({reel_binary(), "record", "-o", journal, "-kernel", guest_path("netpeer"), "-append",
            "ip=10.0.2.15 peer=10.0.2.16 count=3 wait=2000 timeout=40", "-net", "nic,macaddr=" + mac(1),
            "-net", "socket,listen=" + link, "-net", "dump,file=" + pcap},
           kExit));
  ASSERT_TRUE(wait_listening(port, a)) << describe(stop_process(a));
  BackgroundProcess b =
      spawn_process(args({reel_binary(), "run", "-kernel", guest_path("netpeer"), "-append",
                          "ip=10.0.2.16 peer=10.0.2.15 count=3 wait=2000 timeout=40", "-net",
                          "nic,macaddr=" + mac(2), "-net", "socket,connect=" + link},
                         kExit));
  const ProcessResult rb = wait_process(b, kGuestTimeout);
  const ProcessResult ra = wait_process(a, kGuestTimeout);
  ASSERT_EQ(ra.status, 1) << describe(ra);
  ASSERT_EQ(rb.status, 1) << describe(rb);
  const std::string recorded = read_text(pcap);
  ASSERT_GT(recorded.size(), 24u);
  EXPECT_EQ(recorded.substr(0, 4), std::string("\xd4\xc3\xb2\xa1", 4));  // little-endian magic

  // `reel info` says what the recording talked to.
  const ProcessResult info = run_reel({"info", journal});
  EXPECT_EQ(info.status, 0) << describe(info);
  EXPECT_NE(info.out.find("host sockets:   1 opened"), std::string::npos) << describe(info);
  EXPECT_NE(info.out.find("  tcp listen 127.0.0.1:" + std::to_string(port) + " (socket 0)"),
            std::string::npos)
      << describe(info);

  // Replay writes the same file again, byte for byte (stamps are virtual).
  ASSERT_EQ(std::rename(pcap.c_str(), (pcap + ".recorded").c_str()), 0);
  const ProcessResult rep = run_reel({"replay", journal});
  ASSERT_EQ(rep.status, 1) << describe(rep);
  EXPECT_EQ(read_text(pcap), recorded);

  const std::string tshark = find_on_path("tshark");
  if (tshark.empty()) GTEST_SKIP() << "tshark is not on PATH; pcap contents not checked";
  const ProcessResult t = run_process({tshark, "-r", pcap, "-T", "fields", "-e", "frame.protocols", "-e",
                                       "ip.src", "-e", "ip.dst", "-e", "icmp.type"});
  ASSERT_EQ(t.status, 0) << describe(t);
  int requests_out = 0, replies_in = 0, arp = 0;
  for (const std::string& line : lines_of(t.out)) {
    if (line.find("eth:ethertype:arp") == 0) ++arp;
    if (line.find("icmp") != std::string::npos && line.find("10.0.2.15\t10.0.2.16\t8") != std::string::npos)
      ++requests_out;
    if (line.find("icmp") != std::string::npos && line.find("10.0.2.16\t10.0.2.15\t0") != std::string::npos)
      ++replies_in;
  }
  EXPECT_GE(arp, 1) << t.out;
  EXPECT_EQ(requests_out, 3) << t.out;
  EXPECT_EQ(replies_in, 3) << t.out;
}

// A peer that does not speak QEMU's protocol is disconnected with a log
// line and the guest goes on; a well-behaved peer can still connect.
TEST(NetCli, GarbagePeerIsDisconnectedAndReelKeepsRunning) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  BackgroundProcess r = spawn_process(args({reel_binary(), "run", "-kernel", guest_path("netpeer"), "-append",
                                            "ip=10.0.2.15 peer=10.0.2.16 role=server timeout=3", "-net",
                                            "nic", "-net", "socket,listen=127.0.0.1:" + std::to_string(port)},
                                           kExit));
  ASSERT_TRUE(wait_listening(port, r)) << describe(stop_process(r));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  const std::string garbage = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  char c;
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  EXPECT_EQ(read(fd, &c, 1), 0) << "reel closes the connection";
  close(fd);
  const ProcessResult done = wait_process(r, kGuestTimeout);
  // The server gives up (timeout=3) on its peer that never came: its own
  // failure status, not a crash of reel.
  EXPECT_EQ(done.status, 7) << describe(done);
  EXPECT_NE(done.err.find("not QEMU's socket protocol, disconnected"), std::string::npos) << describe(done);
}

TEST(NetCli, BadNetworkOptionsAreOneLineErrors) {
  struct Case {
    std::vector<std::string> options;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"-net", "nic,model=e1000"}, "unknown NIC model 'e1000'"},
      {{"-net", "nic,macaddr=01:00:5e:00:00:01"}, "multicast address"},
      {{"-net", "nic,macaddr=52:54:00:12:34"}, "expected a MAC address"},
      {{"-net", "socket"}, "exactly one of listen=, connect= or mcast="},
      {{"-net", "socket,connect=127.0.0.1"}, "expected HOST:PORT"},
      {{"-net", "socket,listen=:99999"}, "port number 1..65535"},
      {{"-net", "socket,mcast=230.0.0.1:5000,localaddr=10.255.255.1"}, "-net socket,mcast=230.0.0.1:5000:"},
      {{"-net", "socket,mcast=127.0.0.1:5000"}, "not a multicast address"},
      {{"-net", "socket,fd=3"}, "cannot be replayed"},
      {{"-net", "nic,vlan=5000"}, "out of range"},
      {{"-net", "bogus"}, "unknown type 'bogus'"},
      {{"-M", "isapc", "-net", "nic,model=ne2k_pci"}, "no PCI bus"},
      {{"-net", "nic,iobase=0x300"}, "only apply to ISA models"},
      {{"-M", "isapc", "-net", "nic,iobase=0x3f8"}, "overlaps"},
      {{"-monitor", "stdio"}, "stdio is taken by serial0"},
      {{"-monitor", "unix:/tmp/x"}, "add ,server"},
      {{"-monitor", "tcp:1234"}, "expected stdio, unix:PATH,server or none"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {"run", "-kernel", guest_path("hello")};
    argv.insert(argv.end(), c.options.begin(), c.options.end());
    const ProcessResult r = run_reel(argv);
    EXPECT_EQ(r.status, 2) << c.message << "\n" << describe(r);
    EXPECT_NE(r.err.find(c.message), std::string::npos) << describe(r);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe(r);
  }
}

TEST(NetCli, HelpValuesAnswerOnStdoutAndExitZero) {
  const ProcessResult nic = run_reel({"run", "-kernel", guest_path("hello"), "-net", "nic,model=help"});
  EXPECT_EQ(nic.status, 0) << describe(nic);
  EXPECT_EQ(nic.out, "Available NIC models:\nne2k_pci\nne2k_isa\n");
  const ProcessResult machine = run_reel({"run", "-M", "help"});
  EXPECT_EQ(machine.status, 0) << describe(machine);
  EXPECT_NE(machine.out.find("isapc"), std::string::npos) << describe(machine);
}

TEST(NetCli, ListenPortInUseIsAnError) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const int holder = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  const ProcessResult r = run_reel(
      {"run", "-kernel", guest_path("hello"), "-net", "socket,listen=127.0.0.1:" + std::to_string(port)});
  close(holder);
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("cannot bind 127.0.0.1:" + std::to_string(port)), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace reel::test
