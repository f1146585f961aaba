// The TCP, TFTP and DNS guests (tcpecho, tcpserve, tftpget, dnslookup)
// under qemu-system-i386's user-mode network (`-net user`, libslirp 4.7),
// the reference for reel's own NAT: the same guests and the same loopback
// servers must give the same lines under reel.
//
// - tcpecho streams 2 MiB (and 16 MiB, and an odd size) through the NAT to
//   an echo server on 127.0.0.1 (the guest dials 10.0.2.2, libslirp's
//   alias for the host's loopback) and checks every echoed byte; the
//   server's byte count and hash must equal the guest's. A closed port is
//   refused; a server that aborts mid-stream resets the guest's connection.
// - tcpserve is reached by a host client through hostfwd=tcp:127.0.0.1:P-:G.
// - tftpget reads generated files from tftp=<scratch dir>: 3 MB with
//   blksize 1428, a file that ends on a block boundary (the empty last
//   block), 33 MiB with 512-byte blocks (the block number wraps past
//   65535) and 96 MiB with blksize 1428 (wraps with the largest blocks).
// - dnslookup: libslirp forwards 10.0.2.3 to the first nameserver of the
//   host's /etc/resolv.conf, and `-net user,dns=` only moves the address
//   the guest sees, so it cannot be pointed at a test server directly. The
//   test runs QEMU in new user, mount and network namespaces instead, with
//   a resolv.conf naming 127.0.0.1 bind-mounted over /etc/resolv.conf and
//   the test DNS server on 127.0.0.1:53 of that namespace: nothing leaves
//   it. Skipped (with the reason) where unprivileged user namespaces are
//   not allowed.
//
// With REEL_NAT_GUESTS_UNDER_REEL=1 the same scenarios run under
// build/.../reel instead (same options, same expected lines).
//
// Nothing contacts an address other than 127.0.0.1 (or the namespace's
// own loopback). Skipped when QEMU is not on PATH, except the LoopbackServers
// tests, which check the host-side helpers on their own.

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/loopback_servers.h"
#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{60000};

class NatGuestsUnderQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    // REEL_NAT_GUESTS_UNDER_REEL=1 runs the same scenarios under reel
    // (same options, same expected lines) instead of QEMU.
    const char* under_reel = std::getenv("REEL_NAT_GUESTS_UNDER_REEL");
    if (under_reel && std::string(under_reel) == "1") {
      m_qemu = reel_binary();
      if (access(m_qemu.c_str(), X_OK) != 0) GTEST_SKIP() << "reel not built: " << m_qemu;
    } else {
      m_qemu = find_on_path("qemu-system-i386");
      if (m_qemu.empty())
        GTEST_SKIP() << "qemu-system-i386 is not on PATH; NAT guests not checked under QEMU";
    }
    for (const char* g : {"tcpecho", "tcpserve", "tftpget", "dnslookup"}) {
      if (access(guest_path(g).c_str(), R_OK) != 0) GTEST_SKIP() << "guest not built: " << guest_path(g);
    }
  }

  std::vector<std::string> argv(const std::string& guest, const std::string& append,
                                const std::string& user) {
    return {m_qemu,    "-display",
            "none",    "-serial",
            "stdio",   "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", guest_path(guest),
            "-append", append,
            "-net",    "nic,model=ne2k_pci,macaddr=52:54:00:12:34:56",
            "-net",    user};
  }

  ProcessResult run(const std::string& guest, const std::string& append, const std::string& user = "user") {
    BackgroundProcess p = spawn_process(argv(guest, append, user));
    return wait_process(p, kGuestTimeout);
  }

  std::string m_qemu;
};

const std::string kLease = "10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3";

// ---- the host side on its own (no QEMU needed) ----

// The client helper against the echo server: what the QEMU tests rely on.
TEST(LoopbackServers, EchoServerAndClientAgree) {
  TcpEchoServer server;
  ASSERT_TRUE(server.ok());
  const EchoClientResult c = tcp_echo_client(server.port(), 300001, 5, milliseconds(10000));
  EXPECT_TRUE(c.connected && c.matched && c.eof) << c.error;
  EXPECT_EQ(c.sent, 300001u);
  EXPECT_EQ(c.received, 300001u);
  EXPECT_EQ(hash_hex(c.hash), hash_hex(pattern_hash(5, 300001)));
  std::this_thread::sleep_for(milliseconds(100));
  const auto conns = server.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].bytes, 300001u);
  EXPECT_EQ(conns[0].hash, c.hash);
  EXPECT_TRUE(conns[0].peer_closed);
}

// FNV-1a 64 as published (the empty string and "a"), and a pattern that
// depends on the seed and the offset.
TEST(LoopbackServers, HashAndPattern) {
  EXPECT_EQ(REEL_FNV64_OFFSET, 0xcbf29ce484222325ull);
  const uint8_t a = 'a';
  EXPECT_EQ(reel_fnv64_update(REEL_FNV64_OFFSET, &a, 1), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(pattern_bytes(1, 0, 64), pattern_bytes(2, 0, 64));
  EXPECT_NE(pattern_bytes(1, 0, 64), pattern_bytes(1, 64, 64));
  const std::vector<uint8_t> wider = pattern_bytes(1, 96, 12);
  EXPECT_EQ(pattern_bytes(1, 100, 8), std::vector<uint8_t>(wider.begin() + 4, wider.end()));
}

std::vector<uint8_t> dns_query(uint16_t id, const std::string& name, uint16_t type) {
  std::vector<uint8_t> q = {
      static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  q.push_back(static_cast<uint8_t>(type >> 8));
  q.push_back(static_cast<uint8_t>(type));
  q.push_back(0);
  q.push_back(1);
  return q;
}

// The DNS server over a real UDP socket: an A record compressed against
// the question, NXDOMAIN, and FORMERR for a response sent to it.
TEST(LoopbackServers, DnsServerAnswers) {
  DnsServer server({{"host.reel.test", 0xc0000207u}});
  ASSERT_TRUE(server.ok());
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(server.port()));
  auto ask = [&](const std::vector<uint8_t>& q) {
    sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{fd, POLLIN, 0};
    std::vector<uint8_t> r(1500);
    if (poll(&p, 1, 2000) != 1) return std::vector<uint8_t>{};
    const ssize_t n = recv(fd, r.data(), r.size(), 0);
    r.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return r;
  };
  const std::vector<uint8_t> q = dns_query(0x1234, "Host.Reel.Test", 1);
  std::vector<uint8_t> want = q;
  want[2] = 0x85;  // QR AA RD
  want[3] = 0;
  want[7] = 1;  // ANCOUNT
  const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7};
  want.insert(want.end(), rr, rr + sizeof rr);
  EXPECT_EQ(ask(q), want);
  const std::vector<uint8_t> nx = ask(dns_query(0x1235, "nobody.reel.test", 1));
  ASSERT_GE(nx.size(), 12u);
  EXPECT_EQ(nx[3] & 15, 3);
  EXPECT_EQ(nx[7], 0);
  std::vector<uint8_t> response = q;
  response[2] |= 0x80;
  const std::vector<uint8_t> fe = ask(response);
  ASSERT_EQ(fe.size(), 12u);
  EXPECT_EQ(fe[3] & 15, 1);
  close(fd);
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(server.queries().size(), 3u);
  EXPECT_EQ(server.queries()[0].name, "host.reel.test");
  EXPECT_EQ(server.queries()[1].rcode, 3);
}

// ---- TCP: the guest connects out through the NAT ----

TEST_F(NatGuestsUnderQemu, TcpEchoTwoMegabytesThroughTheNat) {
  TcpEchoServer server;
  ASSERT_TRUE(server.ok());
  const uint32_t bytes = 2 * 1024 * 1024, seed = 7;
  const std::string hash = hash_hex(pattern_hash(seed, bytes));
  const auto t0 = std::chrono::steady_clock::now();
  const ProcessResult r = run("tcpecho", "port=" + std::to_string(server.port()) +
                                             " bytes=" + std::to_string(bytes) + " seed=7 timeout=50");
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 1) << describe(r);
  const std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit",
      "tcpecho: lease " + kLease,
      "tcpecho: connecting to 10.0.2.2 port " + std::to_string(server.port()),
      "tcpecho: connected, peer mss 1460",
      "tcpecho: sent 2097152 bytes, received 2097152 bytes, hash " + hash,
      "tcpecho: closed",
      "tcpecho: ok"};
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  EXPECT_EQ(lines_of(r.out).size(), want.size()) << describe(r);
  // The host side saw exactly the guest's stream, and its FIN.
  std::this_thread::sleep_for(milliseconds(200));
  const auto conns = server.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].bytes, bytes);
  EXPECT_EQ(hash_hex(conns[0].hash), hash);
  EXPECT_TRUE(conns[0].peer_closed);
  EXPECT_LT(secs, 30.0) << "2 MiB should take seconds, not minutes";
}

// Another seed and a size that is no multiple of the MSS or of the
// guest's 4 KiB chunks.
TEST_F(NatGuestsUnderQemu, TcpEchoOddSize) {
  TcpEchoServer server;
  ASSERT_TRUE(server.ok());
  const uint32_t bytes = 100003;
  const ProcessResult r =
      run("tcpecho", "port=" + std::to_string(server.port()) + " bytes=100003 seed=12345 timeout=30");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(r.out, {"tcpecho: sent 100003 bytes, received 100003 bytes, hash " +
                                             hash_hex(pattern_hash(12345, bytes)),
                                         "tcpecho: closed", "tcpecho: ok"}))
      << describe(r);
  std::this_thread::sleep_for(milliseconds(200));
  const auto conns = server.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].bytes, bytes);
}

// 16 MiB: both rings wrap many times, and the odd frame the driver's
// queue drops (counted, not printed) must be recovered by the peer's
// retransmission without a trace in the output.
TEST_F(NatGuestsUnderQemu, TcpEchoSixteenMegabytes) {
  TcpEchoServer server;
  ASSERT_TRUE(server.ok());
  const uint32_t bytes = 16u << 20;
  const std::string hash = hash_hex(pattern_hash(3, bytes));
  const ProcessResult r = run("tcpecho", "port=" + std::to_string(server.port()) +
                                             " bytes=" + std::to_string(bytes) + " seed=3 timeout=55");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(
      has_lines_in_order(r.out, {"tcpecho: sent 16777216 bytes, received 16777216 bytes, hash " + hash,
                                 "tcpecho: closed", "tcpecho: ok"}))
      << describe(r);
  std::this_thread::sleep_for(milliseconds(200));
  const auto conns = server.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].bytes, bytes);
  EXPECT_EQ(hash_hex(conns[0].hash), hash);
}

// The server aborts after 100000 bytes: libslirp turns the host's RST
// into a RST to the guest, which fails with the bytes it had.
TEST_F(NatGuestsUnderQemu, TcpEchoServerResetIsAFailure) {
  TcpEchoServer server(0, 100000);
  ASSERT_TRUE(server.ok());
  const ProcessResult r =
      run("tcpecho", "port=" + std::to_string(server.port()) + " bytes=1000000 timeout=30");
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_TRUE(has_lines_in_order(r.out, {"tcpecho: connected, peer mss 1460", "tcpecho: FAIL reset"}))
      << describe(r);
  const auto conns = server.connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_TRUE(conns[0].reset_sent);
}

// Nobody listens: libslirp's connect on the host fails and it answers the
// guest's SYN with a RST.
TEST_F(NatGuestsUnderQemu, TcpConnectToAClosedPortIsRefused) {
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const ProcessResult r = run("tcpecho", "port=" + std::to_string(port) + " bytes=1000 timeout=20");
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_TRUE(has_lines_in_order(r.out, {"tcpecho: connecting to 10.0.2.2 port " + std::to_string(port),
                                         "tcpecho: FAIL connect: refused"}))
      << describe(r);
}

// ---- TCP: a host client reaches the guest through a port forward ----

TEST_F(NatGuestsUnderQemu, TcpServeThroughHostForward) {
  const int host_port = free_port(SOCK_STREAM);
  ASSERT_GT(host_port, 0);
  const uint64_t bytes = 1024 * 1024 + 17;
  const uint32_t seed = 99;
  const std::string hash = hash_hex(pattern_hash(seed, bytes));
  BackgroundProcess p = spawn_process(
      argv("tcpserve", "port=8080 timeout=40 expect_bytes=" + std::to_string(bytes) + " expect_hash=" + hash,
           "user,hostfwd=tcp:127.0.0.1:" + std::to_string(host_port) + "-:8080"));
  // libslirp accepts on the host side at once, so wait until the guest
  // listens: before that its RST would close our connection.
  bool listening_now = false;
  for (int i = 0; i < 1000 && !listening_now; ++i) {
    listening_now = output_so_far(p).find("tcpserve: listening on port 8080") != std::string::npos;
    if (!listening_now) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(listening_now) << output_so_far(p);
  const EchoClientResult c = tcp_echo_client(host_port, bytes, seed, milliseconds(30000));
  const ProcessResult r = wait_process(p, kGuestTimeout);
  EXPECT_TRUE(c.connected) << c.error;
  EXPECT_TRUE(c.matched) << c.error;
  EXPECT_TRUE(c.eof) << c.error;
  EXPECT_EQ(c.sent, bytes);
  EXPECT_EQ(c.received, bytes);
  EXPECT_EQ(hash_hex(c.hash), hash);
  EXPECT_EQ(r.status, 1) << describe(r);
  const std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit",
      "tcpserve: lease " + kLease,
      "tcpserve: listening on port 8080",
      "tcpserve: connection from 10.0.2.2",
      "tcpserve: received 1048593 bytes, sent 1048593 bytes, hash " + hash,
      "tcpserve: closed",
      "tcpserve: ok"};
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  EXPECT_EQ(lines_of(r.out).size(), want.size()) << describe(r);
}

// ---- TFTP ----

class NatTftpUnderQemu : public NatGuestsUnderQemu {
 protected:
  void SetUp() override {
    NatGuestsUnderQemu::SetUp();
    if (IsSkipped()) return;
    m_dir = scratch_dir() + "/tftp";
    mkdir(m_dir.c_str(), 0755);
  }
  // A file of the pattern for `seed`; returns its hash.
  std::string make_file(const std::string& name, uint64_t size, uint32_t seed) {
    std::ofstream out(m_dir + "/" + name, std::ios::binary | std::ios::trunc);
    for (uint64_t done = 0; done < size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(1 << 20, size - done));
      const std::vector<uint8_t> chunk = pattern_bytes(seed, done, n);
      out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
      done += n;
    }
    return hash_hex(pattern_hash(seed, size));
  }
  ProcessResult get(const std::string& append) { return run("tftpget", append, "user,tftp=" + m_dir); }
  std::string m_dir;
};

TEST_F(NatTftpUnderQemu, ThreeMegabytesWithBlksize1428) {
  const std::string hash = make_file("three.bin", 3000000, 3);
  const ProcessResult r =
      get("file=three.bin blksize=1428 expect_size=3000000 expect_hash=" + hash + " timeout=50");
  EXPECT_EQ(r.status, 1) << describe(r);
  const std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit",
      "tftpget: lease " + kLease,
      "tftpget: RRQ three.bin from 10.0.2.2, blksize 1428, tsize",
      "tftpget: oack blksize 1428 tsize 3000000",
      "tftpget: received 3000000 bytes in 2101 blocks, 0 rollovers, hash " + hash,
      "tftpget: ok"};
  EXPECT_TRUE(has_lines_in_order(r.out, want)) << describe(r);
  EXPECT_EQ(lines_of(r.out).size(), want.size()) << describe(r);
}

// 4 x 512 bytes: the fifth DATA is empty and ends the transfer. Without a
// blksize option libslirp's OACK carries tsize only.
TEST_F(NatTftpUnderQemu, FileEndingOnABlockBoundary) {
  const std::string hash = make_file("exact.bin", 2048, 4);
  const ProcessResult r = get("file=exact.bin expect_size=2048 expect_hash=" + hash + " timeout=30");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"tftpget: RRQ exact.bin from 10.0.2.2, blksize 512, tsize", "tftpget: oack tsize 2048",
              "tftpget: received 2048 bytes in 5 blocks, 0 rollovers, hash " + hash, "tftpget: ok"}))
      << describe(r);
}

// 33 MiB in 512-byte blocks: 67585 blocks, so the block number wraps once.
TEST_F(NatTftpUnderQemu, BlockNumberRollsOverWithSmallBlocks) {
  const uint64_t size = 33ull << 20;
  const std::string hash = make_file("big512.bin", size, 5);
  const ProcessResult r = get("file=big512.bin blksize=512 expect_size=" + std::to_string(size) +
                              " expect_hash=" + hash + " timeout=55");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"tftpget: oack tsize 34603008",
              "tftpget: received 34603008 bytes in 67585 blocks, 1 rollovers, hash " + hash, "tftpget: ok"}))
      << describe(r);
}

// 96 MiB with blksize 1428: 70493 blocks, past 65535 with the largest
// blocks libslirp offers (about 20 s under QEMU here).
TEST_F(NatTftpUnderQemu, BlockNumberRollsOverWithLargeBlocks) {
  const uint64_t size = 96ull << 20;
  const std::string hash = make_file("big1428.bin", size, 6);
  const ProcessResult r = get("file=big1428.bin blksize=1428 expect_size=" + std::to_string(size) +
                              " expect_hash=" + hash + " timeout=58");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"tftpget: oack blksize 1428 tsize 100663296",
              "tftpget: received 100663296 bytes in 70493 blocks, 1 rollovers, hash " + hash, "tftpget: ok"}))
      << describe(r);
}

// A larger blksize than libslirp's 1428 is cut down in the OACK.
TEST_F(NatTftpUnderQemu, BlksizeAboveTheServersLimitIsCut) {
  const std::string hash = make_file("cut.bin", 10000, 8);
  const ProcessResult r = get("file=cut.bin blksize=1468 expect_hash=" + hash + " timeout=30");
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(has_lines_in_order(
      r.out, {"tftpget: oack blksize 1428 tsize 10000",
              "tftpget: received 10000 bytes in 8 blocks, 0 rollovers, hash " + hash, "tftpget: ok"}))
      << describe(r);
}

TEST_F(NatTftpUnderQemu, MissingFileIsAnError) {
  const ProcessResult r = get("file=missing.bin blksize=1428 timeout=30");
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_TRUE(has_lines_in_order(r.out, {"tftpget: FAIL error 1: File not found"})) << describe(r);
}

// The guest's own check must be able to fail: a wrong expect_hash=.
TEST_F(NatTftpUnderQemu, WrongExpectedHashFails) {
  make_file("small.bin", 5000, 9);
  const ProcessResult r = get("file=small.bin expect_hash=0x0123456789abcdef timeout=30");
  EXPECT_EQ(r.status, 7) << describe(r);
  EXPECT_TRUE(has_lines_in_order(r.out, {"tftpget: FAIL hash differs from expect_hash="})) << describe(r);
}

// ---- DNS, in a namespace of its own ----

// What a QEMU run inside the namespace left behind.
struct NamespaceRun {
  std::string skip;  // why it could not run (empty: it ran)
  ProcessResult result;
  std::vector<std::string> queries;  // "name type rcode" per query the server saw
};

// In a child: new user, mount and network namespaces; /etc/resolv.conf
// replaced by "nameserver 127.0.0.1"; loopback up; the DNS server on
// 127.0.0.1:53; then QEMU. Must be called with no other thread running
// (unshare(CLONE_NEWUSER) refuses a multi-threaded caller; the fork leaves
// only this thread in the child anyway).
NamespaceRun run_in_dns_namespace(const std::vector<std::string>& qemu_argv,
                                  std::map<std::string, uint32_t> table) {
  NamespaceRun out;
  const std::string dir = scratch_dir();
  static int counter = 0;
  const std::string base = dir + "/dnsns" + std::to_string(counter++);
  const std::string resolv = base + ".resolv.conf", skip_path = base + ".skip",
                    queries_path = base + ".queries", out_path = base + ".out", err_path = base + ".err",
                    status_path = base + ".status";
  { std::ofstream(resolv) << "nameserver 127.0.0.1\n"; }
  const uid_t uid = getuid();
  const gid_t gid = getgid();
  const pid_t child = fork();
  if (child < 0) {
    out.skip = "fork failed";
    return out;
  }
  if (child == 0) {
    auto give_up = [&](const std::string& why) {
      std::ofstream(skip_path) << why << ": " << std::strerror(errno) << "\n";
      _exit(77);
    };
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) give_up("unshare(user, mount, net)");
    { std::ofstream(std::string("/proc/self/setgroups")) << "deny"; }
    { std::ofstream(std::string("/proc/self/uid_map")) << "0 " << uid << " 1"; }
    { std::ofstream(std::string("/proc/self/gid_map")) << "0 " << gid << " 1"; }
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) give_up("mount --make-rprivate /");
    if (mount(resolv.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
      give_up("bind-mount over /etc/resolv.conf");
    const int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) give_up("SIOCGIFFLAGS lo");
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) give_up("SIOCSIFFLAGS lo up");
    close(s);
    int status = -1;
    std::vector<std::string> seen;
    {
      DnsServer server(std::move(table), 53);
      if (!server.ok()) give_up("DNS server on 127.0.0.1:53");
      BackgroundProcess q = spawn_process(qemu_argv);
      ProcessResult r = wait_process(q, kGuestTimeout);
      status = r.status;
      { std::ofstream(out_path) << r.out; }
      { std::ofstream(err_path) << r.err; }
      for (const auto& k : server.queries())
        seen.push_back(k.name + " " + std::to_string(k.type) + " " + std::to_string(k.rcode));
    }
    {
      std::ofstream qs(queries_path);
      for (const auto& line : seen) qs << line << "\n";
    }
    { std::ofstream(status_path) << status; }
    _exit(0);
  }
  int wstatus = 0;
  const auto deadline = std::chrono::steady_clock::now() + kGuestTimeout + milliseconds(10000);
  pid_t done = 0;
  while ((done = waitpid(child, &wstatus, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &wstatus, 0);
    out.skip = "namespace child did not finish";
    return out;
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 77) {
    out.skip = "no private DNS namespace: " + read_text(skip_path);
    return out;
  }
  out.result.out = read_text(out_path);
  out.result.err = read_text(err_path);
  const std::string st = read_text(status_path);
  out.result.status = st.empty() ? -1 : std::stoi(st);
  out.queries = lines_of(read_text(queries_path));
  return out;
}

class NatDnsUnderQemu : public NatGuestsUnderQemu {
 protected:
  NamespaceRun lookup(const std::string& append) {
    return run_in_dns_namespace(argv("dnslookup", append, "user"),
                                {{"host.reel.test", 0xc0000207u}, {"other.reel.test", 0xc0000208u}});
  }
};

TEST_F(NatDnsUnderQemu, ARecordThroughTheForwarder) {
  const NamespaceRun n = lookup("name=host.reel.test expect=192.0.2.7 timeout=20");
  if (!n.skip.empty()) GTEST_SKIP() << n.skip;
  EXPECT_EQ(n.result.status, 1) << describe(n.result);
  const std::vector<std::string> want = {
      "net: nic0 ne2k_pci 00:03.0 io c000 irq 11 mac 52:54:00:12:34:56 16-bit", "dnslookup: lease " + kLease,
      "dnslookup: host.reel.test via 10.0.2.3", "dnslookup: host.reel.test is 192.0.2.7", "dnslookup: ok"};
  EXPECT_TRUE(has_lines_in_order(n.result.out, want)) << describe(n.result);
  EXPECT_EQ(lines_of(n.result.out).size(), want.size()) << describe(n.result);
  EXPECT_EQ(n.queries, std::vector<std::string>{"host.reel.test 1 0"});
}

TEST_F(NatDnsUnderQemu, UnknownNameIsNxdomain) {
  const NamespaceRun n = lookup("name=nobody.reel.test expect_rcode=3 timeout=20");
  if (!n.skip.empty()) GTEST_SKIP() << n.skip;
  EXPECT_EQ(n.result.status, 1) << describe(n.result);
  EXPECT_TRUE(
      has_lines_in_order(n.result.out, {"dnslookup: nobody.reel.test rcode 3 (NXDOMAIN)", "dnslookup: ok"}))
      << describe(n.result);
  EXPECT_EQ(n.queries, std::vector<std::string>{"nobody.reel.test 1 3"});
}

// A CNAME first, then the A record, both with compression pointers.
TEST_F(NatDnsUnderQemu, CnameThenARecord) {
  const NamespaceRun n = lookup("name=alias.reel.test expect=192.0.2.7 timeout=20");
  if (!n.skip.empty()) GTEST_SKIP() << n.skip;
  EXPECT_EQ(n.result.status, 1) << describe(n.result);
  EXPECT_TRUE(has_lines_in_order(n.result.out, {"dnslookup: alias.reel.test is 192.0.2.7", "dnslookup: ok"}))
      << describe(n.result);
}

// An answer whose name points at itself: the guest must reject it (counted
// as malformed), ask again, and give up at its deadline, not hang.
TEST_F(NatDnsUnderQemu, PointerLoopIsRejected) {
  const NamespaceRun n = lookup("name=loop.reel.test timeout=6");
  if (!n.skip.empty()) GTEST_SKIP() << n.skip;
  EXPECT_EQ(n.result.status, 7) << describe(n.result);
  EXPECT_TRUE(has_lines_in_order(n.result.out, {"dnslookup: FAIL no answer before the deadline"}))
      << describe(n.result);
  EXPECT_NE(n.result.out.find(" malformed "), std::string::npos) << describe(n.result);
  EXPECT_EQ(n.result.out.find(" malformed 0"), std::string::npos) << describe(n.result);
  EXPECT_GE(n.queries.size(), 2u) << "the guest should have retried";
}

// The guest's expect= must be able to fail.
TEST_F(NatDnsUnderQemu, WrongExpectationFails) {
  const NamespaceRun n = lookup("name=other.reel.test expect=192.0.2.7 timeout=20");
  if (!n.skip.empty()) GTEST_SKIP() << n.skip;
  EXPECT_EQ(n.result.status, 7) << describe(n.result);
  EXPECT_TRUE(has_lines_in_order(n.result.out, {"dnslookup: other.reel.test is 192.0.2.8",
                                                "dnslookup: FAIL address differs from expect="}))
      << describe(n.result);
}

}  // namespace
}  // namespace reel::test
