// The NAT side of -net user under reel, each guest session recorded and
// replayed with nothing on the host side any more (servers stopped, files
// deleted, ports taken), the replay giving the same console output and
// state hash: TCP echo through 10.0.2.2 to a server on the host's
// 127.0.0.1 (a few MiB, checked by hash on both ends), a TFTP get of a
// 40 MiB file with blksize 1428, a host client reaching a guest server
// through -redir, and DNS lookups through 10.0.2.3 against a test resolver
// on loopback (resolver=).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "tests/unit/loopback_servers.h"
#include "tests/unit/net_test_support.h"

namespace reel::test {
namespace {

constexpr milliseconds kGuestTimeout{240000};

const std::vector<std::string> kExit = {"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};

std::vector<std::string> record_args(const std::string& journal, const std::string& guest,
                                     const std::string& append, const std::vector<std::string>& net) {
  std::vector<std::string> v = {"record",  "-o",   journal,   "-kernel", guest_path(guest),
                                "-append", append, "-serial", "stdio"};
  v.insert(v.end(), kExit.begin(), kExit.end());
  v.insert(v.end(), net.begin(), net.end());
  return v;
}

// Replays `journal` and checks it against the recorded run.
void expect_replay_matches(const std::string& journal, const ProcessResult& rec) {
  const ProcessResult rep = run_reel({"replay", journal});
  EXPECT_EQ(rep.status, rec.status) << describe(rep);
  EXPECT_EQ(rep.out, rec.out);
  EXPECT_EQ(summary_field(rep.err, "state_hash"), summary_field(rec.err, "state_hash")) << describe(rep);
  EXPECT_FALSE(summary_field(rec.err, "state_hash").empty()) << describe(rec);
}

class UserNetNat : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* g : {"tcpecho", "tcpserve", "tftpget", "dnslookup"}) {
      if (access(guest_path(g).c_str(), R_OK) != 0) GTEST_SKIP() << "guest " << g << " not built";
    }
  }
};

TEST_F(UserNetNat, TcpEchoThroughTheGatewayToTheHostsLoopback) {
  constexpr uint64_t kBytes = 3u << 20;
  const std::string journal = scratch_dir() + "/tcpecho.reel";
  ProcessResult rec;
  std::string server_hash;
  {
    TcpEchoServer server;
    ASSERT_TRUE(server.ok());
    rec = run_reel(record_args(
        journal, "tcpecho",
        "port=" + std::to_string(server.port()) + " bytes=" + std::to_string(kBytes) + " seed=7 timeout=120",
        {"-net", "nic", "-net", "user"}));
    const auto conns = server.connections();
    ASSERT_EQ(conns.size(), 1u) << describe(rec);
    EXPECT_EQ(conns[0].bytes, kBytes);
    EXPECT_TRUE(conns[0].peer_closed) << "the guest closed with a FIN";
    server_hash = hash_hex(conns[0].hash);
  }
  ASSERT_EQ(rec.status, 1) << describe(rec);
  const std::string expected = hash_hex(pattern_hash(7, kBytes));
  EXPECT_EQ(server_hash, expected);
  EXPECT_TRUE(has_lines_in_order(rec.out, {"tcpecho: connected, peer mss 1460",
                                           "tcpecho: sent " + std::to_string(kBytes) + " bytes, received " +
                                               std::to_string(kBytes) + " bytes, hash " + expected,
                                           "tcpecho: closed", "tcpecho: ok"}))
      << describe(rec);
  // The server is gone: the replay needs none of it.
  expect_replay_matches(journal, rec);
}

TEST_F(UserNetNat, RefusedConnectionIsReportedToTheGuest) {
  const int port = free_port(SOCK_STREAM);  // nobody listens there
  const std::string journal = scratch_dir() + "/refused.reel";
  const ProcessResult rec = run_reel(record_args(
      journal, "tcpecho", "port=" + std::to_string(port) + " timeout=30", {"-net", "nic", "-net", "user"}));
  EXPECT_EQ(rec.status, 7) << describe(rec);  // exit code 3: a failure the guest saw
  EXPECT_NE(rec.out.find("tcpecho: FAIL"), std::string::npos) << describe(rec);
  EXPECT_NE(rec.out.find("tcpecho: FAIL connect: refused"), std::string::npos) << "the gateway answers RST\n"
                                                                               << describe(rec);
  expect_replay_matches(journal, rec);
}

// The sanitizer build runs the same transfer on 8 MiB: 40 MiB there costs
// minutes and checks nothing the optimised suite does not.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kTftpSize = 8u << 20;
#else
constexpr uint64_t kTftpSize = 40u << 20;
#endif

TEST_F(UserNetNat, TftpGetOf40MiBWithBlksize1428) {
  constexpr uint64_t kSize = kTftpSize;
  const std::string root = scratch_dir() + "/tftp";
  mkdir(root.c_str(), 0755);
  const std::string file = root + "/big.bin";
  {
    std::ofstream f(file, std::ios::binary);
    for (uint64_t at = 0; at < kSize; at += 65536) {
      const auto chunk = pattern_bytes(11, at, 65536);
      f.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
    }
  }
  const std::string expected = hash_hex(pattern_hash(11, kSize));
  const std::string journal = scratch_dir() + "/tftp.reel";
  const ProcessResult rec =
      run_reel(record_args(journal, "tftpget",
                           "file=big.bin blksize=1428 expect_size=" + std::to_string(kSize) +
                               " expect_hash=" + expected + " timeout=600",
                           {"-net", "nic", "-net", "user,tftp=" + root}));
  ASSERT_EQ(rec.status, 1) << describe(rec);
  EXPECT_TRUE(has_lines_in_order(
      rec.out, {"tftpget: oack blksize 1428 tsize " + std::to_string(kSize),
                "tftpget: received " + std::to_string(kSize) + " bytes in " +
                    std::to_string(kSize / 1428 + 1) + " blocks, 0 rollovers, hash " + expected,
                "tftpget: ok"}))
      << describe(rec);
  // The journal carries the file: delete it, and the directory, first.
  std::remove(file.c_str());
  rmdir(root.c_str());
  expect_replay_matches(journal, rec);
}

TEST_F(UserNetNat, TftpErrorsReachTheGuest) {
  const std::string root = scratch_dir() + "/tftp-empty";
  mkdir(root.c_str(), 0755);
  const std::string journal = scratch_dir() + "/tftp-missing.reel";
  const ProcessResult rec = run_reel(record_args(journal, "tftpget", "file=missing.bin timeout=30",
                                                 {"-net", "nic", "-net", "user,tftp=" + root}));
  EXPECT_EQ(rec.status, 7) << describe(rec);
  EXPECT_NE(rec.out.find("tftpget: FAIL"), std::string::npos) << describe(rec);
  EXPECT_NE(rec.out.find("tftpget: FAIL error 1: File not found"), std::string::npos) << describe(rec);
  expect_replay_matches(journal, rec);
  // Leaving the root is an access violation.
  const ProcessResult jail =
      run_reel(record_args(scratch_dir() + "/tftp-jail.reel", "tftpget", "file=../tftp-empty/x timeout=30",
                           {"-net", "nic", "-net", "user,tftp=" + root}));
  EXPECT_NE(jail.out.find("tftpget: FAIL error 2: Access violation"), std::string::npos) << describe(jail);
}

TEST_F(UserNetNat, HostClientReachesAGuestServerThroughRedir) {
  constexpr uint64_t kBytes = 1u << 20;
  const int port = free_port(SOCK_STREAM);
  ASSERT_GT(port, 0);
  const std::string journal = scratch_dir() + "/redir.reel";
  std::vector<std::string> argv = {reel_binary()};
  const auto rest =
      record_args(journal, "tcpserve",
                  "port=8080 timeout=120 expect_bytes=" + std::to_string(kBytes) +
                      " expect_hash=" + hash_hex(pattern_hash(3, kBytes)),
                  {"-net", "nic", "-net", "user", "-redir", "tcp:" + std::to_string(port) + "::8080"});
  argv.insert(argv.end(), rest.begin(), rest.end());
  BackgroundProcess reel = spawn_process(argv);
  ASSERT_TRUE(wait_listening(port, reel)) << describe(stop_process(reel));
  // The guest may still be taking its lease: connect once it listens.
  EchoClientResult c;
  for (int attempt = 0; attempt < 50; ++attempt) {
    c = tcp_echo_client(port, kBytes, 3, milliseconds(60000));
    if (c.received > 0 || c.eof) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const ProcessResult rec = wait_process(reel, kGuestTimeout);
  ASSERT_EQ(rec.status, 1) << describe(rec) << c.error;
  EXPECT_EQ(c.sent, kBytes) << c.error;
  EXPECT_EQ(c.received, kBytes) << c.error;
  EXPECT_TRUE(c.matched) << c.error;
  EXPECT_TRUE(c.eof);
  EXPECT_TRUE(has_lines_in_order(
      rec.out, {"tcpserve: connection from 10.0.2.2",
                "tcpserve: received " + std::to_string(kBytes) + " bytes, sent " + std::to_string(kBytes) +
                    " bytes, hash " + hash_hex(pattern_hash(3, kBytes)),
                "tcpserve: ok"}))
      << describe(rec);
  // The forward's port is someone else's now; the replay does not care.
  TcpEchoServer squatter(port);
  expect_replay_matches(journal, rec);
}

TEST_F(UserNetNat, DnsLookupsThroughTheGatewayToATestResolver) {
  DnsServer dns({{"host.reel.test", 0xc0000207}});
  ASSERT_TRUE(dns.ok());
  const std::string resolver = "user,resolver=127.0.0.1:" + std::to_string(dns.port());
  const std::string journal = scratch_dir() + "/dns.reel";
  const ProcessResult rec = run_reel(record_args(journal, "dnslookup", "name=host.reel.test expect=192.0.2.7",
                                                 {"-net", "nic", "-net", resolver}));
  ASSERT_EQ(rec.status, 1) << describe(rec);
  EXPECT_TRUE(has_lines_in_order(rec.out, {"dnslookup: host.reel.test via 10.0.2.3",
                                           "dnslookup: host.reel.test is 192.0.2.7", "dnslookup: ok"}))
      << describe(rec);
  const ProcessResult nx =
      run_reel(record_args(scratch_dir() + "/nx.reel", "dnslookup", "name=nobody.reel.test expect_rcode=3",
                           {"-net", "nic", "-net", resolver}));
  EXPECT_EQ(nx.status, 1) << describe(nx);
  EXPECT_NE(nx.out.find("rcode 3"), std::string::npos) << describe(nx);
  ASSERT_GE(dns.queries().size(), 2u);
  expect_replay_matches(journal, rec);
}

}  // namespace
}  // namespace reel::test
