// The TFTP server of `-net user`, datagram by datagram: a fake gateway link
// collects what the server sends toward the guest; files come from the
// FakeHostIO's in-memory map through read_file_under().

#include "netstack/tftp_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/machine.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tftp.h"
#include "netstack/wire/udp.h"
#include "replay/journal.h"
#include "replay/recording_host_io.h"
#include "replay/replaying_host_io.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using namespace reel::wire;

constexpr u32 kGuestIp = 0x0a00020f;
constexpr u32 kHost = 0x0a000202;
constexpr u16 kClientPort = 2001;
constexpr u64 kSecond = 1'000'000'000;

class FakeLink : public GatewayLink {
 public:
  FakeLink(Machine& machine, UserNetConfig config) : m_machine(machine), m_config(std::move(config)) {}
  Machine& machine() override { return m_machine; }
  const UserNetConfig& config() const override { return m_config; }
  u64 now_ns() const override { return now; }
  bool send_to_guest(const GatewayDatagram& d, std::span<const u8> payload) override {
    sent.push_back({d, std::vector<u8>(payload.begin(), payload.end())});
    return reachable;
  }
  void send_icmp_error(std::span<const u8>, u8, u8) override { ++icmp_errors; }
  void wake_at(u64 deadline_ns) override { wakes.push_back(deadline_ns); }
  std::optional<HostTarget> host_target(u32, u16) override { return std::nullopt; }
  u32 guest_visible_source(u32 ip) const override { return ip; }
  void log(const std::string& line) override { logs.push_back(line); }

  struct Sent {
    GatewayDatagram datagram;
    std::vector<u8> udp;
  };
  u64 now = 5 * kSecond;
  bool reachable = true;
  int icmp_errors = 0;
  std::vector<Sent> sent;
  std::vector<u64> wakes;
  std::vector<std::string> logs;

 private:
  Machine& m_machine;
  UserNetConfig m_config;
};

// A TFTP message the server sent, checked down to its UDP header; the
// bytes are kept so the views stay valid.
struct Reply {
  std::vector<u8> tftp;
  u16 source_port = 0;
  u16 destination_port = 0;
  u32 source = 0;
  u32 destination = 0;
  TftpPacket packet() const {
    const auto p = TftpPacket::parse(tftp);
    EXPECT_TRUE(p) << to_string(p.error);
    return *p.packet;
  }
};

std::vector<u8> pattern(std::size_t n, u8 seed = 0) {
  std::vector<u8> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<u8>(i * 7 + seed + (i >> 8));
  return v;
}

// Hands `server` a UDP datagram holding `tftp` from the guest, through the
// same parsers the gateway uses.
void deliver(TftpServer& server, std::span<const u8> tftp, u16 client_port = kClientPort,
             u32 client_ip = kGuestIp) {
  std::vector<u8> udp(kUdpHeaderSize + tftp.size());
  ASSERT_TRUE(build_udp(udp, client_ip, kHost, client_port, kTftpServerPort, tftp));
  Ipv4Fields f;
  f.source = client_ip;
  f.destination = kHost;
  f.protocol = static_cast<u8>(IpProtocol::udp);
  std::vector<u8> ip(20 + udp.size());
  ASSERT_TRUE(build_ipv4(ip, f, udp));
  const auto ipp = Ipv4Packet::parse(ip);
  ASSERT_TRUE(ipp);
  const auto udpp = UdpDatagram::parse(*ipp);
  ASSERT_TRUE(udpp);
  server.guest_datagram(*ipp, *udpp);
}

std::vector<u8> request_bytes(std::string_view name, std::vector<TftpOption> options = {},
                              TftpMode mode = TftpMode::octet, TftpOpcode opcode = TftpOpcode::rrq) {
  std::vector<u8> out(2048);
  const auto n = build_tftp_request(out, opcode, name, mode, options);
  EXPECT_TRUE(n);
  out.resize(n.value_or(0));
  return out;
}

std::vector<u8> ack_bytes(u16 block) {
  std::vector<u8> out(4);
  EXPECT_TRUE(build_tftp_ack(out, block));
  return out;
}

UserNetConfig with_root(std::string root) {
  UserNetConfig c;
  c.tftp_root = std::move(root);
  return c;
}

class TftpServerTest : public ::testing::Test {
 protected:
  explicit TftpServerTest(UserNetConfig config = with_root("/tftp")) {
    MachineConfig mc;
    mc.ram_bytes = 1 << 20;
    machine = std::make_unique<Machine>(mc, host);
    link = std::make_unique<FakeLink>(*machine, std::move(config));
    server = std::make_unique<TftpServer>(*link);
  }

  void send(std::span<const u8> tftp, u16 client_port = kClientPort, u32 client_ip = kGuestIp) {
    deliver(*server, tftp, client_port, client_ip);
  }
  void rrq(std::string_view name, std::vector<TftpOption> options = {}, TftpMode mode = TftpMode::octet,
           u16 client_port = kClientPort, TftpOpcode opcode = TftpOpcode::rrq) {
    send(request_bytes(name, options, mode, opcode), client_port);
  }
  void ack(u16 block, u16 client_port = kClientPort) { send(ack_bytes(block), client_port); }

  // Everything sent since the last call, parsed and checked as UDP.
  std::vector<Reply> replies() {
    std::vector<Reply> out;
    for (const auto& s : link->sent) {
      EXPECT_EQ(s.datagram.protocol, 17);
      const auto udp = UdpDatagram::parse(s.udp, s.datagram.source, s.datagram.destination);
      EXPECT_TRUE(udp) << to_string(udp.error);
      if (!udp) continue;
      EXPECT_TRUE(udp->has_checksum());
      Reply r;
      r.tftp.assign(udp->payload().begin(), udp->payload().end());
      r.source_port = udp->source_port();
      r.destination_port = udp->destination_port();
      r.source = s.datagram.source;
      r.destination = s.datagram.destination;
      out.push_back(std::move(r));
    }
    link->sent.clear();
    return out;
  }
  // Exactly one reply, which must be DATA `block` carrying `data`.
  void expect_data(u16 block, std::span<const u8> data, u16 client_port = kClientPort) {
    const auto r = replies();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].source, kHost);
    EXPECT_EQ(r[0].destination, kGuestIp);
    EXPECT_EQ(r[0].source_port, kTftpServerPort);
    EXPECT_EQ(r[0].destination_port, client_port);
    const TftpPacket p = r[0].packet();
    ASSERT_EQ(p.opcode(), TftpOpcode::data);
    EXPECT_EQ(p.block(), block);
    EXPECT_EQ(std::vector<u8>(p.data().begin(), p.data().end()), std::vector<u8>(data.begin(), data.end()));
  }
  // Exactly one reply, which must be ERROR `code` with `message`.
  void expect_error(TftpErrorCode code, std::string_view message) {
    const auto r = replies();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].source_port, kTftpServerPort);
    const TftpPacket p = r[0].packet();
    ASSERT_EQ(p.opcode(), TftpOpcode::error);
    EXPECT_EQ(p.error_code(), static_cast<u16>(code));
    EXPECT_EQ(p.error_message(), message);
  }

  std::string dump() {
    std::ostringstream s;
    {
      JsonOut ar(s);
      server->serialize(ar);
    }
    return s.str();
  }

  test::FakeHostIO host;
  std::unique_ptr<Machine> machine;
  std::unique_ptr<FakeLink> link;
  std::unique_ptr<TftpServer> server;
};

// ------------------------------------------------------------ plain RRQ --

TEST_F(TftpServerTest, RrqWithoutOptionsSends512ByteBlocksThenAShortOne) {
  const auto file = pattern(1100);
  host.files["boot/pxelinux.0"] = file;
  rrq("boot/pxelinux.0");
  EXPECT_EQ(host.reads, std::vector<std::string>{"boot/pxelinux.0"});
  EXPECT_EQ(server->session_count(), 1u);
  expect_data(1, std::span(file).first(512));
  ack(1);
  expect_data(2, std::span(file).subspan(512, 512));
  ack(2);
  expect_data(3, std::span(file).subspan(1024));
  EXPECT_EQ(server->session_count(), 1u);
  ack(3);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->session_count(), 0u);
  const auto& c = server->counters();
  EXPECT_EQ(c.requests, 1u);
  EXPECT_EQ(c.data_sent, 3u);
  EXPECT_EQ(c.acks_in, 3u);
  EXPECT_EQ(c.sessions_completed, 1u);
  EXPECT_EQ(c.oacks_sent, 0u);
  // The file was read once for the whole transfer.
  EXPECT_EQ(host.reads.size(), 1u);
  // One wake for the first deadline; later ones only push it back.
  EXPECT_EQ(link->wakes, std::vector<u64>{link->now + kSecond});
}

TEST_F(TftpServerTest, ExactMultipleOfTheBlockSizeEndsWithAnEmptyBlock) {
  const auto file = pattern(1024);
  host.files["f"] = file;
  rrq("f");
  expect_data(1, std::span(file).first(512));
  ack(1);
  expect_data(2, std::span(file).subspan(512));
  ack(2);
  expect_data(3, {});
  ack(3);
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_EQ(server->counters().sessions_completed, 1u);
}

TEST_F(TftpServerTest, EmptyFileIsOneEmptyDataBlock) {
  host.files["empty"] = {};
  rrq("empty");
  expect_data(1, {});
  ack(1);
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_EQ(server->counters().sessions_completed, 1u);
}

// -------------------------------------------------------------- options --

TEST_F(TftpServerTest, OackAnswersBlksizeTsizeTimeoutThenWaitsForAck0) {
  const auto file = pattern(3000);
  host.files["k"] = file;
  rrq("k", {{"BLKSIZE", "1024"}, {"tsize", "0"}, {"timeout", "3"}, {"windowsize", "4"}});
  auto r = replies();
  ASSERT_EQ(r.size(), 1u);
  {
    const TftpPacket p = r[0].packet();
    ASSERT_EQ(p.opcode(), TftpOpcode::oack);
    ASSERT_EQ(p.options().size(), 3u);  // windowsize is not ours to grant
    EXPECT_EQ(p.options()[0].name, "blksize");
    EXPECT_EQ(p.options()[0].value, "1024");
    EXPECT_EQ(p.options()[1].name, "tsize");
    EXPECT_EQ(p.options()[1].value, "3000");
    EXPECT_EQ(p.options()[2].name, "timeout");
    EXPECT_EQ(p.options()[2].value, "3");
  }
  EXPECT_EQ(server->counters().oacks_sent, 1u);
  EXPECT_EQ(server->counters().data_sent, 0u);
  // ACK 1 before ACK 0 is not the answer to an OACK.
  ack(1);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().stray_acks, 1u);
  ack(0);
  expect_data(1, std::span(file).first(1024));
  ack(1);
  expect_data(2, std::span(file).subspan(1024, 1024));
  // The timeout option is the retransmission interval.
  link->now += 3 * kSecond - 1;
  server->on_timer(link->now);
  EXPECT_TRUE(replies().empty());
  link->now += 1;
  server->on_timer(link->now);
  expect_data(2, std::span(file).subspan(1024, 1024));
  ack(2);
  expect_data(3, std::span(file).subspan(2048));
  ack(3);
  EXPECT_EQ(server->counters().sessions_completed, 1u);
}

TEST_F(TftpServerTest, BlksizeIsCappedAsLibslirpCapsIt) {
  const auto file = pattern(4000);
  host.files["big"] = file;
  rrq("big", {{"blksize", "65464"}});
  auto r = replies();
  ASSERT_EQ(r.size(), 1u);
  const TftpPacket p = r[0].packet();
  ASSERT_EQ(p.opcode(), TftpOpcode::oack);
  ASSERT_EQ(p.options().size(), 1u);
  EXPECT_EQ(p.options()[0].value, "1428");
  ack(0);
  ASSERT_EQ(link->sent.size(), 1u);
  // 8 (UDP) + 4 (TFTP) + 1428: well inside one 1500-byte datagram.
  EXPECT_EQ(link->sent[0].udp.size(), 1440u);
  EXPECT_FALSE(link->sent[0].datagram.dont_fragment);
  expect_data(1, std::span(file).first(1428));
}

TEST_F(TftpServerTest, OptionsOutOfRangeAreLeftOut) {
  const auto file = pattern(600);
  host.files["f"] = file;
  // blksize below 8, tsize not 0 in a read request, timeout 0: nothing to
  // acknowledge, so the transfer starts at once with 512-byte blocks.
  rrq("f", {{"blksize", "4"}, {"tsize", "17"}, {"timeout", "0"}});
  expect_data(1, std::span(file).first(512));
  EXPECT_EQ(server->counters().oacks_sent, 0u);
  // A smaller granted blksize than asked and a name repeated: first one wins.
  host.files["g"] = file;
  rrq("g", {{"blksize", "100"}, {"blksize", "200"}}, TftpMode::octet, 3000);
  auto r = replies();
  ASSERT_EQ(r.size(), 1u);
  const TftpPacket p = r[0].packet();
  ASSERT_EQ(p.opcode(), TftpOpcode::oack);
  ASSERT_EQ(p.options().size(), 1u);
  EXPECT_EQ(p.options()[0].value, "100");
  ack(0, 3000);
  expect_data(1, std::span(file).first(100), 3000);
}

TEST_F(TftpServerTest, ClientOptionRefusalEndsTheSession) {
  host.files["f"] = pattern(100);
  rrq("f", {{"tsize", "0"}});
  ASSERT_EQ(replies().size(), 1u);
  std::vector<u8> err(64);
  const auto n = build_tftp_error(err, TftpErrorCode::option_refused, "no thanks");
  ASSERT_TRUE(n);
  err.resize(*n);
  send(err);
  EXPECT_TRUE(replies().empty());  // errors are never answered
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_EQ(server->counters().sessions_aborted, 1u);
  // Nothing left to resend.
  link->now += 10 * kSecond;
  server->on_timer(link->now);
  EXPECT_TRUE(replies().empty());
}

// ------------------------------------------------------------- rollover --

TEST_F(TftpServerTest, BlockNumbersRollOverPast65535) {
  // 8-byte blocks reach block 65535 after 512 KiB; 100 bytes more wrap.
  const auto file = pattern(65536 * 8 + 100, 3);
  host.files["wrap"] = file;
  rrq("wrap", {{"blksize", "8"}});
  ASSERT_EQ(replies().size(), 1u);  // the OACK
  std::vector<u8> got;
  u64 index = 0;
  u16 wire_block = 0;
  ack(0);
  for (;;) {
    ASSERT_EQ(link->sent.size(), 1u) << "after block " << index;
    const auto udp = UdpDatagram::parse(link->sent[0].udp, kHost, kGuestIp);
    ASSERT_TRUE(udp);
    const auto p = TftpPacket::parse(udp->payload());
    ASSERT_TRUE(p);
    ASSERT_EQ(p->opcode(), TftpOpcode::data);
    ++index;
    ASSERT_EQ(p->block(), static_cast<u16>(index)) << index;
    if (index == 65535) {
      EXPECT_EQ(p->block(), 65535);
    }
    if (index == 65536) {
      EXPECT_EQ(p->block(), 0);  // block 0 follows 65535
    }
    got.insert(got.end(), p->data().begin(), p->data().end());
    wire_block = p->block();
    const bool last = p->data().size() < 8;
    link->sent.clear();
    ack(wire_block);
    if (last) break;
  }
  EXPECT_EQ(index, 65536u + 12 + 1);  // 65548 full blocks and a 4-byte tail
  EXPECT_EQ(got, file);
  EXPECT_TRUE(link->sent.empty());
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_EQ(server->counters().sessions_completed, 1u);
  EXPECT_EQ(server->counters().duplicate_acks, 0u);
}

// ------------------------------------------------------ retransmission --

TEST_F(TftpServerTest, RetransmitsOnVirtualTimeThenGivesUp) {
  const auto file = pattern(700);
  host.files["f"] = file;
  const u64 t0 = link->now;
  rrq("f");
  expect_data(1, std::span(file).first(512));
  ASSERT_FALSE(link->wakes.empty());
  EXPECT_EQ(link->wakes.back(), t0 + kSecond);
  EXPECT_EQ(server->next_deadline(), t0 + kSecond);
  // Early wakes (another service's deadline on the shared timer) send
  // nothing but ask again for ours, which that wake consumed.
  const std::size_t wakes = link->wakes.size();
  link->now = t0 + kSecond - 1;
  server->on_timer(link->now);
  EXPECT_TRUE(replies().empty());
  ASSERT_EQ(link->wakes.size(), wakes + 1);
  EXPECT_EQ(link->wakes.back(), t0 + kSecond);
  for (u32 i = 1; i <= TftpServer::kMaxRetries; ++i) {
    link->now = t0 + i * kSecond;
    server->on_timer(link->now);
    expect_data(1, std::span(file).first(512));
    EXPECT_EQ(link->wakes.back(), t0 + (i + 1) * kSecond);
  }
  EXPECT_EQ(server->counters().retransmissions, TftpServer::kMaxRetries);
  link->now = t0 + (TftpServer::kMaxRetries + 1) * kSecond;
  server->on_timer(link->now);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_EQ(server->counters().sessions_timed_out, 1u);
  EXPECT_EQ(server->next_deadline(), kNever);
  // A late ACK finds no session.
  ack(1);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().dropped_no_session, 1u);
}

TEST_F(TftpServerTest, AnAckRestartsTheRetryBudget) {
  const auto file = pattern(2000);
  host.files["f"] = file;
  rrq("f");
  replies();
  for (u32 i = 0; i < TftpServer::kMaxRetries; ++i) {
    link->now += kSecond;
    server->on_timer(link->now);
  }
  EXPECT_EQ(replies().size(), TftpServer::kMaxRetries);
  ack(1);
  expect_data(2, std::span(file).subspan(512, 512));
  for (u32 i = 0; i < TftpServer::kMaxRetries; ++i) {
    link->now += kSecond;
    server->on_timer(link->now);
  }
  EXPECT_EQ(replies().size(), TftpServer::kMaxRetries);
  EXPECT_EQ(server->session_count(), 1u);
}

TEST_F(TftpServerTest, DuplicateAckSendsNothing) {
  const auto file = pattern(2000);
  host.files["f"] = file;
  rrq("f");
  expect_data(1, std::span(file).first(512));
  ack(1);
  expect_data(2, std::span(file).subspan(512, 512));
  // The client's retransmitted ACK 1 must not double DATA 2 (sorcerer's apprentice).
  ack(1);
  ack(1);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().duplicate_acks, 2u);
  ack(9);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().stray_acks, 1u);
  ack(2);
  expect_data(3, std::span(file).subspan(1024, 512));
  EXPECT_EQ(server->counters().data_sent, 3u);
  EXPECT_EQ(server->counters().retransmissions, 0u);
}

TEST_F(TftpServerTest, UnreachableGuestIsCountedAndTheTimerRetries) {
  const auto file = pattern(10);
  host.files["f"] = file;
  link->reachable = false;
  rrq("f");
  EXPECT_EQ(link->sent.size(), 1u);
  link->sent.clear();
  EXPECT_EQ(server->counters().send_failures, 1u);
  link->reachable = true;
  link->now += kSecond;
  server->on_timer(link->now);
  expect_data(1, file);
}

// --------------------------------------------------------------- errors --

TEST_F(TftpServerTest, WriteRequestIsAnIllegalOperation) {
  rrq("upload", {}, TftpMode::octet, kClientPort, TftpOpcode::wrq);
  expect_error(TftpErrorCode::illegal_operation, "Write not supported");
  EXPECT_EQ(server->counters().refused_write, 1u);
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_TRUE(host.reads.empty());
}

TEST_F(TftpServerTest, MissingFileIsFileNotFound) {
  rrq("nope");
  expect_error(TftpErrorCode::file_not_found, "File not found");
  EXPECT_EQ(server->counters().refused_not_found, 1u);
  EXPECT_EQ(server->session_count(), 0u);
}

TEST_F(TftpServerTest, JailRefusalIsAccessViolation) {
  host.refused_names.insert("../etc/passwd");
  rrq("../etc/passwd");
  expect_error(TftpErrorCode::access_violation, "Access violation");
  EXPECT_EQ(server->counters().refused_access, 1u);
  EXPECT_EQ(host.reads, std::vector<std::string>{"../etc/passwd"});
  EXPECT_EQ(server->session_count(), 0u);
}

TEST_F(TftpServerTest, SixHundredByteNameIsRefusedWithoutTouchingTheHost) {
  rrq(std::string(600, 'a'));
  expect_error(TftpErrorCode::access_violation, "Access violation");
  EXPECT_EQ(server->counters().refused_name_too_long, 1u);
  EXPECT_TRUE(host.reads.empty());
  // 512 bytes is still a name (missing here).
  rrq(std::string(512, 'a'));
  expect_error(TftpErrorCode::file_not_found, "File not found");
}

TEST_F(TftpServerTest, NetasciiIsRefused) {
  host.files["f"] = pattern(10);
  rrq("f", {}, TftpMode::netascii);
  expect_error(TftpErrorCode::illegal_operation, "Unsupported transfer mode");
  rrq("f", {}, TftpMode::mail);
  expect_error(TftpErrorCode::illegal_operation, "Unsupported transfer mode");
  // A mode the parser does not know at all.
  const std::vector<u8> odd = {0, 1, 'f', 0, 'b', 'i', 'n', 0};
  send(odd);
  expect_error(TftpErrorCode::illegal_operation, "Unsupported transfer mode");
  EXPECT_EQ(server->counters().refused_mode, 3u);
  EXPECT_TRUE(host.reads.empty());
}

TEST_F(TftpServerTest, MalformedPacketsAreCountedAndDropped) {
  send(std::vector<u8>{});
  send(std::vector<u8>{0});
  send(std::vector<u8>{0, 1, 'f', 'i', 'l', 'e'});             // unterminated name
  send(std::vector<u8>{0, 1, 0, 'o', 'c', 't', 'e', 't', 0});  // empty name
  send(std::vector<u8>{0, 4, 0});                              // ACK without its block
  send(std::vector<u8>{0, 5, 0, 1, 'x'});                      // ERROR, unterminated
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().dropped_malformed, 6u);
  EXPECT_EQ(server->counters().packets_in, 6u);
  // Opcodes a server does not take get an answer.
  send(std::vector<u8>{0, 9, 0, 0});
  expect_error(TftpErrorCode::illegal_operation, "Illegal operation");
  EXPECT_EQ(server->counters().refused_opcode, 1u);
  std::vector<u8> data(8);
  ASSERT_TRUE(build_tftp_data(data, 1, std::vector<u8>{1, 2, 3, 4}));
  send(data);
  expect_error(TftpErrorCode::illegal_operation, "Illegal operation");
  EXPECT_EQ(server->counters().refused_unexpected, 1u);
  // ACK and ERROR without a session: silence.
  ack(1);
  std::vector<u8> err(16);
  const auto n = build_tftp_error(err, TftpErrorCode::not_defined, "x");
  err.resize(*n);
  send(err);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().dropped_no_session, 2u);
  EXPECT_EQ(server->session_count(), 0u);
  EXPECT_TRUE(host.reads.empty());
}

TEST_F(TftpServerTest, TooManyOptionsIsOptionNegotiationRefused) {
  host.files["f"] = pattern(10);
  std::vector<u8> req = {0, 1, 'f', 0, 'o', 'c', 't', 'e', 't', 0};
  for (int i = 0; i < 17; ++i) {
    const std::string name = "opt" + std::to_string(i);
    req.insert(req.end(), name.begin(), name.end());
    req.push_back(0);
    req.push_back('1');
    req.push_back(0);
  }
  send(req);
  expect_error(TftpErrorCode::option_refused, "Too many options");
  EXPECT_EQ(server->counters().refused_too_many_options, 1u);
  EXPECT_EQ(server->session_count(), 0u);
}

// ------------------------------------------------------------- sessions --

TEST_F(TftpServerTest, SessionsAreKeyedByClientPortAndLimited) {
  const auto file = pattern(1500);
  host.files["f"] = file;
  for (u16 i = 0; i < TftpServer::kMaxSessions; ++i) {
    rrq("f", {}, TftpMode::octet, static_cast<u16>(1000 + i));
    expect_data(1, std::span(file).first(512), static_cast<u16>(1000 + i));
  }
  EXPECT_EQ(server->session_count(), TftpServer::kMaxSessions);
  // One more client: dropped without an answer, like libslirp.
  rrq("f", {}, TftpMode::octet, 4000);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(server->counters().dropped_session_limit, 1u);
  // Sessions advance independently.
  ack(1, 1005);
  expect_data(2, std::span(file).subspan(512, 512), 1005);
  ack(1, 1006);
  expect_data(2, std::span(file).subspan(512, 512), 1006);
  // A client asking again restarts its own session, without a new slot.
  rrq("f", {}, TftpMode::octet, 1005);
  expect_data(1, std::span(file).first(512), 1005);
  EXPECT_EQ(server->counters().sessions_replaced, 1u);
  EXPECT_EQ(server->session_count(), TftpServer::kMaxSessions);
  // Finishing one frees a slot for the waiting client's retry.
  ack(2, 1006);
  expect_data(3, std::span(file).subspan(1024), 1006);
  ack(3, 1006);
  EXPECT_EQ(server->session_count(), TftpServer::kMaxSessions - 1);
  rrq("f", {}, TftpMode::octet, 4000);
  expect_data(1, std::span(file).first(512), 4000);
  EXPECT_EQ(server->session_count(), TftpServer::kMaxSessions);
}

TEST_F(TftpServerTest, RepeatedRequestResendsWithoutReadingAgain) {
  const auto file = pattern(1500);
  host.files["f"] = file;
  rrq("f", {{"tsize", "0"}});
  auto first = replies();
  ASSERT_EQ(first.size(), 1u);
  // The OACK was lost; the client asks again with the same bytes.
  rrq("f", {{"tsize", "0"}});
  auto again = replies();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].tftp, first[0].tftp);
  EXPECT_EQ(server->counters().duplicate_requests, 1u);
  EXPECT_EQ(host.reads.size(), 1u);
  EXPECT_EQ(server->session_count(), 1u);
  ack(0);
  expect_data(1, std::span(file).first(512));
  // Lost DATA 1: the same again.
  rrq("f", {{"tsize", "0"}});
  expect_data(1, std::span(file).first(512));
  EXPECT_EQ(server->counters().duplicate_requests, 2u);
  ack(1);
  expect_data(2, std::span(file).subspan(512, 512));
  // Past block 1 the client has seen our answer: a new RRQ starts over.
  rrq("f", {{"tsize", "0"}});
  EXPECT_EQ(replies().size(), 1u);
  EXPECT_EQ(server->counters().sessions_replaced, 1u);
  EXPECT_EQ(host.reads.size(), 2u);
  // Another request from that client (another option) is not a retry either.
  rrq("f");
  expect_data(1, std::span(file).first(512));
  EXPECT_EQ(server->counters().sessions_replaced, 2u);
  EXPECT_EQ(host.reads.size(), 3u);
  EXPECT_EQ(server->session_count(), 1u);
}

TEST_F(TftpServerTest, HeldBytesAreBounded) {
  server = std::make_unique<TftpServer>(*link, 3000);
  host.files["a"] = pattern(2000);
  host.files["b"] = pattern(1001);
  host.files["c"] = pattern(1000);
  rrq("a", {}, TftpMode::octet, 1000);
  EXPECT_EQ(replies().size(), 1u);
  EXPECT_EQ(server->held_bytes(), 2000u);
  rrq("b", {}, TftpMode::octet, 1001);
  expect_error(TftpErrorCode::disk_full, "Allocation exceeded");
  EXPECT_EQ(server->counters().refused_allocation, 1u);
  rrq("c", {}, TftpMode::octet, 1002);
  EXPECT_EQ(replies().size(), 1u);
  EXPECT_EQ(server->held_bytes(), 3000u);
  EXPECT_EQ(server->session_count(), 2u);
  // A finished session gives its bytes back.
  ack(1, 1002);
  ack(2, 1002);
  replies();
  EXPECT_EQ(server->held_bytes(), 2000u);
  rrq("c", {}, TftpMode::octet, 1003);
  EXPECT_EQ(replies().size(), 1u);
}

TEST_F(TftpServerTest, SerializeRoundTripContinuesTheTransfer) {
  const auto file = pattern(1000, 9);
  host.files["f"] = file;
  rrq("f", {{"blksize", "100"}, {"timeout", "2"}});
  replies();
  ack(0);
  ack(1);
  ack(1);  // a duplicate, counted
  replies();
  std::stringstream snapshot;
  {
    BinaryOut ar(snapshot);
    server->serialize(ar);
  }
  const std::string before = dump();
  EXPECT_NE(before.find("\"sessions\""), std::string::npos);
  EXPECT_NE(before.find("\"duplicate_acks\": 1"), std::string::npos) << before;

  // Go on to the end: the session is gone, its contents stay in the store.
  for (u16 b = 2; b <= 11; ++b) ack(b);  // 1000 bytes in blocks of 100: an empty block 11 ends it
  replies();
  EXPECT_EQ(server->session_count(), 0u);
  // Restoring the snapshot (as reverse execution does) resumes the transfer.
  {
    BinaryIn ar(snapshot);
    server->serialize(ar);
  }
  EXPECT_EQ(dump(), before);
  EXPECT_EQ(server->session_count(), 1u);
  EXPECT_EQ(server->counters().duplicate_acks, 1u);
  // The restored session resends block 2 on the negotiated timeout and
  // goes on from the stored contents; the host is not asked again.
  link->now += 2 * kSecond;
  server->on_timer(link->now);
  expect_data(2, std::span(file).subspan(100, 100));
  ack(2);
  expect_data(3, std::span(file).subspan(200, 100));
  EXPECT_EQ(host.reads.size(), 1u);

  // A server that never read the file cannot go on: the session ends,
  // counted, instead of sending bytes it does not have.
  auto fresh = std::make_unique<TftpServer>(*link);
  {
    std::stringstream again(snapshot.str());
    BinaryIn ar(again);
    fresh->serialize(ar);
  }
  server = std::move(fresh);
  ack(2);
  EXPECT_EQ(server->counters().sessions_lost_contents, 1u);
  EXPECT_EQ(server->session_count(), 0u);
}

TEST_F(TftpServerTest, StateNamesContentsByHashNotBytes) {
  host.files["big"] = pattern(200000, 3);
  rrq("big");
  replies();
  std::stringstream s;
  {
    BinaryOut ar(s);
    server->serialize(ar);
  }
  EXPECT_LT(s.str().size(), 4096u) << "the file's bytes are not state";
}

class TftpServerNoRootTest : public TftpServerTest {
 protected:
  TftpServerNoRootTest() : TftpServerTest(UserNetConfig{}) {}
};

TEST_F(TftpServerNoRootTest, WithoutARootEveryRequestIsAnAccessViolation) {
  host.files["f"] = pattern(10);
  rrq("f");
  expect_error(TftpErrorCode::access_violation, "Access violation");
  EXPECT_EQ(server->counters().refused_no_root, 1u);
  EXPECT_TRUE(host.reads.empty());
  EXPECT_EQ(server->session_count(), 0u);
}

// ------------------------------------------------------- record/replay --

// What one scripted session did: the datagrams toward the guest and the
// server's final state.
struct ScriptRun {
  std::vector<std::vector<u8>> sent;
  std::string state;
};

ScriptRun run_script(HostIO& host, const std::string& root) {
  MachineConfig mc;
  mc.ram_bytes = 1 << 20;
  Machine machine(mc, host);
  FakeLink link(machine, with_root(root));
  TftpServer server(link);
  deliver(server, request_bytes("boot.bin", {{"blksize", "1024"}, {"tsize", "0"}}));
  deliver(server, request_bytes("../outside"), 3001);
  deliver(server, request_bytes("missing"), 3002);
  for (u16 block = 0; block <= 3; ++block) {
    machine.clock().set_icount(machine.clock().icount() + 100);
    deliver(server, ack_bytes(block));
  }
  ScriptRun run;
  for (auto& s : link.sent) run.sent.push_back(std::move(s.udp));
  std::ostringstream state;
  {
    JsonOut ar(state);
    server.serialize(ar);
  }
  run.state = state.str();
  RunEnd end;
  end.icount = machine.clock().icount();
  host.finish(end);
  return run;
}

TEST(TftpServerRecordReplay, ReplayNeedsNeitherTheFileNorTheRoot) {
  const std::string base = std::string(::testing::TempDir()) + "tftp-rr-" + std::to_string(::getpid());
  const std::string root = base + "-root";
  const std::string journal = base + ".reel";
  std::filesystem::create_directories(root);
  const auto file = pattern(2500, 5);
  {
    std::ofstream out(root + "/boot.bin", std::ios::binary);
    out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  }
  ScriptRun recorded;
  {
    RecordingHostIO rec(journal, JournalHeader{}, LiveHostIO::Options{});
    recorded = run_script(rec, root);
  }
  std::filesystem::remove_all(root);
  // OACK, DATA 1..3 and two errors, the last DATA 2500 - 2048 bytes long.
  ASSERT_EQ(recorded.sent.size(), 6u);
  EXPECT_EQ(recorded.sent.back().size(), 8u + 4 + 452);

  const JournalReader j = JournalReader::open(journal, {});
  EXPECT_EQ(j.count(EventKind::file_read), 3u);
  ReplayingHostIO replaying(j, "tftp.reel");
  const ScriptRun replayed = run_script(replaying, root);
  EXPECT_EQ(replayed.sent, recorded.sent);
  EXPECT_EQ(replayed.state, recorded.state);
  EXPECT_EQ(replaying.events_consumed(), j.size());
  std::filesystem::remove(journal);
}

}  // namespace
}  // namespace reel
