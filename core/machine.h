#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <span>
#include <vector>

#include "core/component.h"
#include "core/cpu/cpu.h"
#include "core/device.h"
#include "core/exit_status.h"
#include "core/guest_memory.h"
#include "core/host_io.h"
#include "core/mmio_bus.h"
#include "core/port_bus.h"
#include "core/prng.h"
#include "core/scheduler.h"
#include "core/virtual_clock.h"

namespace reel {

struct MachineConfig {
  u32 ram_bytes = 128u << 20;
  unsigned icount_shift = 0;
  u64 seed = 0;
};

// Owns the clock, scheduler, memory, buses, CPU and devices, and runs the
// main loop. It knows nothing of which devices exist: harness/ builds the PC
// out of devices/ and netstack/.
class Machine : public InputSink {
 public:
  Machine(const MachineConfig& config, HostIO& host);
  ~Machine() override;

  const MachineConfig& config() const { return m_config; }
  VirtualClock& clock() { return m_clock; }
  Scheduler& scheduler() { return m_scheduler; }
  GuestMemory& memory() { return m_memory; }
  PortBus& ports() { return m_ports; }
  MmioBus& mmio() { return m_mmio; }
  Cpu& cpu() { return *m_cpu; }
  HostIO& host() { return m_host; }
  Prng& prng() { return m_prng; }

  // Devices and the other components (hubs, backends) are serialized,
  // hashed and reset in the order they were added.
  template <class T, class... Args>
  T& add_device(Args&&... args) {
    auto dev = std::make_unique<T>(std::forward<Args>(args)...);
    T& ref = *dev;
    m_devices.push_back(std::move(dev));
    return ref;
  }
  const std::vector<std::unique_ptr<Component>>& devices() const { return m_devices; }
  Component* find_device(const std::string& name) const;

  // Routes a console's input bytes to the device that reads it.
  void set_input_handler(ChannelId channel, std::function<void(std::span<const u8>)> handler);
  void deliver_input(ChannelId channel, std::span<const u8> bytes) override;
  // Routes a host socket's events to its owner (a -net socket backend, a
  // NAT flow). The handler of a listening socket registers the accepted
  // ones. Events for sockets without a handler are dropped.
  void set_socket_handler(SocketId socket, std::function<void(const SocketEvent&)> handler);
  void clear_socket_handler(SocketId socket);
  void deliver_socket_event(const SocketEvent& event) override;

  // Ends the run after the current instruction (isa-debug-exit, shutdown).
  void request_exit(RunEnd::Kind kind, int status);
  // A device pulled the reset line (keyboard controller, port 0x92, 0xCF9):
  // after the current instruction the machine goes the way of a triple
  // fault, through the shutdown handler (reboot, or exit under -no-reboot).
  void request_reset() {
    m_reset_requested = true;
    m_cpu->request_exit();
  }
  // Host-side stop request (Ctrl-C), polled at loop boundaries.
  void set_stop_flag(const std::atomic<bool>* flag) { m_stop_flag = flag; }
  // Called when the CPU triple-faults. Returns true to keep running (the
  // handler reset the machine) or false to end the run.
  void set_shutdown_handler(std::function<bool()> handler) { m_shutdown_handler = std::move(handler); }
  // Called at every loop boundary, before the host is consulted (tests,
  // progress lines, perturbation hooks).
  void set_boundary_hook(std::function<void()> hook) { m_boundary_hook = std::move(hook); }

  void reset_devices();

  // One line about the machine's dealings with the outside (a peer came or
  // went), for the user; the harness decides where it goes. Lines come at
  // deterministic points, so a replay prints the same ones.
  void set_logger(std::function<void(const std::string&)> logger) { m_logger = std::move(logger); }
  void log(const std::string& line) const {
    if (m_logger) m_logger(line);
  }

  // Runs until the guest exits, shuts down, gets stuck, the host asks to
  // stop or the journal ends. Calls host().finish().
  RunEnd run() { return *run_until(kNever); }
  // The same, but pauses once `icount` instructions have retired, right
  // before the CPU would run the next one (after that boundary's timers and
  // host events, when the count falls on a boundary; inside a CPU slice the
  // slice just stops): returns nullopt then, and a later call resumes the
  // run as if it had never paused. Divergence search and perturbation use it to
  // look at the state at an exact instruction count. It also pauses (nullopt)
  // when a debugger stop ends the CPU's slice (Cpu::debug_stopped()).
  std::optional<RunEnd> run_until(u64 icount);

  // xxHash3 over the binary archive of all state plus the RAM page hashes.
  u64 state_hash();
  // Snapshots keep RAM by pages (replay/snapshot.h) and save the rest.
  enum class StateParts : u8 { all, without_ram };
  void save_state(BinaryOut& ar, StateParts parts = StateParts::all);
  void load_state(BinaryIn& ar, StateParts parts = StateParts::all);
  // What a snapshot restored into this same paused machine needs besides
  // load_state: the host socket routing (handlers point into components,
  // which stay; the set of sockets is the snapshot's) and no pending end.
  using SocketHandlers = std::map<SocketId, std::function<void(const SocketEvent&)>>;
  const SocketHandlers& socket_handlers() const { return m_socket_handlers; }
  void restore_runtime(SocketHandlers handlers);
  // Human-readable state, field paths like "devices.uart.0.lsr".
  void dump_state(std::ostream& out);

 private:
  template <class Archive>
  void serialize_core(Archive& ar);

  MachineConfig m_config;
  HostIO& m_host;
  VirtualClock m_clock;
  Scheduler m_scheduler;
  GuestMemory m_memory;
  PortBus m_ports;
  MmioBus m_mmio;
  std::unique_ptr<Cpu> m_cpu;
  Prng m_prng;
  std::vector<std::unique_ptr<Component>> m_devices;
  std::map<ChannelId, std::function<void(std::span<const u8>)>> m_input_handlers;
  SocketHandlers m_socket_handlers;

  // Where the CPU slice in progress ends, when a pause (run_until) or a
  // debugger stop cut it short; 0 or past: no slice in progress.
  u64 m_slice_end = 0;
  bool m_exit = false;
  bool m_reset_requested = false;  // never outlives the instruction that set it
  RunEnd::Kind m_exit_kind = RunEnd::Kind::guest_exit;
  int m_exit_status = 0;
  const std::atomic<bool>* m_stop_flag = nullptr;
  std::function<bool()> m_shutdown_handler;
  std::function<void()> m_boundary_hook;
  std::function<void(const std::string&)> m_logger;
};

}  // namespace reel
