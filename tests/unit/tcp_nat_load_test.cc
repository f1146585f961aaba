// The TCP NAT of `-net user` under load: many concurrent guest
// connections (a frame-level guest TCP, tests/bench/guest_tcp_driver.h)
// through reel's UserNet on a LiveHostIO to an echo server on 127.0.0.1.
// Each connection sends a distinct amount of distinct data; every byte is
// accounted for on both sides by count and hash, every connection closes
// with FIN both ways (half with the guest closing first, half with the host
// closing first, so the NAT passes through LAST-ACK and through
// TIME-WAIT), and the connection table is empty once TIME-WAIT has run out
// on virtual time.
//
// The count is REEL_TCP_LOAD_CONNECTIONS (1..4000), default 1000.
//
// The other tests push the same path through its flow control and
// recovery: a guest with a small window (host sockets paused), a host that
// stops reading (the NAT's window closes and must reopen by itself), a
// lossy link (retransmission on virtual time), and a guest that closes its
// window to 0 (persist probes) and opens it again.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/bench/guest_tcp_driver.h"

namespace reel {
namespace {

using namespace reel::test;
using Clock = std::chrono::steady_clock;

// 1000 take about 0.7 s in Release (a few seconds under ASan), well
// inside ctest's budget, so sanitizer builds run the full count too.
constexpr std::size_t kDefaultConnections = 1000;

std::size_t connection_count() {
  if (const char* env = std::getenv("REEL_TCP_LOAD_CONNECTIONS")) {
    const long n = std::strtol(env, nullptr, 10);
    if (n > 0 && n <= 4000) return static_cast<std::size_t>(n);
  }
  return kDefaultConnections;
}

// The stream of connection i: its length and, in the 4-byte header, who
// closes first (odd connections: the host, so the NAT ends in TIME-WAIT).
struct Plan {
  u64 length = 0;
  bool host_closes_first = false;
  u32 seed = 0;
  std::vector<u8> header;
  u64 hash = 0;
};

Plan plan_for(std::size_t i) {
  Plan p;
  p.length = 5 + 37 * static_cast<u64>(i);  // distinct: the server tells connections apart by it
  p.host_closes_first = (i % 2) == 1;
  p.seed = 7000 + static_cast<u32>(i);
  const u32 h = static_cast<u32>(p.length) | (p.host_closes_first ? 0x80000000u : 0);
  p.header = {static_cast<u8>(h), static_cast<u8>(h >> 8), static_cast<u8>(h >> 16),
              static_cast<u8>(h >> 24)};
  p.hash = stream_hash(p.header, p.seed, p.length);
  return p;
}

// The NAT's connections, one per line, for failure messages.
std::string describe(const TcpNat& nat) {
  std::string all;
  for (const auto& line : nat.describe_connections()) all += line + "\n";
  return all;
}

TEST(TcpNatLoad, ThousandConnectionsEchoedAndClosed) {
  std::size_t n = connection_count();
  // Two descriptors per connection in this process (the NAT's and the
  // server's), plus slack.
  const rlim_t limit = raise_fd_limit(2 * n + 64);
  if (limit < 2 * n + 64) {
    const std::size_t fit = limit > 128 ? (limit - 64) / 2 : 0;
    ASSERT_GT(fit, 0u) << "descriptor limit " << limit << " is too low";
    std::cout << "[ NOTE     ] descriptor limit " << limit << ": " << fit << " connections instead of " << n
              << "\n";
    n = fit;
  }
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::echo;
  so.max_connections = n + 16;
  LoopbackStreamServer server(so);
  ASSERT_TRUE(server.ok());

  ReelUserNetHarness reel;
  GuestTcpDriver& guest = reel.driver();
  guest.reserve(n);
  std::vector<Plan> plans;
  u64 total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    plans.push_back(plan_for(i));
    const std::size_t c = guest.open(server.port());
    ASSERT_EQ(c, i);
    guest.send_stream(c, plans[i].header, plans[i].seed, plans[i].length);
    if (!plans[i].host_closes_first) guest.close(c);
    total += plans[i].length;
  }

  // The loop: 10 us of virtual time per round, so that the NAT's timers
  // (200 ms RTO floor) never fire while frames are moving.
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(50);
  auto last_progress = start;
  std::size_t stall_rewinds = 0;
  u64 rounds = 0;
  auto finished = [&] {
    if (guest.busy()) return false;  // an ACK still to send (of the last FIN, say)
    for (std::size_t i = 0; i < n; ++i) {
      const auto& c = guest.connection(i);
      if (c.reset) return true;  // fails below, with the details
      if (!c.closed_cleanly()) return false;
    }
    return server.closed() >= n;
  };
  while (!finished() && Clock::now() < deadline) {
    ++rounds;
    // The guest answers the host's FIN with its own (host-first streams).
    for (std::size_t i = 0; i < n; ++i) {
      const auto& c = guest.connection(i);
      if (plans[i].host_closes_first && c.fin_received && !c.close_requested) guest.close(i);
    }
    if (reel.step(10'000)) {
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::seconds(2)) {
      // Nothing moved for 2 s of real time: something was lost. Counted
      // and reported below; go on so that the counts are complete.
      guest.rewind_stalled();
      ++stall_rewinds;
      last_progress = Clock::now();
    } else {
      std::this_thread::yield();
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "[ NOTE     ] " << n << " connections, " << total << " bytes each way, " << rounds
            << " rounds, " << seconds << " s\n";

  // The guest side: everything sent was acknowledged, everything echoed
  // arrived in order, FIN both ways.
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n && bad < 10; ++i) {
    const auto& c = guest.connection(i);
    std::ostringstream what;
    what << "connection " << i << " (port " << c.local_port << ", " << plans[i].length << " bytes, "
         << (plans[i].host_closes_first ? "host" : "guest") << " closes first)";
    const bool ok = !c.reset && c.established && c.acked == plans[i].length &&
                    c.received == plans[i].length && c.received_hash == plans[i].hash && c.closed_cleanly() &&
                    c.gaps == 0 && c.window_violations == 0;
    if (ok) continue;
    ++bad;
    ADD_FAILURE() << what.str() << ": established " << c.established << " reset " << c.reset << " acked "
                  << c.acked << " received " << c.received << " hash "
                  << (c.received_hash == plans[i].hash ? "ok" : "WRONG") << " fin sent/acked/received "
                  << c.fin_sent << c.fin_acked << c.fin_received << " gaps " << c.gaps << " duplicates "
                  << c.duplicates << " window violations " << c.window_violations;
  }
  EXPECT_EQ(guest.loss_signs(), 0u)
      << "the guest saw gaps, duplicates or duplicate ACKs (rounds without progress: " << stall_rewinds
      << ")";
  EXPECT_EQ(guest.counters().bad_frames, 0u);
  EXPECT_EQ(guest.counters().unknown_segments, 0u);

  // The host side: one connection per stream, matched by length.
  const auto records = server.records();
  EXPECT_EQ(records.size(), n);
  std::map<u64, LoopbackStreamServer::Record> by_length;
  for (const auto& r : records) by_length[r.bytes_in] = r;
  EXPECT_EQ(by_length.size(), records.size()) << "two host connections carried the same number of bytes";
  bad = 0;
  for (std::size_t i = 0; i < n && bad < 10; ++i) {
    const auto it = by_length.find(plans[i].length);
    if (it == by_length.end()) {
      ++bad;
      ADD_FAILURE() << "connection " << i << ": no host connection received " << plans[i].length << " bytes";
      continue;
    }
    const auto& r = it->second;
    if (r.hash_in == plans[i].hash && r.bytes_out == plans[i].length && r.eof && r.shut && r.closed &&
        !r.error)
      continue;
    ++bad;
    ADD_FAILURE() << "connection " << i << " on the host: hash "
                  << (r.hash_in == plans[i].hash ? "ok" : "WRONG") << " echoed " << r.bytes_out << " eof "
                  << r.eof << " shut " << r.shut << " closed " << r.closed << " error " << r.error;
  }

  // The NAT's view.
  const TcpNat& nat = reel.net().tcp();
  const auto& k = nat.counters();
  EXPECT_EQ(k.connections_opened, n);
  EXPECT_EQ(k.connections_established, n);
  EXPECT_EQ(k.bytes_to_host, total);
  EXPECT_EQ(k.bytes_to_guest, total);
  EXPECT_EQ(k.connections_closed, n);
  EXPECT_EQ(k.retransmits, 0u);
  EXPECT_EQ(k.host_errors, 0u);
  EXPECT_EQ(k.connect_failed, 0u);
  EXPECT_EQ(k.refused_limit, 0u);
  EXPECT_EQ(k.segments_lost, 0u);
  EXPECT_EQ(k.to_host_discarded, 0u);
  EXPECT_EQ(k.dropped_not_acceptable + k.dropped_ack_unsent + k.dropped_malformed + k.dropped_bad_checksum,
            0u);
  // Host-first connections wait in TIME-WAIT (the earliest may have run
  // out already, if the rounds took more than 10 s of virtual time); the
  // others are gone.
  EXPECT_EQ(nat.connection_count() + k.time_wait_expired, n / 2);
  for (const std::string& line : nat.describe_connections()) {
    EXPECT_NE(line.find("TIME_WAIT"), std::string::npos) << line;
    if (line.find("TIME_WAIT") == std::string::npos) break;
  }
  EXPECT_EQ(reel.net().counters().dropped_no_arp, 0u);

  // TIME-WAIT runs out on virtual time alone.
  reel.advance(TcpNat::kTimeWaitNs + 1'000'000'000);
  EXPECT_EQ(nat.connection_count(), 0u) << describe(nat);
  EXPECT_EQ(nat.counters().time_wait_expired, n / 2);
  EXPECT_TRUE(nat.describe_connections().empty());
}

// Host -> guest faster than the guest takes it: 64 connections, 1 MiB
// each from a source on 127.0.0.1, to a guest advertising only 4 KiB. The
// NAT must hold back (pause the host sockets at kToGuestLimit, resume as
// the guest acknowledges), never exceed the guest's window, never reset a
// stream for overflowing, and deliver every byte in order.
TEST(TcpNatLoad, HostToGuestWithASmallGuestWindow) {
  constexpr std::size_t kConnections = 64;
  constexpr u64 kLength = u64{1} << 20;
  ASSERT_GE(raise_fd_limit(2 * kConnections + 64), 2 * kConnections + 64);
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::source;
  so.source_length = kLength;
  so.source_seed = 77;
  LoopbackStreamServer server(so);
  ASSERT_TRUE(server.ok());
  u64 expected_hash = REEL_FNV64_OFFSET;
  for (u64 i = 0; i < kLength; ++i) {
    expected_hash ^= LoopbackStreamServer::source_byte(so.source_seed, i);
    expected_hash *= REEL_FNV64_PRIME;
  }

  GuestTcpDriver::Options options;
  options.receive_window = 4096;
  options.batches_per_pump = 1;
  ReelUserNetHarness reel(options);
  GuestTcpDriver& guest = reel.driver();
  for (std::size_t i = 0; i < kConnections; ++i) guest.open(server.port());

  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(50);
  auto last_progress = start;
  std::size_t stall_rewinds = 0;
  bool seen_paused = false;
  std::size_t most_buffered = 0;
  auto finished = [&] {
    if (guest.busy()) return false;  // an ACK still to send (of the last FIN, say)
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (!c.reset && !c.closed_cleanly()) return false;
    }
    return server.closed() >= kConnections;
  };
  while (!finished() && Clock::now() < deadline) {
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (c.fin_received && !c.close_requested) guest.close(i);
    }
    if (reel.step(10'000)) {
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::seconds(2)) {
      guest.rewind_stalled();
      ++stall_rewinds;
      last_progress = Clock::now();
    } else {
      std::this_thread::yield();
    }
    // Sample the NAT's buffers: the test means nothing unless the host
    // really outran the guest.
    for (std::size_t i = 0; i < kConnections; i += 7) {
      const auto info = reel.net().tcp().connection(kDriverGuestIp, guest.connection(i).local_port,
                                                    kDriverGatewayIp, server.port());
      if (!info) continue;
      seen_paused = seen_paused || info->host_paused;
      most_buffered = std::max(most_buffered, info->to_guest_bytes);
    }
  }
  EXPECT_TRUE(seen_paused) << "no host socket was ever paused: the guest kept up";
  EXPECT_LE(most_buffered, TcpNat::kToGuestHardLimit);
  std::cout << "[ NOTE     ] " << kConnections << " x " << kLength << " bytes in "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s\n";
  std::size_t bad = 0;
  for (std::size_t i = 0; i < kConnections && bad < 10; ++i) {
    const auto& c = guest.connection(i);
    if (!c.reset && c.received == kLength && c.received_hash == expected_hash && c.closed_cleanly() &&
        c.window_violations == 0 && c.gaps == 0)
      continue;
    ++bad;
    ADD_FAILURE() << "connection " << i << ": reset " << c.reset << " received " << c.received << " hash "
                  << (c.received_hash == expected_hash ? "ok" : "WRONG") << " fin sent/acked/received "
                  << c.fin_sent << c.fin_acked << c.fin_received << " gaps " << c.gaps << " duplicates "
                  << c.duplicates << " window violations " << c.window_violations;
  }
  EXPECT_EQ(guest.loss_signs(), 0u) << "rounds without progress: " << stall_rewinds;
  for (const auto& r : server.records()) {
    EXPECT_EQ(r.bytes_out, kLength);
    EXPECT_TRUE(r.eof && r.closed && !r.error);
  }
  const TcpNat& nat = reel.net().tcp();
  const auto& k = nat.counters();
  EXPECT_EQ(k.bytes_to_guest, kConnections * kLength);
  EXPECT_EQ(k.host_overflow_resets, 0u);
  EXPECT_EQ(k.retransmits, 0u);
  EXPECT_EQ(k.host_errors, 0u);
  EXPECT_EQ(k.connections_closed, kConnections);
  reel.advance(TcpNat::kTimeWaitNs + 1'000'000'000);
  EXPECT_EQ(nat.connection_count(), 0u) << describe(nat);
}

// Guest -> host into a host that stops reading for a while: the kernel's
// buffers fill, the host socket takes less than it is given, the NAT's
// buffer fills and its window closes to 0. When the host reads again the
// NAT must reopen the window by itself (a window update on `writable`):
// this guest has no persist timer, so a missing update shows as a stall.
TEST(TcpNatLoad, GuestToHostThroughAStalledHost) {
  constexpr std::size_t kConnections = 8;
  constexpr u64 kLength = u64{16} << 20;
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::sink;
  so.hold = true;
  LoopbackStreamServer server(so);
  ASSERT_TRUE(server.ok());

  ReelUserNetHarness reel;
  GuestTcpDriver& guest = reel.driver();
  for (std::size_t i = 0; i < kConnections; ++i) {
    guest.open(server.port());
    guest.send_stream(i, {}, 900 + static_cast<u32>(i), kLength);
    guest.close(i);
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(50);
  auto last_progress = start;
  std::size_t stall_rewinds = 0;
  bool seen_zero_window = false;
  auto finished = [&] {
    if (guest.busy()) return false;  // an ACK still to send (of the last FIN, say)
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (!c.reset && !c.closed_cleanly()) return false;
    }
    return server.closed() >= kConnections;
  };
  while (!finished() && Clock::now() < deadline) {
    if (reel.step(10'000)) {
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::seconds(2)) {
      guest.rewind_stalled();
      ++stall_rewinds;
      last_progress = Clock::now();
    } else {
      std::this_thread::yield();
    }
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (c.established && c.snd_wnd == 0 && c.sent < c.send_length) seen_zero_window = true;
    }
    // The host reads again once a window closed (or once everything is
    // out, should the kernel's buffers have swallowed it all).
    bool all_out = true;
    for (std::size_t i = 0; i < kConnections; ++i) all_out = all_out && guest.connection(i).sent == kLength;
    if (seen_zero_window || all_out) server.release();
  }
  std::cout << "[ NOTE     ] " << kConnections << " x " << kLength << " bytes in "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s\n";
  EXPECT_TRUE(seen_zero_window) << "the NAT's window never closed: the host kept up";
  EXPECT_EQ(stall_rewinds, 0u) << "the transfer stalled (no window update after the host read again?)";
  std::size_t bad = 0;
  for (std::size_t i = 0; i < kConnections && bad < 10; ++i) {
    const auto& c = guest.connection(i);
    if (!c.reset && c.acked == kLength && c.closed_cleanly() && c.gaps == 0) continue;
    ++bad;
    ADD_FAILURE() << "connection " << i << ": reset " << c.reset << " acked " << c.acked << " of " << kLength
                  << " window " << c.snd_wnd << " fin sent/acked/received " << c.fin_sent << c.fin_acked
                  << c.fin_received << " rewinds " << c.rewinds;
  }
  std::vector<u64> expected;
  for (std::size_t i = 0; i < kConnections; ++i)
    expected.push_back(stream_hash({}, 900 + static_cast<u32>(i), kLength));
  std::sort(expected.begin(), expected.end());
  std::vector<u64> got;
  for (const auto& r : server.records()) {
    EXPECT_EQ(r.bytes_in, kLength);
    EXPECT_TRUE(r.eof && r.closed && !r.error);
    got.push_back(r.hash_in);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected) << "the host received different bytes";
  const auto& k = reel.net().tcp().counters();
  EXPECT_EQ(k.bytes_to_host, kConnections * kLength);
  EXPECT_EQ(k.to_host_discarded, 0u);
  EXPECT_EQ(k.connections_closed, kConnections);
  EXPECT_EQ(reel.net().tcp().connection_count(), 0u)
      << describe(reel.net().tcp());  // guest closed first: no TIME-WAIT
}

// The same echo through a lossy link: one frame in 53 toward the NAT and
// one in 47 toward the guest is dropped. The NAT must recover by fast
// retransmission and its timers on virtual time (the loop advances 1 ms of
// virtual time per round in which nothing moved); the guest goes back to
// its first unacknowledged byte after three duplicate ACKs or 300 virtual
// ms of silence. Every byte must still arrive once, in order, and every
// connection must still close.
TEST(TcpNatLoad, EchoThroughALossyLink) {
  constexpr std::size_t kConnections = 40;
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::echo;
  LoopbackStreamServer server(so);
  ASSERT_TRUE(server.ok());
  ReelUserNetHarness reel;
  reel.set_loss(53, 47);
  GuestTcpDriver& guest = reel.driver();
  guest.announce();
  std::vector<Plan> plans;
  for (std::size_t i = 0; i < kConnections; ++i) {
    Plan p = plan_for(i);
    p.length = 1000 + 3001 * static_cast<u64>(i);
    p.host_closes_first = (i % 2) == 1;
    const u32 h = static_cast<u32>(p.length) | (p.host_closes_first ? 0x80000000u : 0);
    p.header = {static_cast<u8>(h), static_cast<u8>(h >> 8), static_cast<u8>(h >> 16),
                static_cast<u8>(h >> 24)};
    p.hash = stream_hash(p.header, p.seed, p.length);
    plans.push_back(p);
    guest.open(server.port());
    guest.send_stream(i, p.header, p.seed, p.length);
    if (!p.host_closes_first) guest.close(i);
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(50);
  u64 quiet_ns = 0;
  auto finished = [&] {
    if (guest.busy()) return false;  // an ACK still to send (of the last FIN, say)
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (!c.reset && !c.closed_cleanly()) return false;
    }
    return server.closed() >= kConnections;
  };
  while (!finished() && Clock::now() < deadline) {
    for (std::size_t i = 0; i < kConnections; ++i) {
      const auto& c = guest.connection(i);
      if (plans[i].host_closes_first && c.fin_received && !c.close_requested) guest.close(i);
    }
    if (reel.step(10'000)) {
      quiet_ns = 0;
      continue;
    }
    reel.advance(1'000'000);
    quiet_ns += 1'000'000;
    if (quiet_ns >= 300'000'000) {
      guest.rewind_stalled();
      quiet_ns = 0;
    }
    std::this_thread::yield();
  }
  std::cout << "[ NOTE     ] dropped " << reel.dropped_to_stack() << " frames toward the NAT, "
            << reel.dropped_to_guest() << " toward the guest; " << reel.net().tcp().counters().retransmits
            << " NAT retransmissions; " << std::chrono::duration<double>(Clock::now() - start).count()
            << " s\n";
  EXPECT_GT(reel.dropped_to_stack() + reel.dropped_to_guest(), 0u);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < kConnections && bad < 10; ++i) {
    const auto& c = guest.connection(i);
    if (!c.reset && c.acked == plans[i].length && c.received == plans[i].length &&
        c.received_hash == plans[i].hash && c.closed_cleanly() && c.window_violations == 0)
      continue;
    ++bad;
    ADD_FAILURE() << "connection " << i << " (" << plans[i].length << " bytes, "
                  << (plans[i].host_closes_first ? "host" : "guest") << " closes first): reset " << c.reset
                  << " acked " << c.acked << " received " << c.received << " hash "
                  << (c.received_hash == plans[i].hash ? "ok" : "WRONG") << " fin sent/acked/received "
                  << c.fin_sent << c.fin_acked << c.fin_received << " gaps " << c.gaps << " rewinds "
                  << c.rewinds;
  }
  std::map<u64, LoopbackStreamServer::Record> by_length;
  for (const auto& r : server.records()) by_length[r.bytes_in] = r;
  for (std::size_t i = 0; i < kConnections; ++i) {
    const auto it = by_length.find(plans[i].length);
    ASSERT_NE(it, by_length.end()) << "connection " << i << ": no host connection got " << plans[i].length
                                   << " bytes";
    EXPECT_EQ(it->second.hash_in, plans[i].hash) << "connection " << i;
    EXPECT_TRUE(it->second.eof && it->second.closed && !it->second.error) << "connection " << i;
  }
  const TcpNat& nat = reel.net().tcp();
  EXPECT_GT(nat.counters().retransmits, 0u);
  EXPECT_EQ(nat.counters().give_ups, 0u);
  EXPECT_EQ(nat.counters().host_errors, 0u);
  reel.advance(TcpNat::kTimeWaitNs + 1'000'000'000);
  EXPECT_EQ(nat.connection_count(), 0u) << describe(nat);
}

// A guest that stops reading: its window closes to 0 in mid-stream while
// the host keeps sending. The NAT must stop at the window's edge, probe
// the closed window on its persist timer (virtual time), buffer only up to
// its limits (pausing the host socket), and resume when the guest opens
// the window again, with every byte delivered once.
TEST(TcpNatLoad, GuestClosesItsWindowThenReopens) {
  constexpr std::size_t kConnections = 4;
  constexpr u64 kLength = u64{2} << 20;
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::source;
  so.source_length = kLength;
  so.source_seed = 5;
  LoopbackStreamServer server(so);
  ASSERT_TRUE(server.ok());
  u64 expected_hash = REEL_FNV64_OFFSET;
  for (u64 i = 0; i < kLength; ++i) {
    expected_hash ^= LoopbackStreamServer::source_byte(so.source_seed, i);
    expected_hash *= REEL_FNV64_PRIME;
  }
  ReelUserNetHarness reel;
  GuestTcpDriver& guest = reel.driver();
  for (std::size_t i = 0; i < kConnections; ++i) guest.open(server.port());
  auto run = [&](auto done, std::chrono::seconds limit, u64 idle_advance_ns) {
    const auto deadline = Clock::now() + limit;
    while (!done() && Clock::now() < deadline) {
      for (std::size_t i = 0; i < kConnections; ++i) {
        const auto& c = guest.connection(i);
        if (c.fin_received && !c.close_requested) guest.close(i);
      }
      if (!reel.step(10'000)) {
        if (idle_advance_ns) reel.advance(idle_advance_ns);
        std::this_thread::yield();
      }
    }
    return done();
  };
  // Some data first, then the guest stops reading.
  ASSERT_TRUE(run(
      [&] {
        for (std::size_t i = 0; i < kConnections; ++i)
          if (guest.connection(i).received < 100'000) return false;
        return true;
      },
      std::chrono::seconds(20), 0));
  guest.set_receive_window(0);
  // Let the window fill and the persist timer run for 30 s of virtual time.
  const u64 until = reel.machine().clock().now_ns() + 30'000'000'000;
  std::vector<u64> at_close;
  ASSERT_TRUE(
      run([&] { return reel.machine().clock().now_ns() >= until; }, std::chrono::seconds(20), 10'000'000));
  for (std::size_t i = 0; i < kConnections; ++i) at_close.push_back(guest.connection(i).received);
  ASSERT_TRUE(run([&] { return reel.machine().clock().now_ns() >= until + 10'000'000'000; },
                  std::chrono::seconds(20), 10'000'000));
  const TcpNat& nat = reel.net().tcp();
  for (std::size_t i = 0; i < kConnections; ++i) {
    const auto& c = guest.connection(i);
    EXPECT_EQ(c.received, at_close[i]) << "connection " << i << ": data taken through a closed window";
    EXPECT_LT(c.received, kLength);
    EXPECT_EQ(c.window_violations, 0u) << "connection " << i;
    EXPECT_GT(c.window_probes, 0u) << "connection " << i << ": the NAT never probed the closed window";
    const auto info = nat.connection(kDriverGuestIp, c.local_port, kDriverGatewayIp, server.port());
    ASSERT_TRUE(info) << "connection " << i << " is gone from the NAT\n" << describe(nat);
    EXPECT_LE(info->to_guest_bytes, TcpNat::kToGuestHardLimit);
  }
  EXPECT_GT(nat.counters().persist_probes, 0u);
  EXPECT_EQ(nat.counters().give_ups, 0u) << "the NAT gave up on a guest that only closed its window";

  // The guest reads again.
  guest.set_receive_window(65535);
  const bool finished = run(
      [&] {
        if (guest.busy()) return false;
        for (std::size_t i = 0; i < kConnections; ++i)
          if (!guest.connection(i).closed_cleanly() && !guest.connection(i).reset) return false;
        return server.closed() >= kConnections;
      },
      std::chrono::seconds(20), 1'000'000);
  EXPECT_TRUE(finished) << describe(nat);
  for (std::size_t i = 0; i < kConnections; ++i) {
    const auto& c = guest.connection(i);
    EXPECT_FALSE(c.reset) << "connection " << i;
    EXPECT_EQ(c.received, kLength) << "connection " << i;
    EXPECT_EQ(c.received_hash, expected_hash) << "connection " << i;
    EXPECT_TRUE(c.closed_cleanly()) << "connection " << i;
    // Known NAT bug (see the report): the persist probe's byte counts as
    // sent (snd_nxt = snd_una + 1) though the closed window refused it, so
    // the window update makes the NAT send a whole window starting one
    // byte past a hole; the guest recovers only by duplicate ACKs.
    EXPECT_EQ(c.gaps, 0u) << "connection " << i << ": after the window reopened, " << c.gaps
                          << " segments arrived beyond a hole; the first started " << c.first_gap
                          << " byte(s) past the next expected byte (" << c.window_probes
                          << " window probes were refused before)";
  }
  EXPECT_EQ(nat.counters().host_overflow_resets, 0u);
  reel.advance(TcpNat::kTimeWaitNs + 1'000'000'000);
  EXPECT_EQ(nat.connection_count(), 0u) << describe(nat);
}

}  // namespace
}  // namespace reel
