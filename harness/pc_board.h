#pragma once

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/linux_loader.h"
#include "core/machine.h"
#include "harness/options.h"

namespace reel {

class Disassembler;
class Hub;
class Monitor;

// Builds a PC out of core/ and devices/ as the options describe, boots the
// kernel and runs it. Every HostIO request it makes (consoles, the kernel
// file, the RTC's host date) happens in the same order in every mode, so a
// replay sees the same sequence.
class PcBoard {
 public:
  // Throws BadInput for problems with the user's input.
  PcBoard(const MachineOptions& options, HostIO& host, u64 seed);
  ~PcBoard();

  Machine& machine() { return *m_machine; }
  // The VLANs in number order.
  std::vector<const Hub*> hubs() const;
  Monitor* monitor() { return m_monitor; }
  RunEnd run(const std::atomic<bool>* stop_flag);

 private:
  void build_devices();
  void build_network();
  void open_consoles();
  void open_monitor();
  void load_kernel();
  // Loads m_kernel (and m_initrd) into RAM, at start and on every reboot;
  // returns the loader's error, empty on success.
  std::string load_image();
  void boot_cpu();
  bool on_shutdown();
  void log_block(u32 linear, std::span<const u8> bytes, bool code32);

  MachineOptions m_options;
  HostIO& m_host;
  std::unique_ptr<Machine> m_machine;
  std::vector<u8> m_kernel;
  std::vector<u8> m_initrd;
  bool m_linux = false;  // m_kernel is a bzImage (else a multiboot ELF)
  LinuxLoadResult m_linux_boot;
  u32 m_entry = 0;
  u32 m_mbi = 0;
  std::unique_ptr<Disassembler> m_disassembler;
  std::FILE* m_log = nullptr;
  struct Wiring;
  std::unique_ptr<Wiring> m_wiring;
  Monitor* m_monitor = nullptr;
};

}  // namespace reel
