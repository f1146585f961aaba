// The TCP NAT of `-net user`, segment by segment: a fake GatewayLink
// collects what goes to the guest and plays the virtual clock, a
// FakeHostIO records what reaches the host sockets, and the tests play
// the guest with wire/ builders and the host with socket events.

#include "netstack/tcp_nat.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <chrono>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include "core/machine.h"
#include "netstack/wire/ipv4.h"
#include "netstack/wire/tcp.h"
#include "replay/live_sockets.h"
#include "tests/unit/fake_host_io.h"

namespace reel {
namespace {

using namespace reel::wire;

constexpr u32 kGuestIp = 0x0a00020f;    // 10.0.2.15
constexpr u32 kGateway = 0x0a000202;    // 10.0.2.2
constexpr u32 kForbidden = 0x0a000263;  // 10.0.2.99: inside the network, not ours
constexpr u32 kGuestIsn = 1000;
constexpr u64 kMs = 1'000'000;

class FakeLink : public GatewayLink {
 public:
  explicit FakeLink(Machine& machine) : m_machine(machine) {}
  Machine& machine() override { return m_machine; }
  const UserNetConfig& config() const override { return m_config; }
  u64 now_ns() const override { return now; }
  bool send_to_guest(const GatewayDatagram& datagram, std::span<const u8> payload) override {
    if (!guest_reachable) return false;
    sent.push_back(Sent{datagram, std::vector<u8>(payload.begin(), payload.end())});
    return true;
  }
  void send_icmp_error(std::span<const u8>, u8, u8) override {}
  void wake_at(u64 deadline_ns) override { wakes.push_back(deadline_ns); }
  std::optional<HostTarget> host_target(u32 destination, u16 port) override {
    if (destination == kGateway) return HostTarget{"127.0.0.1", port};
    if (destination == kForbidden) return std::nullopt;
    const std::string address = format_socket_address({destination, 0});
    return HostTarget{address.substr(0, address.find(':')), port};
  }
  u32 guest_visible_source(u32 host_ip) const override { return (host_ip >> 24) == 127 ? kGateway : host_ip; }
  void log(const std::string&) override {}

  struct Sent {
    GatewayDatagram datagram;
    std::vector<u8> bytes;
  };
  u64 now = 1'000'000'000'000;  // not 0, so that deadlines are never 0 by accident
  bool guest_reachable = true;
  std::vector<Sent> sent;
  std::vector<u64> wakes;

 private:
  Machine& m_machine;
  UserNetConfig m_config;
};

// One segment the NAT sent to the guest, copied out of its bytes.
struct Out {
  u32 source = 0;
  u32 destination = 0;
  u16 source_port = 0;
  u16 destination_port = 0;
  u32 seq = 0;
  u32 ack = 0;
  u8 flags = 0;
  u16 window = 0;
  TcpOptions options;
  std::vector<u8> payload;
  bool has(u8 flag) const { return (flags & flag) != 0; }
};

struct Flow {
  u32 guest_ip = kGuestIp;
  u16 guest_port = 40000;
  u32 remote_ip = kGateway;
  u16 remote_port = 80;
};

std::vector<u8> bytes_of(std::string_view text) { return std::vector<u8>(text.begin(), text.end()); }

std::vector<u8> pattern(std::size_t size, u8 seed = 0) {
  std::vector<u8> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<u8>(seed + i * 7 + (i >> 8));
  return out;
}

TcpOptions syn_options(u16 mss = 1460, std::optional<u8> scale = 7, bool timestamps = false) {
  TcpOptions o;
  o.mss = mss;
  o.window_scale = scale;
  o.sack_permitted = true;
  if (timestamps) o.timestamps = TcpTimestamps{5000, 0};
  return o;
}

// FakeHostIO records what was offered; this also keeps what was taken.
class RecordingHostIO : public test::FakeHostIO {
 public:
  size_t socket_send(SocketId socket, std::span<const u8> bytes) override {
    const size_t n = FakeHostIO::socket_send(socket, bytes);
    taken[socket].insert(taken[socket].end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  std::map<SocketId, std::vector<u8>> taken;
};

// a is at or after b in sequence space.
bool seq_ack_ok(u32 a, u32 b) { return static_cast<i32>(a - b) >= 0; }

class TcpNatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    machine = std::make_unique<Machine>(MachineConfig{}, host);
    link = std::make_unique<FakeLink>(*machine);
    nat = std::make_unique<TcpNat>(*link);
  }

  void guest(const Flow& f, u32 seq, u32 ack, u8 flags, std::span<const u8> data = {}, u16 window = 0xffff,
             const TcpOptions& options = {}, u16 urgent = 0, bool corrupt = false) {
    TcpFields t;
    t.source_port = f.guest_port;
    t.destination_port = f.remote_port;
    t.sequence = seq;
    t.acknowledgment = ack;
    t.flags = flags;
    t.window = window;
    t.urgent_pointer = urgent;
    t.options = options;
    std::vector<u8> tcp(60 + data.size());
    const auto n = build_tcp(tcp, f.guest_ip, f.remote_ip, t, data);
    ASSERT_TRUE(n);
    tcp.resize(*n);
    if (corrupt) tcp.back() ^= 0x55;
    Ipv4Fields ip;
    ip.source = f.guest_ip;
    ip.destination = f.remote_ip;
    ip.protocol = 6;
    std::vector<u8> packet(20 + tcp.size());
    ASSERT_TRUE(build_ipv4(packet, ip, tcp));
    const auto parsed = Ipv4Packet::parse(packet);
    ASSERT_TRUE(parsed);
    nat->guest_segment(*parsed);
  }

  // Segments sent to the guest since the last take().
  std::vector<Out> take() {
    std::vector<Out> out;
    for (const auto& s : link->sent) {
      const auto p = TcpSegment::parse(s.bytes, s.datagram.source, s.datagram.destination);
      EXPECT_TRUE(p) << "bad segment to the guest";
      EXPECT_EQ(s.datagram.protocol, 6);
      if (!p) continue;
      Out o;
      o.source = s.datagram.source;
      o.destination = s.datagram.destination;
      o.source_port = p->source_port();
      o.destination_port = p->destination_port();
      o.seq = p->sequence();
      o.ack = p->acknowledgment();
      o.flags = p->flags();
      o.window = p->window();
      o.options = p->options();
      o.payload.assign(p->payload().begin(), p->payload().end());
      out.push_back(std::move(o));
    }
    link->sent.clear();
    return out;
  }
  Out take_one() {
    auto all = take();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? Out{} : all.back();
  }

  void event(SocketEvent::Kind kind, SocketId socket, std::vector<u8> bytes = {}) {
    SocketEvent e;
    e.kind = kind;
    e.socket = socket;
    e.bytes = std::move(bytes);
    machine->deliver_socket_event(e);
  }

  // Moves the clock and lets the NAT act on what is due.
  void advance(u64 ns) {
    link->now += ns;
    nat->on_timer(link->now);
  }
  // Lets the batched guest bytes go to the host socket.
  void flush() { advance(TcpNat::kFlushDelayNs); }

  // The bytes the host socket took, in order.
  std::vector<u8> host_bytes(SocketId socket) const {
    const auto it = host.taken.find(socket);
    return it == host.taken.end() ? std::vector<u8>{} : it->second;
  }
  std::optional<TcpNat::ConnectionInfo> info(const Flow& f) const {
    return nat->connection(f.guest_ip, f.guest_port, f.remote_ip, f.remote_port);
  }

  struct Open {
    SocketId socket = 0;
    u32 guest_next = 0;  // the guest's next sequence number
    u32 nat_next = 0;    // the NAT's next sequence number (what the guest acknowledges)
  };
  // A guest-initiated connection through SYN, connected, SYN-ACK, ACK.
  Open open(const Flow& f, const TcpOptions& options = syn_options(), u64 rtt_ns = 0, u16 window = 0xffff) {
    Open o;
    guest(f, kGuestIsn, 0, kTcpSyn, {}, window, options);
    EXPECT_TRUE(take().empty());
    o.socket = host.next_socket - 1;
    event(SocketEvent::Kind::connected, o.socket);
    const Out syn_ack = take_one();
    EXPECT_EQ(syn_ack.flags, kTcpSyn | kTcpAck);
    link->now += rtt_ns;
    o.guest_next = kGuestIsn + 1;
    o.nat_next = syn_ack.seq + 1;
    TcpOptions ts;
    if (options.timestamps) ts.timestamps = TcpTimestamps{5001, syn_ack.options.timestamps->value};
    guest(f, o.guest_next, o.nat_next, kTcpAck, {}, window, ts);
    EXPECT_TRUE(take().empty());
    EXPECT_EQ(info(f)->state, TcpNat::State::established);
    return o;
  }

  RecordingHostIO host;
  std::unique_ptr<Machine> machine;
  std::unique_ptr<FakeLink> link;
  std::unique_ptr<TcpNat> nat;
};

// ---------------------------------------------------------------- handshake

TEST_F(TcpNatTest, HandshakeAnswersOnlyAfterTheHostConnects) {
  const Flow f;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 29200, syn_options(1460, 7, true));
  EXPECT_TRUE(take().empty()) << "no SYN-ACK before the host socket is connected";
  ASSERT_EQ(host.opened.size(), 1u);
  EXPECT_EQ(host.opened[0].kind, SocketSpec::Kind::tcp_connect);
  EXPECT_EQ(host.opened[0].host, "127.0.0.1");
  EXPECT_EQ(host.opened[0].port, 80);
  EXPECT_EQ(info(f)->state, TcpNat::State::connecting);

  guest(f, kGuestIsn, 0, kTcpSyn, {}, 29200, syn_options(1460, 7, true));  // retransmitted SYN
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(nat->counters().syn_while_connecting, 1u);
  EXPECT_EQ(host.opened.size(), 1u);

  event(SocketEvent::Kind::connected, 0);
  const Out sa = take_one();
  EXPECT_EQ(sa.flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(sa.source, kGateway);
  EXPECT_EQ(sa.destination, kGuestIp);
  EXPECT_EQ(sa.source_port, 80);
  EXPECT_EQ(sa.destination_port, 40000);
  EXPECT_EQ(sa.ack, kGuestIsn + 1);
  EXPECT_EQ(sa.window, 65535);
  EXPECT_EQ(sa.options.mss, std::optional<u16>(1460));
  EXPECT_EQ(sa.options.window_scale, std::optional<u8>(0));
  EXPECT_FALSE(sa.options.sack_permitted);
  ASSERT_TRUE(sa.options.timestamps);
  EXPECT_EQ(sa.options.timestamps->echo_reply, 5000u);
  EXPECT_EQ(info(f)->state, TcpNat::State::syn_received);

  guest(f, kGuestIsn + 1, sa.seq + 1, kTcpAck, {}, 229, [] {
    TcpOptions o;
    o.timestamps = TcpTimestamps{5001, 0};
    return o;
  }());
  EXPECT_TRUE(take().empty());
  const auto i = info(f);
  EXPECT_EQ(i->state, TcpNat::State::established);
  EXPECT_EQ(i->snd_wnd, 229u << 7) << "window scaled by the guest's shift after the handshake";
  EXPECT_EQ(nat->counters().connections_established, 1u);
}

TEST_F(TcpNatTest, SynAckFollowsWhatTheGuestOffered) {
  const Flow f;
  TcpOptions o;
  o.mss = 536;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, o);
  event(SocketEvent::Kind::connected, 0);
  const Out sa = take_one();
  EXPECT_EQ(sa.options.mss, std::optional<u16>(536)) << "never more than the guest's MSS";
  EXPECT_FALSE(sa.options.window_scale) << "no scaling unless the guest offered it";
  EXPECT_FALSE(sa.options.timestamps);
  // Data toward the guest then comes in 536-byte segments.
  guest(f, kGuestIsn + 1, sa.seq + 1, kTcpAck, {}, 8192);
  event(SocketEvent::Kind::data, 0, pattern(1200));
  const auto segs = take();
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].payload.size(), 536u);
  EXPECT_EQ(segs[1].payload.size(), 536u);
  EXPECT_EQ(segs[2].payload.size(), 128u);
}

TEST_F(TcpNatTest, IssComesFromTheMachinePrng) {
  const Flow f;
  Prng copy = machine->prng();
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  event(SocketEvent::Kind::connected, 0);
  EXPECT_EQ(take_one().seq, static_cast<u32>(copy.next()));
}

TEST_F(TcpNatTest, RefusedConnectAnswersRstAck) {
  const Flow f;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  event(SocketEvent::Kind::connect_failed, 0);
  const Out r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.ack, kGuestIsn + 1);
  EXPECT_EQ(host.closed, std::vector<SocketId>{0});
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(nat->counters().connect_failed, 1u);
}

TEST_F(TcpNatTest, PolicyRefusalAndSocketFailureAnswerRst) {
  Flow f;
  f.remote_ip = kForbidden;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  Out r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.ack, kGuestIsn + 1);
  EXPECT_EQ(r.source, kForbidden);
  EXPECT_TRUE(host.opened.empty());
  EXPECT_EQ(nat->counters().refused_by_policy, 1u);

  host.refuse_sockets = true;
  guest(Flow{}, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(nat->counters().socket_open_failed, 1u);
  EXPECT_EQ(nat->connection_count(), 0u);
}

TEST_F(TcpNatTest, OtherDestinationsConnectToThemselves) {
  Flow f;
  f.remote_ip = 0xc0a80101;  // 192.168.1.1
  f.remote_port = 443;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  ASSERT_EQ(host.opened.size(), 1u);
  EXPECT_EQ(host.opened[0].host, "192.168.1.1");
  EXPECT_EQ(host.opened[0].port, 443);
}

TEST_F(TcpNatTest, LostSynAckIsResentOnTheGuestsSynAndOnTimeout) {
  const Flow f;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  event(SocketEvent::Kind::connected, 0);
  const Out first = take_one();
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  const Out again = take_one();
  EXPECT_EQ(again.flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(again.seq, first.seq);
  // Initial RTO 1 s, then 2 s, 4 s...
  advance(999 * kMs);
  EXPECT_TRUE(take().empty());
  advance(1 * kMs);
  EXPECT_EQ(take_one().flags, kTcpSyn | kTcpAck);
  advance(1999 * kMs);
  EXPECT_TRUE(take().empty());
  advance(1 * kMs);
  EXPECT_EQ(take_one().seq, first.seq);
  // Retries run out: RST and the host socket closed.
  for (int i = 0; i < 10 && nat->connection_count() != 0; ++i) advance(64'000 * kMs);
  EXPECT_EQ(nat->connection_count(), 0u);
  const auto all = take();
  ASSERT_FALSE(all.empty());
  EXPECT_TRUE(all.back().has(kTcpRst));
  EXPECT_EQ(host.closed, std::vector<SocketId>{0});
  EXPECT_EQ(nat->counters().give_ups, 1u);
}

// ---------------------------------------------------------------- data

TEST_F(TcpNatTest, GuestDataReachesTheHostByteExact) {
  const Flow f;
  const Open o = open(f);
  const auto hello = bytes_of("GET / HTTP/1.0\r\n\r\n");
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpPsh, hello);
  EXPECT_TRUE(host_bytes(o.socket).empty()) << "bytes wait for the batch";
  const Out a = take_one();
  EXPECT_EQ(a.flags, kTcpAck);
  EXPECT_EQ(a.seq, o.nat_next);
  EXPECT_EQ(a.ack, o.guest_next + hello.size());
  EXPECT_EQ(a.window, 65535 - hello.size()) << "the batched bytes use the window";
  advance(TcpNat::kFlushDelayNs - 1);
  EXPECT_TRUE(host_bytes(o.socket).empty());
  advance(1);
  EXPECT_EQ(host_bytes(o.socket), hello);
  EXPECT_EQ(host.sent.size(), 1u);
  EXPECT_EQ(nat->counters().bytes_to_host, hello.size());
  EXPECT_TRUE(take().empty()) << "18 bytes reopening the window is no reason for an update";
  // The same bytes again are a duplicate: ACKed, not delivered twice.
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpPsh, hello);
  EXPECT_EQ(host_bytes(o.socket), hello);
  EXPECT_EQ(take_one().ack, o.guest_next + hello.size());
  EXPECT_EQ(nat->counters().duplicate_segments, 1u);
  // Overlapping: half old, half new.
  const auto more = bytes_of("0123456789");
  guest(f, o.guest_next + static_cast<u32>(hello.size()) - 5, o.nat_next, kTcpAck, [&] {
    std::vector<u8> v(hello.end() - 5, hello.end());
    v.insert(v.end(), more.begin(), more.end());
    return v;
  }());
  flush();
  auto expected = hello;
  expected.insert(expected.end(), more.begin(), more.end());
  EXPECT_EQ(host_bytes(o.socket), expected);
  EXPECT_EQ(take_one().ack, o.guest_next + expected.size());
}

// Segments arriving together reach the host socket in one send, as
// libslirp writes once per poll round; half a buffer, or the guest's FIN,
// goes at once.
TEST_F(TcpNatTest, GuestBytesAreBatchedIntoFewHostSends) {
  const Flow f;
  const Open o = open(f);
  u32 seq = o.guest_next;
  std::vector<u8> all;
  for (int i = 0; i < 10; ++i) {
    const auto chunk = pattern(1000, static_cast<u8>(i));
    guest(f, seq, o.nat_next, kTcpAck, chunk);
    seq += 1000;
    all.insert(all.end(), chunk.begin(), chunk.end());
  }
  EXPECT_TRUE(host.sent.empty());
  flush();
  ASSERT_EQ(host.sent.size(), 1u);
  EXPECT_EQ(host_bytes(o.socket), all);
  // Half the buffer at once: no waiting, the window must stay open.
  host.sent.clear();
  const auto big = pattern(TcpNat::kFlushNowBytes);
  for (std::size_t at = 0; at < big.size(); at += 1460) {
    const std::size_t n = std::min<std::size_t>(1460, big.size() - at);
    guest(f, seq, o.nat_next, kTcpAck, std::span(big).subspan(at, n));
    seq += static_cast<u32>(n);
  }
  EXPECT_EQ(host.sent.size(), 1u) << "sent when the batch reached half the buffer";
  take();
  // A FIN does not wait behind the batch: the shutdown follows the bytes.
  guest(f, seq, o.nat_next, kTcpAck | kTcpFin, bytes_of("bye"));
  EXPECT_EQ(host.sent.size(), 2u);
  EXPECT_EQ(host.sent.back().bytes, bytes_of("bye"));
  EXPECT_EQ(host.shut, std::vector<SocketId>{o.socket});
}

TEST_F(TcpNatTest, HostDataReachesTheGuestInMssSegments) {
  const Flow f;
  const Open o = open(f);
  const auto data = pattern(3000);
  event(SocketEvent::Kind::data, o.socket, data);
  const auto segs = take();
  ASSERT_EQ(segs.size(), 3u);
  std::vector<u8> got;
  u32 seq = o.nat_next;
  for (const auto& s : segs) {
    EXPECT_EQ(s.seq, seq);
    EXPECT_EQ(s.ack, o.guest_next);
    EXPECT_TRUE(s.has(kTcpAck));
    seq += static_cast<u32>(s.payload.size());
    got.insert(got.end(), s.payload.begin(), s.payload.end());
  }
  EXPECT_EQ(segs[0].payload.size(), 1460u);
  EXPECT_EQ(segs[1].payload.size(), 1460u);
  EXPECT_FALSE(segs[0].has(kTcpPsh));
  EXPECT_TRUE(segs[2].has(kTcpPsh)) << "PSH on the last segment of the burst";
  EXPECT_EQ(got, data);
  EXPECT_EQ(info(f)->to_guest_bytes, 3000u);
  guest(f, o.guest_next, seq, kTcpAck);
  EXPECT_EQ(info(f)->to_guest_bytes, 0u);
  EXPECT_EQ(info(f)->snd_una, seq);
}

TEST_F(TcpNatTest, TimestampsAreEchoedAndComeOutOfTheMss) {
  const Flow f;
  const Open o = open(f, syn_options(1460, 7, true));
  guest(f, o.guest_next, o.nat_next, kTcpAck, bytes_of("x"), 0xffff, [] {
    TcpOptions t;
    t.timestamps = TcpTimestamps{7777, 0};
    return t;
  }());
  flush();
  const Out a = take_one();
  ASSERT_TRUE(a.options.timestamps);
  EXPECT_EQ(a.options.timestamps->echo_reply, 7777u);
  EXPECT_EQ(a.options.timestamps->value, static_cast<u32>((link->now - TcpNat::kFlushDelayNs) / kMs));
  // An older TSval is an old duplicate (PAWS): dropped, answered with an
  // ACK, and the timestamp to echo stays.
  TcpOptions old_ts;
  old_ts.timestamps = TcpTimestamps{7000, 0};
  guest(f, o.guest_next + 1, o.nat_next, kTcpAck, bytes_of("y"), 0xffff, old_ts);
  const Out paws = take_one();
  EXPECT_EQ(paws.ack, o.guest_next + 1);
  EXPECT_EQ(paws.options.timestamps->echo_reply, 7777u);
  EXPECT_EQ(nat->counters().dropped_paws, 1u);
  EXPECT_EQ(host_bytes(o.socket), bytes_of("x"));
  event(SocketEvent::Kind::data, o.socket, pattern(2000));
  const auto segs = take();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].payload.size(), 1448u) << "1460 minus the 12-byte timestamp option";
}

TEST_F(TcpNatTest, PartialHostSendShrinksTheWindowAndWritableResumes) {
  const Flow f;
  const Open o = open(f);
  host.send_limit = 10;
  const auto data = pattern(100);
  guest(f, o.guest_next, o.nat_next, kTcpAck, data);
  Out a = take_one();
  EXPECT_EQ(a.ack, o.guest_next + 100);
  EXPECT_EQ(a.window, 65535 - 100) << "bytes not yet taken by the host use the window";
  flush();
  EXPECT_EQ(info(f)->to_host_bytes, 90u) << "the host took 10";
  host.send_limit = SIZE_MAX;
  event(SocketEvent::Kind::writable, o.socket);
  ASSERT_EQ(host.sent.size(), 2u);
  EXPECT_EQ(host.sent[0].bytes, data);  // offered whole, 10 taken
  EXPECT_EQ(host.sent[1].bytes, std::vector<u8>(data.begin() + 10, data.end()));
  EXPECT_EQ(info(f)->to_host_bytes, 0u);
  EXPECT_EQ(nat->counters().bytes_to_host, 100u);
}

TEST_F(TcpNatTest, FullWindowRefusesMoreAndReopensWithAnUpdate) {
  const Flow f;
  const Open o = open(f);
  host.send_limit = 0;
  u32 seq = o.guest_next;
  const auto data = pattern(TcpNat::kToHostLimit, 3);
  for (std::size_t off = 0; off < data.size(); off += 1460) {
    const std::size_t n = std::min<std::size_t>(1460, data.size() - off);
    guest(f, seq, o.nat_next, kTcpAck, std::span(data).subspan(off, n));
    seq += static_cast<u32>(n);
  }
  auto acks = take();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back().ack, seq);
  EXPECT_EQ(acks.back().window, 0) << "every byte of the window is held";
  // One more byte does not fit: refused, and the ACK repeats window 0.
  guest(f, seq, o.nat_next, kTcpAck, bytes_of("!"));
  Out a = take_one();
  EXPECT_EQ(a.ack, seq);
  EXPECT_EQ(a.window, 0);
  EXPECT_EQ(info(f)->to_host_bytes, TcpNat::kToHostLimit);
  // The host drains: a window update tells the guest at once.
  host.send_limit = SIZE_MAX;
  host.sent.clear();
  event(SocketEvent::Kind::writable, o.socket);
  EXPECT_EQ(host_bytes(o.socket), data);
  a = take_one();
  EXPECT_EQ(a.ack, seq);
  EXPECT_EQ(a.window, 65535);
}

TEST_F(TcpNatTest, ZeroGuestWindowIsProbedWithBackoff) {
  const Flow f;
  const Open o = open(f);
  guest(f, o.guest_next, o.nat_next, kTcpAck, {}, 0);  // the guest's window closes
  EXPECT_EQ(info(f)->snd_wnd, 0u);
  const auto data = pattern(100);
  event(SocketEvent::Kind::data, o.socket, data);
  EXPECT_TRUE(take().empty()) << "nothing fits a closed window";
  // The handshake's RTT sample was 0, so the RTO is its 200 ms floor.
  ASSERT_FALSE(link->wakes.empty());
  EXPECT_EQ(link->wakes.back(), link->now + 200 * kMs);
  advance(199 * kMs);
  EXPECT_TRUE(take().empty());
  advance(1 * kMs);
  Out p = take_one();
  EXPECT_EQ(p.seq, o.nat_next);
  EXPECT_EQ(p.payload, std::vector<u8>{data[0]}) << "a one-byte probe";
  guest(f, o.guest_next, o.nat_next, kTcpAck, {}, 0);  // still closed
  EXPECT_TRUE(take().empty());
  advance(399 * kMs);
  EXPECT_TRUE(take().empty()) << "the persist interval doubles";
  advance(1 * kMs);
  p = take_one();
  EXPECT_EQ(p.seq, o.nat_next);
  EXPECT_EQ(nat->counters().persist_probes, 2u);
  // The guest takes the probe and opens its window: the rest follows.
  guest(f, o.guest_next, o.nat_next + 1, kTcpAck, {}, 1000);
  p = take_one();
  EXPECT_EQ(p.seq, o.nat_next + 1);
  EXPECT_EQ(p.payload, std::vector<u8>(data.begin() + 1, data.end()));
}

TEST_F(TcpNatTest, HostReadingPausesWhenTheBufferFillsAndResumes) {
  const Flow f;
  const Open o = open(f, syn_options(1460, 2), 0, 1000);  // a 4000-byte window
  std::size_t given = 0;
  while (given < TcpNat::kToGuestLimit) {
    event(SocketEvent::Kind::data, o.socket, pattern(16384, static_cast<u8>(given)));
    given += 16384;
  }
  EXPECT_TRUE(host.paused[o.socket]);
  EXPECT_TRUE(info(f)->host_paused);
  const auto segs = take();
  u32 sent = 0;
  for (const auto& s : segs) sent += static_cast<u32>(s.payload.size());
  EXPECT_LE(sent, 4000u) << "never beyond the guest's window";
  // The guest acknowledges until half the buffer is free.
  u32 acked = 0;
  for (int i = 0; i < 200 && host.paused[o.socket]; ++i) {
    acked += sent;
    guest(f, o.guest_next, o.nat_next + acked, kTcpAck, {}, 0x7fff);
    sent = 0;
    for (const auto& s : take()) sent += static_cast<u32>(s.payload.size());
  }
  EXPECT_FALSE(host.paused[o.socket]);
  EXPECT_LE(info(f)->to_guest_bytes, TcpNat::kToGuestLimit / 2);
}

TEST_F(TcpNatTest, HostOverflowPastTheHardLimitResets) {
  const Flow f;
  const Open o = open(f, syn_options(), 0, 0);
  event(SocketEvent::Kind::data, o.socket, pattern(TcpNat::kToGuestHardLimit));
  EXPECT_EQ(nat->connection_count(), 1u);
  event(SocketEvent::Kind::data, o.socket, pattern(1));
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(nat->counters().host_overflow_resets, 1u);
  EXPECT_TRUE(take().back().has(kTcpRst));
}

// ---------------------------------------------------------------- retransmission

TEST_F(TcpNatTest, RetransmissionFollowsTheRtoWithBackoffAndGivesUp) {
  const Flow f;
  // A 100 ms handshake RTT: SRTT 100, RTTVAR 50, RTO = 100 + 4 * 50 = 300 ms.
  const Open o = open(f, syn_options(), 100 * kMs);
  EXPECT_EQ(info(f)->rto_ns, 300 * kMs);
  const auto data = pattern(500);
  event(SocketEvent::Kind::data, o.socket, data);
  const Out first = take_one();
  EXPECT_EQ(first.payload, data);
  advance(299 * kMs);
  EXPECT_TRUE(take().empty());
  advance(1 * kMs);
  Out r = take_one();
  EXPECT_EQ(r.seq, first.seq);
  EXPECT_EQ(r.payload, data);
  advance(599 * kMs);
  EXPECT_TRUE(take().empty());
  advance(1 * kMs);
  EXPECT_EQ(take_one().payload, data);
  EXPECT_EQ(info(f)->rto_ns, 1200 * kMs);
  // The backoff doubles up to 60 s; after 12 retries the connection is reset.
  int resends = 2;
  for (int i = 0; i < 40 && nat->connection_count() != 0; ++i) {
    advance(info(f)->rto_ns);
    for (const auto& s : take()) {
      if (s.has(kTcpRst)) {
        EXPECT_EQ(s.seq, first.seq + data.size());
        EXPECT_EQ(s.ack, o.guest_next);
      } else {
        EXPECT_EQ(s.payload, data);
        ++resends;
      }
    }
  }
  EXPECT_EQ(resends, 12);
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(host.closed, std::vector<SocketId>{o.socket});
  EXPECT_EQ(nat->counters().give_ups, 1u);
  EXPECT_EQ(nat->counters().rto_expirations, 13u);
}

TEST_F(TcpNatTest, AckResetsTheTimerAndLostSendsAreRecovered) {
  const Flow f;
  const Open o = open(f);
  link->guest_reachable = false;  // the gateway does not know the guest's MAC
  event(SocketEvent::Kind::data, o.socket, bytes_of("hello"));
  EXPECT_EQ(nat->counters().segments_lost, 1u);
  link->guest_reachable = true;
  advance(200 * kMs);
  const Out r = take_one();
  EXPECT_EQ(r.payload, bytes_of("hello"));
  guest(f, o.guest_next, o.nat_next + 5, kTcpAck);
  EXPECT_EQ(info(f)->retries, 0u);
  advance(100'000 * kMs);
  EXPECT_TRUE(take().empty()) << "nothing outstanding, nothing resent";
}

TEST_F(TcpNatTest, ThreeDuplicateAcksRetransmitAtOnce) {
  const Flow f;
  const Open o = open(f);
  event(SocketEvent::Kind::data, o.socket, pattern(4 * 1460));
  const auto segs = take();
  ASSERT_EQ(segs.size(), 4u);
  guest(f, o.guest_next, o.nat_next + 1460, kTcpAck);  // the first arrived, the second did not
  for (int i = 0; i < 2; ++i) guest(f, o.guest_next, o.nat_next + 1460, kTcpAck);
  EXPECT_TRUE(take().empty());
  guest(f, o.guest_next, o.nat_next + 1460, kTcpAck);
  const Out r = take_one();
  EXPECT_EQ(r.seq, o.nat_next + 1460);
  EXPECT_EQ(r.payload, segs[1].payload);
  EXPECT_EQ(nat->counters().fast_retransmits, 1u);
}

// ---------------------------------------------------------------- reassembly

TEST_F(TcpNatTest, OutOfOrderSegmentsAreReassembled) {
  const Flow f;
  const Open o = open(f);
  const auto a = bytes_of("AAAAA"), b = bytes_of("BBBBB"), c = bytes_of("CCCCC");
  guest(f, o.guest_next + 10, o.nat_next, kTcpAck, c);
  guest(f, o.guest_next + 5, o.nat_next, kTcpAck, b);
  guest(f, o.guest_next + 5, o.nat_next, kTcpAck, b);  // a duplicate in the queue
  EXPECT_TRUE(host.sent.empty());
  auto acks = take();
  ASSERT_EQ(acks.size(), 3u);
  for (const auto& x : acks) EXPECT_EQ(x.ack, o.guest_next) << "a gap: duplicate ACKs";
  EXPECT_EQ(info(f)->out_of_order_segments, 2u);
  guest(f, o.guest_next, o.nat_next, kTcpAck, a);
  flush();
  EXPECT_EQ(host_bytes(o.socket), bytes_of("AAAAABBBBBCCCCC"));
  EXPECT_EQ(take_one().ack, o.guest_next + 15);
  EXPECT_EQ(info(f)->out_of_order_segments, 0u);
  EXPECT_EQ(nat->counters().ooo_merged, 2u);
  EXPECT_EQ(nat->counters().duplicate_segments, 1u);
}

TEST_F(TcpNatTest, OutOfOrderAtTheQueueEndIsTrimmedNotOverrun) {
  // Segments aimed at or past the end of the receive queue (the kind of
  // input behind a libslirp CVE): nothing past the advertised window is
  // kept, and what straddles it is cut there.
  const Flow f;
  const Open o = open(f);
  host.send_limit = 0;  // the host takes nothing: the window is the buffer
  const u32 edge = o.guest_next + static_cast<u32>(TcpNat::kToHostLimit);
  guest(f, edge - 100, o.nat_next, kTcpAck, pattern(100, 9));  // ends exactly at the edge
  EXPECT_EQ(nat->counters().ooo_queued, 1u);
  guest(f, edge - 50, o.nat_next, kTcpAck | kTcpFin, pattern(200, 11));  // straddles it
  EXPECT_EQ(nat->counters().ooo_trimmed, 1u);
  guest(f, edge, o.nat_next, kTcpAck, pattern(100));  // wholly beyond
  guest(f, edge + 5000, o.nat_next, kTcpAck, pattern(100));
  EXPECT_EQ(nat->counters().dropped_not_acceptable, 2u);
  take();
  // Fill the gap in order; every byte up to the edge arrives once, in order.
  std::vector<u8> expected;
  u32 seq = o.guest_next;
  while (seq != edge - 100) {
    const u32 n = std::min<u32>(1460, edge - 100 - seq);
    const auto chunk = pattern(n, static_cast<u8>(seq));
    guest(f, seq, o.nat_next, kTcpAck, chunk);
    expected.insert(expected.end(), chunk.begin(), chunk.end());
    seq += n;
  }
  const auto tail = pattern(100, 9);
  expected.insert(expected.end(), tail.begin(), tail.end());
  const auto acks = take();
  EXPECT_EQ(acks.back().ack, edge) << "the trimmed FIN is not acknowledged";
  EXPECT_EQ(acks.back().window, 0);
  EXPECT_EQ(info(f)->state, TcpNat::State::established);
  EXPECT_EQ(info(f)->to_host_bytes, TcpNat::kToHostLimit);
  host.send_limit = SIZE_MAX;
  host.sent.clear();
  event(SocketEvent::Kind::writable, o.socket);
  EXPECT_EQ(host_bytes(o.socket), expected);
}

TEST_F(TcpNatTest, OutOfOrderQueueIsBoundedInSegments) {
  const Flow f;
  const Open o = open(f);
  for (u32 i = 0; i < TcpNat::kOutOfOrderSegments + 5; ++i)
    guest(f, o.guest_next + 10 + 20 * i, o.nat_next, kTcpAck, pattern(10));
  EXPECT_EQ(info(f)->out_of_order_segments, TcpNat::kOutOfOrderSegments);
  EXPECT_EQ(nat->counters().ooo_dropped_limit, 5u);
}

TEST_F(TcpNatTest, UrgentPointerPastTheDataIsHarmless) {
  const Flow f;
  const Open o = open(f);
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpUrg, bytes_of("urgnt"), 0xffff, {}, 0xffff);
  flush();
  EXPECT_EQ(host_bytes(o.socket), bytes_of("urgnt")) << "urgent data is ordinary data";
  EXPECT_EQ(take_one().ack, o.guest_next + 5);
  guest(f, o.guest_next + 5, o.nat_next, kTcpAck | kTcpUrg, {}, 0xffff, {}, 0x8000);  // no data at all
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(info(f)->state, TcpNat::State::established);
}

// ---------------------------------------------------------------- closing

TEST_F(TcpNatTest, GuestFinHalfClosesAndTheHostKeepsSending) {
  const Flow f;
  const Open o = open(f);
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpFin, bytes_of("bye"));
  EXPECT_EQ(host_bytes(o.socket), bytes_of("bye"));
  EXPECT_EQ(host.shut, std::vector<SocketId>{o.socket});
  EXPECT_EQ(take_one().ack, o.guest_next + 4);
  EXPECT_EQ(info(f)->state, TcpNat::State::close_wait);
  // The other direction still works.
  event(SocketEvent::Kind::data, o.socket, bytes_of("reply"));
  const Out d = take_one();
  EXPECT_EQ(d.payload, bytes_of("reply"));
  EXPECT_EQ(d.ack, o.guest_next + 4);
  event(SocketEvent::Kind::eof, o.socket);
  const Out fin = take_one();
  EXPECT_EQ(fin.flags, kTcpAck | kTcpFin);
  EXPECT_EQ(fin.seq, o.nat_next + 5);
  EXPECT_EQ(info(f)->state, TcpNat::State::last_ack);
  EXPECT_EQ(host.closed, std::vector<SocketId>{o.socket}) << "both host directions are done";
  guest(f, o.guest_next + 4, o.nat_next + 6, kTcpAck);
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(nat->counters().connections_closed, 1u);
}

TEST_F(TcpNatTest, GuestFinWaitsForQueuedBytesBeforeShutdown) {
  const Flow f;
  const Open o = open(f);
  host.send_limit = 2;
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpFin, bytes_of("abcdef"));
  EXPECT_TRUE(host.shut.empty()) << "4 bytes still wait for the host";
  host.send_limit = SIZE_MAX;
  event(SocketEvent::Kind::writable, o.socket);
  EXPECT_EQ(host.shut, std::vector<SocketId>{o.socket});
  EXPECT_EQ(host.sent.back().bytes, bytes_of("cdef"));
}

TEST_F(TcpNatTest, HostEofSendsFinAfterTheDataThenTimeWaitExpires) {
  const Flow f;
  const Open o = open(f);
  event(SocketEvent::Kind::data, o.socket, bytes_of("last words"));
  event(SocketEvent::Kind::eof, o.socket);
  auto segs = take();
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].payload, bytes_of("last words"));
  EXPECT_EQ(segs[1].flags, kTcpAck | kTcpFin);
  EXPECT_EQ(segs[1].seq, o.nat_next + 10);
  EXPECT_EQ(info(f)->state, TcpNat::State::fin_wait_1);
  guest(f, o.guest_next, o.nat_next + 11, kTcpAck);
  EXPECT_EQ(info(f)->state, TcpNat::State::fin_wait_2);
  guest(f, o.guest_next, o.nat_next + 11, kTcpAck | kTcpFin);
  const Out a = take_one();
  EXPECT_EQ(a.ack, o.guest_next + 1);
  EXPECT_EQ(info(f)->state, TcpNat::State::time_wait);
  EXPECT_EQ(host.shut, std::vector<SocketId>{o.socket});
  EXPECT_EQ(host.closed, std::vector<SocketId>{o.socket});
  // A retransmitted FIN is acknowledged again.
  guest(f, o.guest_next, o.nat_next + 11, kTcpAck | kTcpFin);
  EXPECT_EQ(take_one().ack, o.guest_next + 1);
  advance(TcpNat::kTimeWaitNs - 1);
  EXPECT_EQ(nat->connection_count(), 1u);
  advance(1);
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(nat->counters().time_wait_expired, 1u);
}

TEST_F(TcpNatTest, SimultaneousCloseGoesThroughClosing) {
  const Flow f;
  const Open o = open(f);
  event(SocketEvent::Kind::eof, o.socket);
  EXPECT_EQ(take_one().flags, kTcpAck | kTcpFin);
  guest(f, o.guest_next, o.nat_next, kTcpAck | kTcpFin);  // FIN crossing ours
  EXPECT_EQ(info(f)->state, TcpNat::State::closing);
  guest(f, o.guest_next + 1, o.nat_next + 1, kTcpAck);
  EXPECT_EQ(info(f)->state, TcpNat::State::time_wait);
}

TEST_F(TcpNatTest, GuestRstClosesOnlyWhenExact) {
  const Flow f;
  const Open o = open(f);
  guest(f, o.guest_next + 100, 0, kTcpRst);  // in the window, not exact
  EXPECT_EQ(take_one().flags, kTcpAck) << "challenge ACK";
  EXPECT_EQ(nat->counters().challenge_acks, 1u);
  guest(f, o.guest_next + 100000, 0, kTcpRst);  // outside
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(nat->counters().ignored_rst, 1u);
  EXPECT_EQ(nat->connection_count(), 1u);
  guest(f, o.guest_next, 0, kTcpRst);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(host.closed, std::vector<SocketId>{o.socket});
}

TEST_F(TcpNatTest, HostErrorResetsTheGuest) {
  const Flow f;
  const Open o = open(f);
  event(SocketEvent::Kind::data, o.socket, bytes_of("abc"));
  take();
  event(SocketEvent::Kind::error, o.socket);
  const Out r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.seq, o.nat_next + 3);
  EXPECT_EQ(r.ack, o.guest_next);
  EXPECT_EQ(host.closed, std::vector<SocketId>{o.socket});
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(nat->counters().host_errors, 1u);
}

// ---------------------------------------------------------------- port forwards

TEST_F(TcpNatTest, ForwardedConnectionHandshakesWithTheGuest) {
  nat->forward_accepted(7, SocketAddress{0x7f000001, 51000}, kGuestIp, 22);
  const Out syn = take_one();
  EXPECT_EQ(syn.flags, kTcpSyn);
  EXPECT_EQ(syn.source, kGateway);
  EXPECT_EQ(syn.source_port, 51000);
  EXPECT_EQ(syn.destination, kGuestIp);
  EXPECT_EQ(syn.destination_port, 22);
  EXPECT_EQ(syn.options.mss, std::optional<u16>(1460));
  EXPECT_EQ(syn.options.window_scale, std::optional<u8>(0));
  EXPECT_TRUE(syn.options.timestamps);
  const Flow f{kGuestIp, 22, kGateway, 51000};
  EXPECT_EQ(info(f)->state, TcpNat::State::syn_sent);
  // Host bytes before the guest answers wait for the connection.
  event(SocketEvent::Kind::data, 7, bytes_of("SSH-2.0-client\r\n"));
  EXPECT_TRUE(take().empty());
  TcpOptions o;
  o.mss = 1000;
  guest(f, 9000, syn.seq + 1, kTcpSyn | kTcpAck, {}, 5000, o);
  const Out d = take_one();
  EXPECT_EQ(d.seq, syn.seq + 1);
  EXPECT_EQ(d.ack, 9001u);
  EXPECT_EQ(d.payload, bytes_of("SSH-2.0-client\r\n"));
  EXPECT_FALSE(d.options.timestamps) << "the guest did not take timestamps";
  EXPECT_EQ(info(f)->state, TcpNat::State::established);
  guest(f, 9001, syn.seq + 1 + 16, kTcpAck | kTcpPsh, bytes_of("SSH-2.0-server\r\n"), 5000);
  flush();
  EXPECT_EQ(host_bytes(7), bytes_of("SSH-2.0-server\r\n"));
  EXPECT_EQ(nat->counters().forwards_opened, 1u);
  EXPECT_NE(nat->describe_connections().at(0).find("fwd"), std::string::npos);
}

TEST_F(TcpNatTest, ForwardRefusedOrUnansweredClosesTheHostSocket) {
  nat->forward_accepted(7, SocketAddress{0x7f000001, 51000}, kGuestIp, 22);
  const Out syn = take_one();
  const Flow f{kGuestIp, 22, kGateway, 51000};
  guest(f, 0, syn.seq + 1, kTcpRst | kTcpAck);
  EXPECT_EQ(host.closed, std::vector<SocketId>{7});
  EXPECT_EQ(nat->counters().forwards_reset, 1u);

  nat->forward_accepted(8, SocketAddress{0x7f000001, 51001}, kGuestIp, 22);
  take();
  for (int i = 0; i < 20 && nat->connection_count() != 0; ++i) advance(64'000 * kMs);
  EXPECT_EQ(nat->connection_count(), 0u);
  EXPECT_EQ(host.closed, (std::vector<SocketId>{7, 8}));
  EXPECT_EQ(nat->counters().forward_syn_timeouts, 1u);
  EXPECT_EQ(nat->counters().retransmits, TcpNat::kMaxSynRetries);
}

// ---------------------------------------------------------------- odd input

TEST_F(TcpNatTest, UnknownConnectionsGetRfc9293Resets) {
  const Flow f;
  guest(f, 5000, 777, kTcpAck, bytes_of("data"));
  Out r = take_one();
  EXPECT_EQ(r.flags, kTcpRst);
  EXPECT_EQ(r.seq, 777u);
  guest(f, 5000, 0, kTcpFin, bytes_of("data"));
  r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(r.seq, 0u);
  EXPECT_EQ(r.ack, 5005u);
  guest(f, 5000, 0, kTcpRst);
  EXPECT_TRUE(take().empty()) << "never a RST for a RST";
  EXPECT_EQ(nat->counters().rst_for_unknown, 2u);
  EXPECT_EQ(nat->counters().ignored_unknown_rst, 1u);
  EXPECT_EQ(nat->connection_count(), 0u);
}

TEST_F(TcpNatTest, BadChecksumIsCountedAndDropped) {
  const Flow f;
  guest(f, kGuestIsn, 0, kTcpSyn, bytes_of("x"), 8192, syn_options(), 0, /*corrupt=*/true);
  EXPECT_TRUE(take().empty());
  EXPECT_TRUE(host.opened.empty());
  EXPECT_EQ(nat->counters().dropped_bad_checksum, 1u);
}

TEST_F(TcpNatTest, ConnectionLimitRefusesTheNextSyn) {
  for (u32 i = 0; i < TcpNat::kMaxConnections; ++i) {
    Flow f;
    f.guest_port = static_cast<u16>(1024 + i);
    guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  }
  EXPECT_EQ(nat->connection_count(), TcpNat::kMaxConnections);
  EXPECT_TRUE(take().empty());
  Flow f;
  f.guest_port = 9999;
  guest(f, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  const Out r = take_one();
  EXPECT_EQ(r.flags, kTcpRst | kTcpAck);
  EXPECT_EQ(nat->counters().refused_limit, 1u);
  EXPECT_EQ(host.opened.size(), TcpNat::kMaxConnections);
}

TEST_F(TcpNatTest, DescribeListsConnectionsInKeyOrder) {
  Flow a;
  a.guest_port = 2000;
  Flow b;
  b.guest_port = 1000;
  open(b);
  guest(a, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  event(SocketEvent::Kind::data, 0, bytes_of("12345"));
  const auto lines = nat->describe_connections();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "TCP[ESTABLISHED] socket 0 10.0.2.15:1000 <-> 10.0.2.2:80 recvq 0 sendq 5");
  EXPECT_EQ(lines[1], "TCP[CONNECTING] socket 1 10.0.2.15:2000 <-> 10.0.2.2:80 recvq 0 sendq 0");
}

TEST_F(TcpNatTest, HostileSegmentsNeverCorruptEitherStream) {
  // Random segments cut from one guest stream (any offset, length, flags)
  // and random host behaviour: whatever reaches the host must be a prefix
  // of the guest's stream, and whatever reaches the guest must match the
  // host's stream at its sequence number.
  const Flow f;
  const Open o = open(f, syn_options(1460, 3, true));
  const auto guest_stream = pattern(1 << 20, 1);
  const auto host_stream = pattern(1 << 20, 2);
  std::size_t host_given = 0;
  Prng random(42);
  auto pick = [&](u64 n) { return random.next() % n; };
  u32 acked = o.nat_next;
  std::size_t checked = 0;  // host bytes already compared
  for (int step = 0; step < 20000 && nat->connection_count() == 1; ++step) {
    const auto i = info(f);
    switch (pick(8)) {
      case 0: {
        const std::size_t n = 1 + pick(3000);
        if (host_given + n <= host_stream.size() && !i->host_paused) {
          event(SocketEvent::Kind::data, o.socket,
                std::vector<u8>(host_stream.begin() + static_cast<std::ptrdiff_t>(host_given),
                                host_stream.begin() + static_cast<std::ptrdiff_t>(host_given + n)));
          host_given += n;
        }
        break;
      }
      case 1:
        host.send_limit = pick(3) == 0 ? 0 : pick(4000);
        event(SocketEvent::Kind::writable, o.socket);
        break;
      case 2:
        advance(pick(400) * kMs);
        break;
      default: {
        const u32 base = i->rcv_nxt - o.guest_next;
        const i64 offset = pick(2) == 0 ? static_cast<i64>(base)
                                        : static_cast<i64>(base) + static_cast<i64>(pick(72000)) - 3000;
        // Past the stream's end there is nothing to send (and no span to take).
        const std::size_t start =
            std::min(static_cast<std::size_t>(std::max<i64>(offset, 0)), guest_stream.size());
        const std::size_t length = std::min<std::size_t>(pick(1461), guest_stream.size() - start);
        u8 flags = kTcpAck;
        const u64 r = pick(100);
        if (r == 0 && step > 15000) flags |= kTcpFin;  // late: nothing is data after it
        if (r == 1) flags = kTcpRst;
        if (r == 2) flags |= kTcpSyn;
        if (r == 3) flags |= kTcpUrg;
        if (r == 4) flags = 0;
        const u32 seq =
            o.guest_next + static_cast<u32>(start) + (r == 1 ? 1 + static_cast<u32>(pick(5000)) : 0);
        // ACKs move forward through what the NAT sent, sometimes repeat, rarely lie.
        u32 ack = acked;
        if (pick(3) == 0) ack = i->snd_nxt;
        if (seq_ack_ok(ack, acked)) acked = ack;
        if (pick(200) == 0) ack = i->snd_nxt + 100000;
        const u16 window = static_cast<u16>(pick(10) == 0 ? 0 : pick(0x10000));
        TcpOptions ts;
        ts.timestamps = TcpTimestamps{static_cast<u32>(10000 + step), 0};
        guest(f, seq, ack, flags, std::span(guest_stream).subspan(start, length), window, ts,
              static_cast<u16>(pick(0x10000)));
        break;
      }
    }
    for (const auto& s : take()) {
      if (s.payload.empty()) continue;
      const u32 at = s.seq - o.nat_next;
      ASSERT_LE(at + s.payload.size(), host_given) << "bytes the host never sent";
      ASSERT_TRUE(std::equal(s.payload.begin(), s.payload.end(), host_stream.begin() + at)) << "at " << at;
    }
    const auto& got = host.taken[o.socket];
    ASSERT_LE(got.size(), guest_stream.size());
    ASSERT_TRUE(std::equal(got.begin() + static_cast<std::ptrdiff_t>(checked), got.end(),
                           guest_stream.begin() + static_cast<std::ptrdiff_t>(checked)))
        << "host stream corrupted";
    checked = got.size();
    if (nat->connection_count() == 1) {
      ASSERT_LE(info(f)->to_host_bytes, TcpNat::kToHostLimit);
      ASSERT_LE(info(f)->out_of_order_segments, TcpNat::kOutOfOrderSegments);
    }
  }
  EXPECT_GT(nat->counters().bytes_to_guest, host_stream.size() / 2);
  EXPECT_EQ(host_bytes(o.socket).size(), guest_stream.size()) << "the whole guest stream got through";
}

// ---------------------------------------------------------------- loopback

// The NAT against real host sockets on 127.0.0.1: a LiveSockets answers
// HostIO's socket calls, a loopback server sits behind a listener of the
// same LiveSockets, and a small guest model speaks TCP to the NAT.
class LoopbackHostIO : public test::FakeHostIO {
 public:
  SocketOpenResult socket_open(const SocketSpec& spec) override { return sockets.open(spec); }
  size_t socket_send(SocketId socket, std::span<const u8> bytes) override {
    return sockets.send(socket, bytes);
  }
  void socket_pause(SocketId socket, bool paused) override { sockets.pause(socket, paused); }
  void socket_shutdown(SocketId socket) override { sockets.shutdown(socket); }
  void socket_close(SocketId socket) override { sockets.close(socket); }
  LiveSockets sockets;
};

TEST(TcpNatLoopback, BulkBothWaysAndOrderlyClose) {
  LoopbackHostIO host;
  Machine machine(MachineConfig{}, host);
  FakeLink link(machine);
  TcpNat nat(link);

  // The server: accepts one connection, keeps what it reads, and writes
  // `reply` as fast as its socket takes it.
  const SocketOpenResult listener = host.sockets.open({SocketSpec::Kind::tcp_listen, "127.0.0.1", 0, ""});
  ASSERT_TRUE(listener.ok) << listener.error;
  const auto request = pattern(300'000, 5);
  const auto reply = pattern(500'000, 6);
  std::optional<SocketId> server;
  std::vector<u8> server_got;
  std::size_t server_sent = 0;
  bool server_eof = false;
  auto server_write = [&] {
    while (server && server_sent < reply.size()) {
      const std::size_t n = host.sockets.send(*server, std::span(reply).subspan(server_sent));
      server_sent += n;
      if (n == 0) break;
    }
  };
  machine.set_socket_handler(listener.id, [&](const SocketEvent& e) {
    if (e.kind != SocketEvent::Kind::accepted) return;
    server = e.accepted;
    machine.set_socket_handler(e.accepted, [&](const SocketEvent& ev) {
      if (ev.kind == SocketEvent::Kind::data)
        server_got.insert(server_got.end(), ev.bytes.begin(), ev.bytes.end());
      if (ev.kind == SocketEvent::Kind::eof) server_eof = true;
      if (ev.kind == SocketEvent::Kind::writable) server_write();
    });
    server_write();
  });

  // The guest: window 65535 << 2, acknowledges everything in order.
  const Flow f{kGuestIp, 40000, kGateway, listener.local.port};
  auto send = [&](u32 seq, u32 ack, u8 flags, std::span<const u8> data = {}, const TcpOptions& o = {}) {
    TcpFields t;
    t.source_port = f.guest_port;
    t.destination_port = f.remote_port;
    t.sequence = seq;
    t.acknowledgment = ack;
    t.flags = flags;
    t.window = 0xffff;
    t.options = o;
    std::vector<u8> tcp(60 + data.size());
    tcp.resize(*build_tcp(tcp, f.guest_ip, f.remote_ip, t, data));
    Ipv4Fields ip;
    ip.source = f.guest_ip;
    ip.destination = f.remote_ip;
    ip.protocol = 6;
    std::vector<u8> packet(20 + tcp.size());
    ASSERT_TRUE(build_ipv4(packet, ip, tcp));
    nat.guest_segment(*Ipv4Packet::parse(packet));
  };
  u32 snd_una = kGuestIsn + 1, snd_nxt = kGuestIsn + 1, peer_edge = snd_nxt;
  u32 rcv_nxt = 0;
  std::vector<u8> guest_got;
  bool guest_saw_fin = false, handshake_done = false, guest_fin_sent = false;

  auto pump_host = [&] {
    std::vector<SocketEvent> events;
    host.sockets.poll(events);
    for (const auto& e : events) machine.deliver_socket_event(e);
    return !events.empty();
  };
  auto guest_step = [&] {
    bool progress = false, ack_due = false;
    for (const auto& s : link.sent) {
      const auto seg = TcpSegment::parse(s.bytes, s.datagram.source, s.datagram.destination);
      EXPECT_TRUE(seg);
      if (!seg) continue;
      EXPECT_FALSE(seg->has(kTcpRst));
      if (seg->has(kTcpSyn)) {
        rcv_nxt = seg->sequence() + 1;
        handshake_done = true;
        ack_due = true;
      }
      if (seg->has(kTcpAck) && static_cast<i32>(seg->acknowledgment() - snd_una) > 0)
        snd_una = seg->acknowledgment();
      if (seg->has(kTcpAck)) peer_edge = seg->acknowledgment() + seg->window();
      if (!seg->payload().empty() && seg->sequence() == rcv_nxt) {
        guest_got.insert(guest_got.end(), seg->payload().begin(), seg->payload().end());
        rcv_nxt += static_cast<u32>(seg->payload().size());
        ack_due = true;
      }
      if (seg->has(kTcpFin) && seg->sequence() + seg->payload().size() == rcv_nxt && !guest_saw_fin) {
        guest_saw_fin = true;
        rcv_nxt += 1;
        ack_due = true;
      }
      progress = true;
    }
    link.sent.clear();
    if (!handshake_done) return progress;
    const std::size_t offset = snd_nxt - (kGuestIsn + 1);
    if (offset < request.size() && static_cast<i32>(peer_edge - snd_nxt) > 0) {
      const std::size_t n = std::min<std::size_t>(
          {1460, request.size() - offset, static_cast<std::size_t>(peer_edge - snd_nxt)});
      send(snd_nxt, rcv_nxt, kTcpAck, std::span(request).subspan(offset, n));
      snd_nxt += static_cast<u32>(n);
      return true;
    }
    if (guest_saw_fin && !guest_fin_sent && snd_una == snd_nxt) {
      send(snd_nxt, rcv_nxt, kTcpAck | kTcpFin);
      snd_nxt += 1;
      guest_fin_sent = true;
      return true;
    }
    if (ack_due) send(snd_nxt, rcv_nxt, kTcpAck);
    return progress || ack_due;
  };

  TcpOptions syn;
  syn.mss = 1460;
  syn.window_scale = 2;
  send(kGuestIsn, 0, kTcpSyn, {}, syn);
  bool server_closed = false;
  for (int idle = 0; idle < 5000;) {
    const bool a = pump_host();
    const bool b = guest_step();
    // Virtual time moves a little each round, so batched bytes go out.
    link.now += TcpNat::kFlushDelayNs;
    nat.on_timer(link.now);
    if (server && !server_closed && server_sent == reply.size() && server_got.size() == request.size()) {
      host.sockets.shutdown(*server);
      server_closed = true;
    }
    if (server_eof && guest_fin_sent && snd_una == snd_nxt) break;
    if (a || b) {
      idle = 0;
    } else {
      ++idle;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_EQ(server_got.size(), request.size());
  EXPECT_TRUE(server_got == request) << "the server read the guest's bytes exactly";
  EXPECT_EQ(guest_got.size(), reply.size());
  EXPECT_TRUE(guest_got == reply) << "the guest read the server's bytes exactly";
  EXPECT_TRUE(guest_saw_fin);
  EXPECT_TRUE(server_eof) << "the guest's FIN became a shutdown";
  const auto i = nat.connection(f.guest_ip, f.guest_port, f.remote_ip, f.remote_port);
  ASSERT_TRUE(i);
  EXPECT_EQ(i->state, TcpNat::State::time_wait);
  EXPECT_FALSE(i->has_socket);
  EXPECT_EQ(nat.counters().bytes_to_host, request.size());
  EXPECT_EQ(nat.counters().bytes_to_guest, reply.size());
  if (server) host.sockets.close(*server);
  host.sockets.close(listener.id);
}

// ---------------------------------------------------------------- state

std::string save(TcpNat& nat) {
  std::ostringstream out;
  {
    BinaryOut ar(out);
    nat.serialize(ar);
  }
  return out.str();
}

TEST_F(TcpNatTest, StateRoundTripsIntoAFreshNat) {
  const Flow f;
  const Open o = open(f, syn_options(1460, 7, true), 40 * kMs);
  host.send_limit = 3;
  guest(f, o.guest_next, o.nat_next, kTcpAck, bytes_of("abcdefgh"));
  flush();
  guest(f, o.guest_next + 20, o.nat_next, kTcpAck, bytes_of("ooo"));
  event(SocketEvent::Kind::data, o.socket, pattern(5000));
  Flow g;
  g.guest_port = 41000;
  guest(g, kGuestIsn, 0, kTcpSyn, {}, 8192, syn_options());
  take();
  const std::string saved = save(*nat);
  const auto lines = nat->describe_connections();

  // A fresh NAT loads the state and carries on where the old one was.
  nat.reset();
  TcpNat fresh(*link);
  {
    std::istringstream in(saved);
    BinaryIn ar(in);
    fresh.serialize(ar);
  }
  fresh.rebind_sockets();
  EXPECT_EQ(save(fresh), saved);
  EXPECT_EQ(fresh.describe_connections(), lines);
  EXPECT_EQ(fresh.connection_count(), 2u);
  const auto i = fresh.connection(f.guest_ip, f.guest_port, f.remote_ip, f.remote_port);
  ASSERT_TRUE(i);
  EXPECT_EQ(i->to_host_bytes, 5u);
  EXPECT_EQ(i->out_of_order_segments, 1u);
  EXPECT_EQ(i->to_guest_bytes, 5000u);
  // Events reach the fresh NAT through the rebound handlers.
  host.send_limit = SIZE_MAX;
  host.sent.clear();
  event(SocketEvent::Kind::writable, o.socket);
  EXPECT_EQ(host_bytes(o.socket), bytes_of("abcdefgh"));
  EXPECT_EQ(host.sent.back().bytes, bytes_of("defgh"));
  event(SocketEvent::Kind::connected, 1);
  EXPECT_EQ(take_one().flags, kTcpSyn | kTcpAck);
  // The timers came along: the unacknowledged host bytes are resent.
  link->now += 10'000 * kMs;
  fresh.on_timer(link->now);
  const auto resent = take();
  ASSERT_FALSE(resent.empty());
  EXPECT_EQ(resent[0].seq, o.nat_next);
  const auto sent_data = pattern(5000);
  EXPECT_EQ(resent[0].payload, std::vector<u8>(sent_data.begin(), sent_data.begin() + 1448));
  // And a JSON dump exists for `reel diff`.
  std::ostringstream json;
  {
    JsonOut ar(json);
    fresh.serialize(ar);
  }
  EXPECT_NE(json.str().find("\"rcv_nxt\""), std::string::npos);
  fresh.close_all();
}

TEST_F(TcpNatTest, IdleConnectionsHoldNoBuffers) {
  host.opened.reserve(1000);
  const std::size_t before = mallinfo2().uordblks;
  for (u16 i = 0; i < 1000; ++i) {
    Flow f;
    f.guest_port = static_cast<u16>(2000 + i);
    const Open o = open(f);
    event(SocketEvent::Kind::data, o.socket, pattern(3000));
    guest(f, o.guest_next, o.nat_next + 3000, kTcpAck, pattern(2000));
    flush();
    take();
  }
  EXPECT_EQ(nat->connection_count(), 1000u);
  // What the fakes recorded is not the NAT's.
  host.sent.clear();
  host.sent.shrink_to_fit();
  host.taken.clear();
  link->sent.shrink_to_fit();
  link->wakes.clear();
  link->wakes.shrink_to_fit();
  const std::size_t after = mallinfo2().uordblks;
  const std::size_t per_connection = (after - before) / 1000;
  // Drained buffers were released: the connection, its map node and its
  // socket handler remain.
  EXPECT_LT(per_connection, 1024u) << "bytes per idle connection";
  RecordProperty("bytes_per_idle_connection", static_cast<int>(per_connection));
}

// ---------------------------------------------------------------- ByteQueue ring

std::vector<u8> ring_bytes(const TcpNat::ByteQueue& q, std::size_t offset, std::size_t length) {
  const auto p = q.parts(offset, length);
  std::vector<u8> out(p.first.begin(), p.first.end());
  out.insert(out.end(), p.second.begin(), p.second.end());
  return out;
}

std::vector<u8> ring_pattern(std::size_t n, u8 seed) {
  std::vector<u8> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<u8>(seed + i * 7);
  return v;
}

TEST(ByteQueueRing, WrapsAroundAndConsumesAcrossTheWrap) {
  TcpNat::ByteQueue q(8192);
  const auto a = ring_pattern(3000, 1);
  q.append(a);
  const std::size_t capacity = q.capacity();
  ASSERT_EQ(capacity, 4096u);
  q.consume(2500);
  const auto b = ring_pattern(3000, 9);  // 500 + 3000 > 4096 - 2500: wraps, no growth
  q.append(b);
  EXPECT_EQ(q.capacity(), capacity);
  EXPECT_EQ(q.size(), 3500u);
  const auto p = q.parts();
  EXPECT_FALSE(p.second.empty());
  std::vector<u8> expect(a.begin() + 2500, a.end());
  expect.insert(expect.end(), b.begin(), b.end());
  EXPECT_EQ(ring_bytes(q, 0, q.size()), expect);
  // Consume across the wrap point (head at 2500, capacity 4096).
  q.consume(2000);
  expect.erase(expect.begin(), expect.begin() + 2000);
  EXPECT_EQ(q.size(), 1500u);
  EXPECT_TRUE(q.parts().second.empty());
  EXPECT_EQ(ring_bytes(q, 0, q.size()), expect);
}

TEST(ByteQueueRing, SegmentSpanningTheWrapIsCopiedIntoScratch) {
  TcpNat::ByteQueue q(8192);
  q.append(ring_pattern(4000, 3));
  q.consume(3900);
  const auto b = ring_pattern(1000, 5);
  q.append(b);  // 96 bytes at the ring's end, then the front
  std::array<u8, 1460> scratch{};
  const auto whole = ring_bytes(q, 50, 600);
  const auto seg = q.contiguous(50, 600, scratch);
  EXPECT_EQ(seg.data(), scratch.data()) << "spans the wrap, so it is copied";
  EXPECT_EQ(std::vector<u8>(seg.begin(), seg.end()), whole);
  EXPECT_EQ(whole[0], static_cast<u8>(3 + 3950 * 7));
  EXPECT_EQ(whole[50], b[0]);
  // A segment after the wrap is a view, not a copy.
  const auto later = q.contiguous(200, 500, scratch);
  EXPECT_NE(later.data(), scratch.data());
  EXPECT_EQ(std::vector<u8>(later.begin(), later.end()), std::vector<u8>(b.begin() + 100, b.begin() + 600));
}

TEST(ByteQueueRing, SerializeRoundTripKeepsOnlyTheLiveBytes) {
  TcpNat::ByteQueue wrapped(8192);
  wrapped.append(ring_pattern(4000, 3));
  wrapped.consume(3000);
  wrapped.append(ring_pattern(2000, 4));
  TcpNat::ByteQueue straight(8192);
  straight.append(ring_bytes(wrapped, 0, wrapped.size()));
  auto save = [](TcpNat::ByteQueue& q) {
    std::ostringstream os;
    {
      cereal::BinaryOutputArchive ar(os);
      q.serialize(ar);
    }
    return os.str();
  };
  const std::string a = save(wrapped);
  // Same logical content, different ring layout: same state.
  EXPECT_EQ(a, save(straight));
  TcpNat::ByteQueue loaded(8192);
  std::istringstream is(a);
  {
    cereal::BinaryInputArchive ar(is);
    loaded.serialize(ar);
  }
  EXPECT_EQ(loaded.size(), 3000u);
  EXPECT_EQ(ring_bytes(loaded, 0, loaded.size()), ring_bytes(wrapped, 0, wrapped.size()));
  EXPECT_LT(a.size(), 3100u) << "serializes the live bytes, not the capacity";
}

TEST(ByteQueueRing, CapacityStaysWithinTheBound) {
  TcpNat::ByteQueue q(TcpNat::kToHostLimit);
  const auto chunk = ring_pattern(1000, 1);
  std::size_t total = 0;
  while (total + chunk.size() <= q.bound()) {
    q.append(chunk);
    total += chunk.size();
  }
  EXPECT_EQ(q.size(), total);
  EXPECT_LE(q.capacity(), TcpNat::kToHostLimit);
  EXPECT_GE(q.capacity(), total);
  // Keep cycling through the full ring: it never grows past the bound.
  for (int i = 0; i < 200; ++i) {
    q.consume(1000);
    q.append(ring_pattern(1000, static_cast<u8>(i)));
    ASSERT_LE(q.capacity(), TcpNat::kToHostLimit);
  }
  EXPECT_EQ(ring_bytes(q, q.size() - 1000, 1000), ring_pattern(1000, 199));
  q.consume(q.size());
  EXPECT_EQ(q.capacity(), 0u) << "a drained queue holds no buffer";
}

}  // namespace
}  // namespace reel
