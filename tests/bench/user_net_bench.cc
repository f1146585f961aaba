// The TCP NAT of `-net user`, reel against libslirp (QEMU's user-mode
// network) in one process, driven by the same frame-level guest TCP
// (guest_tcp_driver.h): bulk data guest -> host (to a sink thread on
// 127.0.0.1) and host -> guest (from a source thread), in frames/s and
// MB/s, and the memory an idle connection costs.
//
// reel runs as the machine loop would: UserNet on a hub, a Machine on a
// LiveHostIO whose boundary() delivers the host socket events, virtual
// time moving 10 us per round. libslirp runs its own loop:
// slirp_pollfds_fill, poll(), slirp_pollfds_poll.
//
//   build/dev/tests/bench/user_net_bench --benchmark_filter=guest_to_host
//   taskset -c 0 build/dev/tests/bench/user_net_bench   (one core: fairer, the
//   server thread then competes with the stack like a busy host would)

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/bench/guest_tcp_driver.h"

#ifdef REEL_HAVE_LIBSLIRP
#include <slirp/libslirp.h>
#endif

namespace reel {
namespace {

using namespace reel::test;
using Clock = std::chrono::steady_clock;

constexpr u64 kMiB = u64{1} << 20;
constexpr auto kIterationTimeout = std::chrono::seconds(60);
constexpr u64 kVirtualStepNs = 10'000;
constexpr u64 kIdleWaitNs = 1'000'000;

// reel's side, with the benchmark loop's interface.
class ReelStack {
 public:
  explicit ReelStack(GuestTcpDriver::Options options) : m_harness(options) {}
  GuestTcpDriver& driver() { return m_harness.driver(); }
  // One round; when nothing moved, waits up to 1 ms for the host as the
  // machine loop's idle does (and as SlirpStack's poll does below).
  void step() {
    if (!m_harness.step(kVirtualStepNs)) m_harness.idle(kIdleWaitNs);
  }
  void report(benchmark::State& state) {
    const auto& k = m_harness.net().tcp().counters();
    state.counters["nat_retransmits"] = static_cast<double>(k.retransmits);
    state.counters["nat_dup_segments"] = static_cast<double>(k.duplicate_segments);
  }
  std::size_t nat_connections() { return m_harness.net().tcp().connection_count(); }

 private:
  ReelUserNetHarness m_harness;
};

#ifdef REEL_HAVE_LIBSLIRP

// libslirp with QEMU's defaults, its clock the host's monotonic clock (its
// TCP timers, delayed ACKs among them, run from slirp_pollfds_poll).
class SlirpStack {
 public:
  explicit SlirpStack(GuestTcpDriver::Options options)
      : m_driver(
            [this](std::span<const u8> frame) {
              slirp_input(m_slirp, frame.data(), static_cast<int>(frame.size()));
            },
            options) {
    SlirpConfig cfg{};
    cfg.version = 3;
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.in6_enabled = false;
    m_callbacks.send_packet = [](const void* buf, size_t len, void* opaque) -> ssize_t {
      static_cast<SlirpStack*>(opaque)->m_driver.receive_frame(std::span(static_cast<const u8*>(buf), len));
      return static_cast<ssize_t>(len);
    };
    m_callbacks.guest_error = [](const char*, void*) {};
    m_callbacks.clock_get_ns = [](void*) -> int64_t {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    };
    m_callbacks.timer_new = [](SlirpTimerCb, void*, void*) -> void* { return new int(0); };
    m_callbacks.timer_free = [](void* t, void*) { delete static_cast<int*>(t); };
    m_callbacks.timer_mod = [](void*, int64_t, void*) {};
    m_callbacks.register_poll_fd = [](int, void*) {};
    m_callbacks.unregister_poll_fd = [](int, void*) {};
    m_callbacks.notify = [](void*) {};
    m_slirp = slirp_new(&cfg, &m_callbacks, this);
  }
  ~SlirpStack() {
    if (m_slirp) slirp_cleanup(m_slirp);
  }
  bool ok() const { return m_slirp != nullptr; }
  GuestTcpDriver& driver() { return m_driver; }

  // One round of libslirp's main loop; poll() blocks (up to 1 ms, less when
  // libslirp's timers say so) only when the guest has nothing to send.
  void step() {
    m_driver.pump();
    m_fds.clear();
    u32 timeout = m_driver.busy() ? 0 : 1;
    slirp_pollfds_fill(m_slirp, &timeout, &SlirpStack::add_poll, this);
    const int r = ::poll(m_fds.data(), m_fds.size(), static_cast<int>(timeout));
    slirp_pollfds_poll(m_slirp, r < 0, &SlirpStack::get_revents, this);
  }
  void report(benchmark::State&) {}

 private:
  static int add_poll(int fd, int events, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    if (events & SLIRP_POLL_ERR) ev |= POLLERR;
    if (events & SLIRP_POLL_HUP) ev |= POLLHUP;
    self->m_fds.push_back(pollfd{fd, ev, 0});
    return static_cast<int>(self->m_fds.size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    if (idx < 0 || static_cast<std::size_t>(idx) >= self->m_fds.size()) return 0;
    const short ev = self->m_fds[static_cast<std::size_t>(idx)].revents;
    int out = 0;
    if (ev & POLLIN) out |= SLIRP_POLL_IN;
    if (ev & POLLOUT) out |= SLIRP_POLL_OUT;
    if (ev & POLLPRI) out |= SLIRP_POLL_PRI;
    if (ev & POLLERR) out |= SLIRP_POLL_ERR;
    if (ev & POLLHUP) out |= SLIRP_POLL_HUP;
    return out;
  }

  SlirpCb m_callbacks{};
  Slirp* m_slirp = nullptr;
  GuestTcpDriver m_driver;
  std::vector<pollfd> m_fds;
};

#endif

GuestTcpDriver::Options bulk_options() {
  GuestTcpDriver::Options o;
  o.hash_received = false;  // counted; hashing is the load test's job
  return o;
}

// Runs the stack until `done` or the timeout; false on timeout.
template <class Stack, class Done>
bool run_until(Stack& stack, Done done) {
  const auto deadline = Clock::now() + kIterationTimeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    stack.step();
  }
  return true;
}

template <class Stack>
void set_rates(benchmark::State& state, Stack& stack, u64 frames, u64 bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
  state.counters["guest_loss_signs"] = static_cast<double>(stack.driver().loss_signs());
  stack.report(state);
}

// One connection per iteration sends state.range(0) MiB, then FIN; the
// iteration ends when the sink has everything and both FINs are acknowledged.
template <class Stack>
void guest_to_host(benchmark::State& state) {
  const u64 length = static_cast<u64>(state.range(0)) * kMiB;
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::sink;
  so.hash = false;
  LoopbackStreamServer sink(so);
  Stack stack(bulk_options());
  if (!sink.ok()) return state.SkipWithError("no sink on 127.0.0.1");
  GuestTcpDriver& guest = stack.driver();
  guest.announce();
  stack.step();
  u64 frames = 0, bytes = 0;
  std::size_t done = 0;
  for (auto _ : state) {
    const u64 frames_before = guest.counters().frames_in + guest.counters().frames_out;
    const std::size_t c = guest.open(sink.port());
    guest.send_stream(c, {}, static_cast<u32>(c), length);
    guest.close(c);
    ++done;
    const bool finished = run_until(stack, [&] {
      const auto& k = guest.connection(c);
      return k.reset || (k.closed_cleanly() && sink.closed() >= done);
    });
    if (!finished || guest.connection(c).reset) return state.SkipWithError("transfer stalled or was reset");
    if (sink.bytes_in() != done * length) return state.SkipWithError("the sink got a different byte count");
    frames += guest.counters().frames_in + guest.counters().frames_out - frames_before;
    bytes += length;
  }
  set_rates(state, stack, frames, bytes);
}

// One connection per iteration receives state.range(0) MiB from the
// source, which then closes; the guest answers the FIN with its own.
template <class Stack>
void host_to_guest(benchmark::State& state) {
  const u64 length = static_cast<u64>(state.range(0)) * kMiB;
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::source;
  so.source_length = length;
  LoopbackStreamServer source(so);
  Stack stack(bulk_options());
  if (!source.ok()) return state.SkipWithError("no source on 127.0.0.1");
  GuestTcpDriver& guest = stack.driver();
  guest.announce();
  stack.step();
  u64 frames = 0, bytes = 0;
  for (auto _ : state) {
    const u64 frames_before = guest.counters().frames_in + guest.counters().frames_out;
    const std::size_t c = guest.open(source.port());
    const bool finished = run_until(stack, [&] {
      const auto& k = guest.connection(c);
      if (k.fin_received && !k.close_requested) guest.close(c);
      return k.reset || k.closed_cleanly();
    });
    if (!finished || guest.connection(c).reset) return state.SkipWithError("transfer stalled or was reset");
    if (guest.connection(c).received != length)
      return state.SkipWithError("the guest got a different byte count");
    frames += guest.counters().frames_in + guest.counters().frames_out - frames_before;
    bytes += length;
  }
  set_rates(state, stack, frames, bytes);
}

// The heap an idle established connection costs the stack (main arena:
// the sink thread allocates in its own), measured over state.range(0)
// connections. Kernel socket buffers are not counted.
template <class Stack>
void idle_connection_memory(benchmark::State& state) {
  const std::size_t count = static_cast<std::size_t>(state.range(0));
  if (raise_fd_limit(2 * count + 64) < 2 * count + 64) return state.SkipWithError("descriptor limit too low");
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::sink;
  so.max_connections = count + 16;
  LoopbackStreamServer sink(so);
  for (auto _ : state) {
    state.PauseTiming();
    auto stack = std::make_unique<Stack>(GuestTcpDriver::Options{});
    GuestTcpDriver& guest = stack->driver();
    guest.reserve(count + 1);
    guest.announce();
    // One connection first, so that one-time allocations are not charged
    // to the others.
    const std::size_t first = guest.open(sink.port());
    const std::size_t accepted_before = sink.accepted();
    run_until(*stack,
              [&] { return guest.connection(first).established && sink.accepted() > accepted_before; });
    for (int i = 0; i < 50; ++i) stack->step();
    const std::size_t before = mallinfo2().uordblks;
    state.ResumeTiming();
    for (std::size_t i = 0; i < count; ++i) guest.open(sink.port());
    const bool up = run_until(*stack, [&] {
      for (std::size_t i = 1; i <= count; ++i)
        if (!guest.connection(i).established) return false;
      return sink.accepted() >= accepted_before + count + 1;
    });
    state.PauseTiming();
    for (int i = 0; i < 50; ++i) stack->step();
    const std::size_t after = mallinfo2().uordblks;
    if (!up) return state.SkipWithError("connections did not open");
    state.counters["heap_bytes_per_conn"] =
        static_cast<double>(after > before ? after - before : 0) / static_cast<double>(count);
    stack.reset();
    state.ResumeTiming();
  }
}

// state.range(0) connections opened at once, each closed by the guest as
// soon as it is up (the sink then closes its side): connections/s through
// the whole life cycle, host connect() and accept included.
template <class Stack>
void connect_close(benchmark::State& state) {
  const std::size_t count = static_cast<std::size_t>(state.range(0));
  if (raise_fd_limit(2 * count + 64) < 2 * count + 64) return state.SkipWithError("descriptor limit too low");
  LoopbackStreamServer::Options so;
  so.mode = LoopbackStreamServer::Mode::sink;
  so.max_connections = count * (state.max_iterations + 1) + 16;
  LoopbackStreamServer sink(so);
  Stack stack(GuestTcpDriver::Options{});
  GuestTcpDriver& guest = stack.driver();
  guest.reserve(count * state.max_iterations);
  guest.announce();
  stack.step();
  u64 frames = 0, connections = 0;
  for (auto _ : state) {
    const u64 frames_before = guest.counters().frames_in + guest.counters().frames_out;
    const std::size_t first = guest.connections().size();
    for (std::size_t i = 0; i < count; ++i) guest.close(guest.open(sink.port()));
    const bool finished = run_until(stack, [&] {
      if (guest.busy()) return false;
      for (std::size_t i = first; i < first + count; ++i) {
        const auto& k = guest.connection(i);
        if (!k.reset && !k.closed_cleanly()) return false;
      }
      return sink.closed() >= first + count;
    });
    if (!finished) return state.SkipWithError("connections did not close");
    for (std::size_t i = first; i < first + count; ++i)
      if (guest.connection(i).reset) return state.SkipWithError("a connection was reset");
    frames += guest.counters().frames_in + guest.counters().frames_out - frames_before;
    connections += count;
  }
  state.counters["connections/s"] =
      benchmark::Counter(static_cast<double>(connections), benchmark::Counter::kIsRate);
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  stack.report(state);
}

void BM_reel_guest_to_host(benchmark::State& state) { guest_to_host<ReelStack>(state); }
void BM_reel_host_to_guest(benchmark::State& state) { host_to_guest<ReelStack>(state); }
void BM_reel_idle_connection_memory(benchmark::State& state) { idle_connection_memory<ReelStack>(state); }
BENCHMARK(BM_reel_guest_to_host)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_reel_host_to_guest)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_reel_connect_close(benchmark::State& state) { connect_close<ReelStack>(state); }
BENCHMARK(BM_reel_connect_close)->Arg(100)->Iterations(50)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_reel_idle_connection_memory)
    ->Arg(1000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

#ifdef REEL_HAVE_LIBSLIRP
void BM_libslirp_guest_to_host(benchmark::State& state) { guest_to_host<SlirpStack>(state); }
void BM_libslirp_host_to_guest(benchmark::State& state) { host_to_guest<SlirpStack>(state); }
void BM_libslirp_idle_connection_memory(benchmark::State& state) {
  idle_connection_memory<SlirpStack>(state);
}
BENCHMARK(BM_libslirp_guest_to_host)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_libslirp_host_to_guest)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
void BM_libslirp_connect_close(benchmark::State& state) { connect_close<SlirpStack>(state); }
BENCHMARK(BM_libslirp_connect_close)->Arg(100)->Iterations(50)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_libslirp_idle_connection_memory)
    ->Arg(1000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

}  // namespace
}  // namespace reel
