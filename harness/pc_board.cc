#include "harness/pc_board.h"

#include <cinttypes>
#include <string>

#include "core/multiboot_loader.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/pci_bus.h"
#include "devices/pci_firmware_setup.h"
#include "devices/pic.h"
#include "devices/piix3_isa_bridge.h"
#include "devices/pit.h"
#include "devices/post_port.h"
#include "devices/system_control_port.h"
#include "devices/uart.h"
#include "harness/disassembler.h"
#include "harness/session.h"

namespace reel {

namespace {
constexpr u32 kBootloaderMagic = 0x2BADB002;  // EAX at a multiboot kernel's entry

struct ComPort {
  u16 base;
  unsigned irq;
};
constexpr ComPort kComPorts[4] = {{0x3f8, 4}, {0x2f8, 3}, {0x3e8, 4}, {0x2e8, 3}};
}  // namespace

struct PcBoard::Wiring {
  Pic* pic = nullptr;
  std::vector<Uart*> uarts;
  // PCI functions without I/O registers of their own live in the bus's
  // configuration space; the board owns them.
  std::unique_ptr<I440fxHostBridge> host_bridge;
  std::unique_ptr<Piix3IsaBridge> isa_bridge;
};

PcBoard::PcBoard(const MachineOptions& options, HostIO& host, u64 seed)
    : m_options(options), m_host(host), m_wiring(std::make_unique<Wiring>()) {
  MachineConfig config;
  config.ram_bytes = options.ram_bytes;
  config.icount_shift = options.icount_shift;
  config.seed = seed;
  m_machine = std::make_unique<Machine>(config, host);
  if (m_options.log_in_asm) {
    m_disassembler = std::make_unique<Disassembler>();
    m_log = m_options.log_file.empty() ? stderr : std::fopen(m_options.log_file.c_str(), "w");
    if (!m_log) throw BadInput("-D " + m_options.log_file + ": cannot open for writing");
    m_machine->cpu().set_block_hook(
        [this](u32 linear, std::span<const u8> bytes, bool code32) { log_block(linear, bytes, code32); });
  }
  build_devices();
  open_consoles();
  load_kernel();
  boot_cpu();
  m_machine->set_shutdown_handler([this] { return on_shutdown(); });
}

PcBoard::~PcBoard() {
  if (m_log && m_log != stderr) std::fclose(m_log);
}

void PcBoard::build_devices() {
  Machine& m = *m_machine;
  Pic& pic = m.add_device<Pic>(m.cpu());
  pic.map_into(m.ports());
  m.cpu().set_interrupt_controller(&pic);
  m_wiring->pic = &pic;

  Pit& pit = m.add_device<Pit>(m.scheduler(), m.clock(), IrqLine{&pic, 0});
  pit.map_into(m.ports());

  CmosRtc& rtc = m.add_device<CmosRtc>(m.scheduler(), m.clock(), m_host, IrqLine{&pic, 8}, m_options.ram_bytes,
                                       m_options.rtc_base_ns);
  rtc.map_into(m.ports());

  PostPort& post = m.add_device<PostPort>();
  post.map_into(m.ports());
  SystemControlPort& sysctl =
      m.add_device<SystemControlPort>([&m] { m.request_exit(RunEnd::Kind::shutdown, 0); });
  sysctl.map_into(m.ports());

  if (m_options.machine == "pc") {
    PciBus& pci = m.add_device<PciBus>();
    pci.map_into(m.ports());
    m_wiring->host_bridge = std::make_unique<I440fxHostBridge>();
    m_wiring->isa_bridge = std::make_unique<Piix3IsaBridge>();
    pci.attach(m_wiring->host_bridge.get());
    pci.attach(m_wiring->isa_bridge.get());
    // SeaBIOS makes the PCI-routed IRQs level triggered.
    pic.set_elcr(assign_pci_resources(pci, *m_wiring->isa_bridge));
  }

  if (m_options.debug_exit) {
    DebugExit& dx =
        m.add_device<DebugExit>([&m](int status) { m.request_exit(RunEnd::Kind::guest_exit, status); });
    m.ports().map(m_options.debug_exit->iobase, m_options.debug_exit->iosize, &dx);
  }
}

void PcBoard::open_consoles() {
  Machine& m = *m_machine;
  for (size_t i = 0; i < m_options.serials.size(); ++i) {
    const SerialOption& s = m_options.serials[i];
    ConsoleSpec spec;
    spec.name = "serial" + std::to_string(i);
    spec.kind = s.kind == SerialOption::Kind::stdio  ? ConsoleSpec::Kind::stdio
                : s.kind == SerialOption::Kind::file ? ConsoleSpec::Kind::file
                                                     : ConsoleSpec::Kind::none;
    spec.path = s.path;
    spec.wants_input = s.kind == SerialOption::Kind::stdio;
    const ChannelId channel = m_host.open_console(spec);
    Uart& uart = m.add_device<Uart>("uart." + std::to_string(i), m.scheduler(), m.clock(), m_host, channel,
                                    IrqLine{m_wiring->pic, kComPorts[i].irq});
    uart.map_into(m.ports(), kComPorts[i].base);
    m.set_input_handler(channel, [&uart](std::span<const u8> bytes) { uart.receive(bytes); });
    m_wiring->uarts.push_back(&uart);
  }
}

void PcBoard::load_kernel() {
  HostFile file = m_host.read_file(m_options.kernel);
  if (!file.ok) throw BadInput("-kernel " + m_options.kernel + ": " + file.error);
  m_kernel = std::move(file.bytes);
  const MultibootLoadResult r =
      load_multiboot(m_machine->memory(), m_kernel, m_options.append, m_options.kernel);
  if (!r.ok) throw BadInput("-kernel " + m_options.kernel + ": " + r.error);
  m_entry = r.entry;
  m_mbi = r.mbi_address;
}

void PcBoard::boot_cpu() {
  Cpu& cpu = m_machine->cpu();
  cpu.enter_flat_protected_mode(m_entry);
  CpuRegisters regs = cpu.registers();
  regs.gpr[kEax] = kBootloaderMagic;
  regs.gpr[kEbx] = m_mbi;
  cpu.set_registers(regs);
}

bool PcBoard::on_shutdown() {
  // A triple fault resets a PC. Under -no-reboot QEMU exits instead; without
  // a BIOS, "reboot" means booting the same kernel again, as QEMU's
  // multiboot option ROM does.
  if (m_options.no_reboot) return false;
  m_machine->reset_devices();
  const MultibootLoadResult r =
      load_multiboot(m_machine->memory(), m_kernel, m_options.append, m_options.kernel);
  if (!r.ok) return false;
  m_machine->cpu().reset();
  boot_cpu();
  return true;
}

RunEnd PcBoard::run(const std::atomic<bool>* stop_flag) {
  m_machine->set_stop_flag(stop_flag);
  return m_machine->run();
}

void PcBoard::log_block(u32 linear, std::span<const u8> bytes, bool code32) {
  std::fprintf(m_log, "----------------\nIN: \n");
  for (const auto& line : m_disassembler->disassemble(bytes, linear, code32)) {
    std::fprintf(m_log, "0x%08x:  %s\n", line.address, line.text.c_str());
  }
  std::fprintf(m_log, "\n");
}

}  // namespace reel
