// Host sockets through HostIO: the live socket layer on loopback, and the
// `-net socket` stream backend recorded against a real peer, then replayed
// with no sockets at all.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/machine.h"
#include "netstack/hub.h"
#include "netstack/socket_backend.h"
#include "replay/journal.h"
#include "replay/live_sockets.h"
#include "replay/recording_host_io.h"
#include "replay/replaying_host_io.h"

namespace reel {
namespace {

std::string temp_path(const std::string& name) { return std::string(::testing::TempDir()) + name; }

// Polls until `done` says so or two seconds pass.
template <class Done>
std::vector<SocketEvent> poll_until(LiveSockets& s, Done done) {
  std::vector<SocketEvent> all;
  for (int i = 0; i < 2000 && !done(all); ++i) {
    s.poll(all);
    if (!done(all)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return all;
}

bool has(const std::vector<SocketEvent>& events, SocketEvent::Kind kind) {
  for (const auto& e : events) {
    if (e.kind == kind) return true;
  }
  return false;
}

int connect_to(u16 port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  return fd;
}

TEST(LiveSockets, ListenAcceptDataAndEof) {
  LiveSockets s;
  const SocketOpenResult l = s.open({SocketSpec::Kind::tcp_listen, "127.0.0.1", 0, ""});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.local.ip, 0x7f000001u);
  ASSERT_NE(l.local.port, 0);
  const int client = connect_to(l.local.port);
  auto events = poll_until(s, [](const auto& ev) { return has(ev, SocketEvent::Kind::accepted); });
  ASSERT_TRUE(has(events, SocketEvent::Kind::accepted));
  const SocketId peer = events.back().accepted;
  EXPECT_NE(peer, l.id);
  EXPECT_EQ(events.back().peer.ip, 0x7f000001u);

  ASSERT_EQ(::write(client, "hello", 5), 5);
  events = poll_until(s, [](const auto& ev) { return has(ev, SocketEvent::Kind::data); });
  ASSERT_TRUE(has(events, SocketEvent::Kind::data));
  EXPECT_EQ(std::string(events.back().bytes.begin(), events.back().bytes.end()), "hello");

  const u8 reply[] = {'o', 'k'};
  EXPECT_EQ(s.send(peer, reply), 2u);
  char buf[8] = {};
  ASSERT_EQ(::read(client, buf, sizeof buf), 2);
  EXPECT_EQ(std::string(buf, 2), "ok");

  ::close(client);
  events = poll_until(s, [](const auto& ev) { return has(ev, SocketEvent::Kind::eof); });
  EXPECT_TRUE(has(events, SocketEvent::Kind::eof));
  s.close(peer);
  EXPECT_EQ(s.send(peer, reply), 0u);  // closed sockets take nothing
}

TEST(LiveSockets, RefusedConnectIsAnEvent) {
  // A port that was just free: bind, learn it, close.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(probe);
  LiveSockets s;
  const SocketOpenResult c = s.open({SocketSpec::Kind::tcp_connect, "127.0.0.1", ntohs(sa.sin_port), ""});
  ASSERT_TRUE(c.ok) << c.error;  // the answer comes as an event
  const auto events = poll_until(s, [](const auto& ev) { return !ev.empty(); });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, SocketEvent::Kind::connect_failed);
  EXPECT_FALSE(events[0].error.empty());
}

TEST(LiveSockets, BadAddressesAreOneLineErrors) {
  LiveSockets s;
  const SocketOpenResult a = s.open({SocketSpec::Kind::udp_multicast, "127.0.0.1", 5000, ""});
  EXPECT_FALSE(a.ok);
  EXPECT_NE(a.error.find("not a multicast address"), std::string::npos) << a.error;
  // (Unresolvable names are not tried: resolving one may ask a DNS server
  // off this machine.)
  const SocketOpenResult b = s.open({SocketSpec::Kind::udp_multicast, "230.0.0.1", 5000, "10.255.255.1"});
  EXPECT_FALSE(b.ok);  // not an interface of this host
  EXPECT_EQ(b.error.find('\n'), std::string::npos);
}

TEST(LiveSockets, MulticastOnLoopback) {
  LiveSockets s;
  // Port 0 cannot be shared, so pick one from a probe socket.
  const SocketOpenResult probe = s.open({SocketSpec::Kind::udp, "127.0.0.1", 0, ""});
  ASSERT_TRUE(probe.ok);
  const u16 port = probe.local.port;
  s.close(probe.id);
  const SocketSpec spec{SocketSpec::Kind::udp_multicast, "230.0.0.1", port, "127.0.0.1"};
  const SocketOpenResult a = s.open(spec);
  const SocketOpenResult b = s.open(spec);
  if (!a.ok || !b.ok) GTEST_SKIP() << "multicast on loopback unavailable here: " << a.error << b.error;
  const u8 frame[] = {1, 2, 3, 4};
  EXPECT_EQ(s.send(a.id, frame), 4u);
  auto events = poll_until(s, [&](const auto& ev) {
    int n = 0;
    for (const auto& e : ev) n += e.kind == SocketEvent::Kind::datagram;
    return n >= 2;
  });
  // Both members hear it, the sender included (loopback on).
  std::vector<SocketId> heard;
  for (const auto& e : events) {
    if (e.kind == SocketEvent::Kind::datagram && e.bytes == std::vector<u8>(frame, frame + 4))
      heard.push_back(e.socket);
  }
  EXPECT_EQ(heard, (std::vector<SocketId>{a.id, b.id}));
}

// ---- The stream backend in a machine, recorded and replayed.

// Answers each frame with the same frame, its first byte incremented; ends
// the run after the third.
class EchoPort : public FramePort {
 public:
  explicit EchoPort(Machine& m) : m_machine(m) {}
  void receive_frame(std::span<const u8> frame) override {
    frames.emplace_back(frame.begin(), frame.end());
    std::vector<u8> reply(frame.begin(), frame.end());
    reply[0] = static_cast<u8>(reply[0] + 1);
    transmit(reply);
    if (frames.size() == 3) m_machine.request_exit(RunEnd::Kind::guest_exit, 0);
  }
  std::string describe_port() const override { return "echo"; }
  std::vector<std::vector<u8>> frames;

 private:
  Machine& m_machine;
};

struct Rig {
  std::unique_ptr<Machine> machine;
  Hub* hub = nullptr;
  SocketBackend* backend = nullptr;
  std::unique_ptr<EchoPort> echo;

  explicit Rig(HostIO& host) {
    MachineConfig config;
    config.ram_bytes = 2u << 20;
    machine = std::make_unique<Machine>(config, host);
    // sti; hlt; jmp back: the guest waits for interrupts that never come,
    // so the machine idles on the host until the run ends.
    const u8 code[] = {0xfb, 0xf4, 0xeb, 0xfd};
    machine->memory().write(0x1000, code);
    machine->cpu().enter_flat_protected_mode(0x1000);
    hub = &machine->add_device<Hub>(0);
    backend = &machine->add_device<SocketBackend>(
        "socket.0", *machine, SocketBackend::Config{SocketBackend::Mode::listen, "127.0.0.1", 0});
    echo = std::make_unique<EchoPort>(*machine);
    hub->attach(*backend, "socket.0");
    hub->attach(*echo, "echo");
  }
};

std::vector<u8> framed(const std::vector<u8>& frame) {
  // Sized once and filled in place: GCC 12 misreads growing a short
  // vector by insert() as an overflow (-Warray-bounds).
  const u32 n = static_cast<u32>(frame.size());
  std::vector<u8> out(4 + frame.size());
  out[0] = static_cast<u8>(n >> 24);
  out[1] = static_cast<u8>(n >> 16);
  out[2] = static_cast<u8>(n >> 8);
  out[3] = static_cast<u8>(n);
  std::copy(frame.begin(), frame.end(), out.begin() + 4);
  return out;
}

TEST(SocketBackendReplay, RecordedPeerSessionReplaysWithoutSockets) {
  const std::string journal = temp_path("socket_backend.reel");
  std::vector<std::vector<u8>> echoes_seen_by_peer;
  RunEnd recorded;
  std::vector<std::vector<u8>> recorded_frames;
  {
    JournalHeader header;
    header.checkpoint_interval = 1000;
    LiveHostIO::Options options;
    options.poll_interval = 500;
    options.input_fd = -1;
    RecordingHostIO host(journal, header, options);
    Rig rig(host);
    ASSERT_TRUE(rig.backend->error().empty()) << rig.backend->error();
    const u16 port = rig.backend->local_address().port;
    std::thread peer([port, &echoes_seen_by_peer] {
      const int fd = connect_to(port);
      std::vector<u8> stream = framed({});  // zero length: dropped and counted
      const auto jumbo = framed(std::vector<u8>(2000, 0xee));  // larger than any NIC takes: dropped and counted
      stream.insert(stream.end(), jumbo.begin(), jumbo.end());
      for (u8 i = 0; i < 3; ++i) {
        const auto f = framed(std::vector<u8>(60 + i, static_cast<u8>(0x10 * (i + 1))));
        stream.insert(stream.end(), f.begin(), f.end());
      }
      // In two pieces, split inside the length field of the first real frame.
      const size_t split = 4 + 2004 + 2;
      ASSERT_EQ(::write(fd, stream.data(), split), static_cast<ssize_t>(split));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ASSERT_EQ(::write(fd, stream.data() + split, stream.size() - split),
                static_cast<ssize_t>(stream.size() - split));
      std::vector<u8> in;
      u8 buf[4096];
      while (echoes_seen_by_peer.size() < 3) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        in.insert(in.end(), buf, buf + n);
        while (in.size() >= 4) {
          const u32 len = u32{in[0]} << 24 | u32{in[1]} << 16 | u32{in[2]} << 8 | in[3];
          if (in.size() < 4 + len) break;
          echoes_seen_by_peer.emplace_back(in.begin() + 4, in.begin() + 4 + len);
          in.erase(in.begin(), in.begin() + 4 + len);
        }
      }
      ::close(fd);
    });
    recorded = rig.machine->run();
    peer.join();
    recorded_frames = rig.echo->frames;
    EXPECT_EQ(rig.backend->counters().dropped_empty, 1u);
    EXPECT_EQ(rig.backend->counters().dropped_oversize, 1u);
    EXPECT_EQ(rig.backend->counters().frames_in, 3u);
  }
  ASSERT_EQ(recorded_frames.size(), 3u);
  EXPECT_EQ(recorded_frames[2], std::vector<u8>(62, 0x30));
  ASSERT_EQ(echoes_seen_by_peer.size(), 3u);
  std::vector<u8> first_echo(60, 0x10);
  first_echo[0] = 0x11;
  EXPECT_EQ(echoes_seen_by_peer[0], first_echo);

  // Replay: no sockets, no peer; the same frames reach the echo port at the
  // same instruction counts and the run ends in the same state.
  const JournalReader j = JournalReader::open(journal, {});
  EXPECT_EQ(j.count(EventKind::socket_open), 1u);
  // accepted, then the data in one or more pieces (however the host
  // delivered the two writes), and maybe the eof
  EXPECT_GE(j.count(EventKind::socket_event), 2u);
  EXPECT_EQ(j.count(EventKind::socket_send), 3u);
  ReplayingHostIO host(j, journal);
  Rig rig(host);
  const RunEnd replayed = rig.machine->run();
  EXPECT_EQ(rig.echo->frames, recorded_frames);
  EXPECT_EQ(replayed.icount, recorded.icount);
  EXPECT_EQ(replayed.time_ns, recorded.time_ns);
  EXPECT_EQ(replayed.state_hash, recorded.state_hash);
  EXPECT_EQ(rig.backend->counters().dropped_empty, 1u);
  EXPECT_EQ(host.events_consumed(), j.size());
}

TEST(SocketBackendReplay, ReplaySendingDifferentBytesIsADivergence) {
  // A journal in which the machine sent other bytes than this one will.
  const std::string journal = temp_path("socket_divergence.reel");
  {
    JournalWriter w(journal, JournalHeader{});
    SocketOpenRecord open;
    open.spec = {SocketSpec::Kind::tcp_listen, "127.0.0.1", 0, ""};
    open.result.ok = true;
    open.result.id = 0;
    w.append(EventKind::socket_open, 0, encode_socket_open(open));
    SocketEvent accepted;
    accepted.kind = SocketEvent::Kind::accepted;
    accepted.socket = 0;
    accepted.accepted = 1;
    w.append(EventKind::socket_event, 0, encode_socket_event(accepted));
    SocketEvent data;
    data.kind = SocketEvent::Kind::data;
    data.socket = 1;
    data.bytes = framed(std::vector<u8>(60, 0x10));
    w.append(EventKind::socket_event, 0, encode_socket_event(data));
    SocketSendRecord send;
    send.socket = 1;
    send.size = 64;
    send.hash = 1234;  // not what the echo will send
    send.accepted = 64;
    w.append(EventKind::socket_send, 0, encode_socket_send(send));
  }
  const JournalReader j = JournalReader::open(journal, {true});
  ReplayingHostIO host(j, journal);
  Rig rig(host);
  try {
    rig.machine->run();
    FAIL() << "no divergence reported";
  } catch (const ReplayDivergence& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the recording sent 64 bytes"), std::string::npos) << what;
    EXPECT_NE(what.find("to socket 1"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace reel
