#include "core/machine.h"

#include <xxhash.h>

#include <algorithm>
#include <sstream>

namespace reel {

namespace {
// Upper bound on one CPU slice, so stop requests are seen promptly even
// when no host or timer event is near. Deterministic: a pure function of the
// instruction count.
constexpr u64 kMaxSlice = u64{1} << 22;
}  // namespace

Machine::Machine(const MachineConfig& config, HostIO& host)
    : m_config(config),
      m_host(host),
      m_clock(config.icount_shift),
      m_memory(config.ram_bytes),
      m_cpu(std::make_unique<Cpu>(m_memory, m_ports, m_mmio, m_clock)),
      m_prng(config.seed) {
  m_host.attach(&m_clock, [this] { return state_hash(); });
}

Machine::~Machine() = default;

Component* Machine::find_device(const std::string& name) const {
  for (const auto& d : m_devices) {
    if (d->name() == name) return d.get();
  }
  return nullptr;
}

void Machine::set_input_handler(ChannelId channel, std::function<void(std::span<const u8>)> handler) {
  m_input_handlers[channel] = std::move(handler);
}

void Machine::deliver_input(ChannelId channel, std::span<const u8> bytes) {
  auto it = m_input_handlers.find(channel);
  if (it != m_input_handlers.end()) it->second(bytes);
}

void Machine::set_socket_handler(SocketId socket, std::function<void(const SocketEvent&)> handler) {
  m_socket_handlers[socket] = std::move(handler);
}

void Machine::clear_socket_handler(SocketId socket) { m_socket_handlers.erase(socket); }

void Machine::deliver_socket_event(const SocketEvent& event) {
  auto it = m_socket_handlers.find(event.socket);
  if (it == m_socket_handlers.end()) return;
  // The handler may replace or clear itself (a closed socket): call a copy.
  const auto handler = it->second;
  handler(event);
}

void Machine::request_exit(RunEnd::Kind kind, int status) {
  if (m_exit) return;
  m_exit = true;
  m_exit_kind = kind;
  m_exit_status = status;
  m_cpu->request_exit();
}

void Machine::reset_devices() {
  for (auto& d : m_devices) d->reset();
}

std::optional<RunEnd> Machine::run_until(u64 pause_icount) {
  RunEnd end;
  for (;;) {
    if (m_slice_end > m_clock.icount()) {
      // The slice a pause or a debugger stop cut short runs on to its
      // planned end before the loop top looks at anything: a timer armed
      // during a slice fires where the slice ends, so stopping somewhere
      // in it must not move that end (or the run would not resume as if it
      // had never paused).
      if (m_clock.icount() >= pause_icount) return std::nullopt;
      const u64 stop = std::min(m_slice_end, pause_icount);
      const CpuStop why = m_cpu->run(stop - m_clock.icount());
      // HLT, an exit request and a triple fault end the slice early.
      if (why != CpuStop::budget || m_clock.icount() >= m_slice_end) m_slice_end = 0;
      if (why == CpuStop::shutdown || m_reset_requested) {
        m_reset_requested = false;
        if (!m_shutdown_handler || !m_shutdown_handler()) {
          request_exit(RunEnd::Kind::shutdown, 0);
          break;
        }
      }
      // A debugger's breakpoint, watchpoint or break request (Cpu::run_debug):
      // pause here; the caller reads Cpu::take_debug_stop().
      if (m_cpu->debug_stopped()) return std::nullopt;
      continue;
    }
    m_scheduler.run_due(m_clock.now_ns());
    if (m_boundary_hook) m_boundary_hook();
    if (m_exit) break;
    if (m_stop_flag && m_stop_flag->load(std::memory_order_relaxed)) {
      request_exit(RunEnd::Kind::interrupted, kExitInterrupted);
      break;
    }
    if (!m_host.boundary(*this)) {
      request_exit(RunEnd::Kind::journal_end, 0);
      break;
    }
    if (m_exit) break;

    const bool ready = !m_cpu->halted() || m_cpu->interrupt_ready();
    if (!ready) {
      // Halted with nothing to deliver. With IF clear nothing can ever wake
      // it (reel has no NMI sources), so the run ends at once.
      if (!(m_cpu->registers().eflags & (1u << 9))) {
        request_exit(RunEnd::Kind::stuck, 0);
        break;
      }
      const std::optional<u64> resume = m_host.idle(m_scheduler.next_deadline());
      if (!resume) {
        request_exit(RunEnd::Kind::stuck, 0);
        break;
      }
      m_clock.advance_idle_to(*resume);
      continue;
    }

    if (m_clock.icount() >= pause_icount) return std::nullopt;
    u64 budget = kMaxSlice;
    if (const std::optional<u64> d = m_scheduler.next_deadline()) {
      budget = std::min(budget, m_clock.instructions_until(*d));
    }
    const u64 stop = m_host.next_stop_icount();
    if (stop != kNever) budget = std::min(budget, stop > m_clock.icount() ? stop - m_clock.icount() : 0);
    if (budget == 0) continue;  // a deadline is due now: the loop top runs it
    // The slice's end depends only on the run, never on where the caller
    // pauses; the code at the loop top runs it.
    m_slice_end = m_clock.icount() + budget;
  }
  end.kind = m_exit_kind;
  end.status = m_exit_status;
  end.icount = m_clock.icount();
  end.time_ns = m_clock.now_ns();
  end.state_hash = state_hash();
  m_host.finish(end);
  return end;
}

template <class Archive>
void Machine::serialize_core(Archive& ar) {
  ar(cereal::make_nvp("clock", m_clock));
  ar(cereal::make_nvp("scheduler", m_scheduler));
  ar(cereal::make_nvp("prng", m_prng));
  ar(cereal::make_nvp("cpu", *m_cpu));
}

u64 Machine::state_hash() {
  std::ostringstream os;
  {
    BinaryOut ar(os);
    serialize_core(ar);
    for (auto& d : m_devices) d->save_state(ar);
  }
  const std::string bytes = os.str();
  const u64 parts[2] = {XXH3_64bits(bytes.data(), bytes.size()), m_memory.hash()};
  return XXH3_64bits(parts, sizeof parts);
}

void Machine::save_state(BinaryOut& ar, StateParts parts) {
  serialize_core(ar);
  for (auto& d : m_devices) d->save_state(ar);
  // Not hashed (checkpoints predate it), but a paused run's future depends on it.
  ar(cereal::make_nvp("slice_end", m_slice_end));
  if (parts == StateParts::all) ar(cereal::make_nvp("ram", m_memory));
}

void Machine::load_state(BinaryIn& ar, StateParts parts) {
  serialize_core(ar);
  for (auto& d : m_devices) d->load_state(ar);
  ar(cereal::make_nvp("slice_end", m_slice_end));
  if (parts == StateParts::all) ar(cereal::make_nvp("ram", m_memory));
}

void Machine::restore_runtime(SocketHandlers handlers) {
  m_socket_handlers = std::move(handlers);
  m_exit = false;
  m_exit_kind = RunEnd::Kind::guest_exit;
  m_exit_status = 0;
  m_cpu->cancel_exit_request();
}

void Machine::dump_state(std::ostream& out) {
  JsonOut ar(out);
  serialize_core(ar);
  ar.setNextName("devices");
  ar.startNode();
  for (auto& d : m_devices) {
    ar.setNextName(d->name().c_str());
    ar.startNode();
    d->dump_state(ar);
    ar.finishNode();
  }
  ar.finishNode();
  ar(cereal::make_nvp("ram_hash", m_memory.hash()));
}

}  // namespace reel
