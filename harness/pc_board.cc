#include "harness/pc_board.h"

#include <cinttypes>
#include <map>
#include <string>

#include "core/multiboot_loader.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i440fx_host_bridge.h"
#include "devices/i8042_controller.h"
#include "devices/ne2000_isa.h"
#include "devices/ne2000_pci.h"
#include "devices/pci_bus.h"
#include "devices/pci_firmware_setup.h"
#include "devices/pic.h"
#include "devices/piix3_isa_bridge.h"
#include "devices/pit.h"
#include "devices/post_port.h"
#include "devices/shared_irq_line.h"
#include "devices/system_control_port.h"
#include "devices/uart.h"
#include "harness/disassembler.h"
#include "harness/monitor.h"
#include "harness/session.h"
#include "netstack/hub.h"
#include "netstack/mcast_backend.h"
#include "netstack/pcap_dump.h"
#include "netstack/socket_backend.h"
#include "netstack/user_net.h"

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
  PciBus* pci = nullptr;
  std::map<unsigned, Hub*> hubs;           // by VLAN number
  std::map<int, SharedIrqLine*> pci_irqs;  // by ISA IRQ: PCI functions share them
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
  m_machine->set_logger([](const std::string& line) { std::fprintf(stderr, "reel: %s\n", line.c_str()); });
  try {
    build_devices();
  } catch (const std::invalid_argument& e) {
    // Two devices the options placed on the same ports (an ISA NIC over a
    // serial port, say): the bus names both.
    throw BadInput(e.what());
  }
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

  CmosRtc& rtc = m.add_device<CmosRtc>(m.scheduler(), m.clock(), m_host, IrqLine{&pic, 8},
                                       m_options.ram_bytes, m_options.rtc_base_ns);
  rtc.map_into(m.ports());

  PostPort& post = m.add_device<PostPort>();
  post.map_into(m.ports());
  SystemControlPort& sysctl = m.add_device<SystemControlPort>([&m] { m.request_reset(); });
  sysctl.map_into(m.ports());
  I8042Controller& kbc =
      m.add_device<I8042Controller>(IrqLine{&pic, 1}, IrqLine{&pic, 12}, [&m] { m.request_reset(); });
  kbc.map_into(m.ports());

  if (m_options.machine == "pc") {
    PciBus& pci = m.add_device<PciBus>();
    pci.map_into(m.ports());
    pci.set_reset_handler([&m] { m.request_reset(); });
    m_wiring->host_bridge = std::make_unique<I440fxHostBridge>();
    m_wiring->isa_bridge = std::make_unique<Piix3IsaBridge>();
    pci.attach(m_wiring->host_bridge.get());
    pci.attach(m_wiring->isa_bridge.get());
    m_wiring->pci = &pci;
  }

  // The serial ports and the monitor come next, then the NICs: they go on
  // the PCI bus before firmware setup assigns their resources, as QEMU
  // creates them before SeaBIOS runs.
  open_consoles();
  open_monitor();
  build_network();

  if (m_wiring->pci) {
    // SeaBIOS makes the PCI-routed IRQs level triggered.
    pic.set_elcr(assign_pci_resources(*m_wiring->pci, *m_wiring->isa_bridge));
  }

  if (m_options.debug_exit) {
    DebugExit& dx =
        m.add_device<DebugExit>([&m](int status) { m.request_exit(RunEnd::Kind::guest_exit, status); });
    m.ports().map(m_options.debug_exit->iobase, m_options.debug_exit->iosize, &dx);
  }
}

void PcBoard::build_network() {
  Machine& m = *m_machine;
  auto hub_for = [&](unsigned vlan) -> Hub& {
    auto it = m_wiring->hubs.find(vlan);
    if (it != m_wiring->hubs.end()) return *it->second;
    Hub& hub = m.add_device<Hub>(vlan);
    m_wiring->hubs[vlan] = &hub;
    return hub;
  };
  // QEMU names each client after its type and a per-type index.
  std::map<std::string, unsigned> type_counts;
  auto client_name = [&](const NetOption& n, const std::string& type) {
    const unsigned index = type_counts[type]++;
    return n.name.empty() ? type + "." + std::to_string(index) : n.name;
  };
  unsigned nic_index = 0;
  unsigned next_pci_slot = 3;  // 0: host bridge, 1: ISA bridge, 2: where QEMU puts VGA
  for (const NetOption& n : m_options.nets) {
    Hub& hub = hub_for(n.vlan);
    switch (n.kind) {
      case NetOption::Kind::nic: {
        const std::string model = !n.model.empty()               ? n.model
                                  : m_options.machine == "isapc" ? "ne2k_isa"
                                                                 : "ne2k_pci";
        const std::string name = client_name(n, model);
        Dp8390::MacAddress mac = Dp8390::kDefaultMac;
        mac[5] = static_cast<u8>(mac[5] + nic_index);
        if (n.macaddr) mac = *n.macaddr;
        ++nic_index;
        Dp8390* nic = nullptr;
        if (model == "ne2k_pci") {
          if (!m_wiring->pci) throw BadInput("-net nic,model=ne2k_pci: this machine has no PCI bus");
          if (next_pci_slot >= 32) throw BadInput("-net nic: no free PCI slot for " + name);
          const unsigned slot = next_pci_slot++;
          const int irq = m_wiring->isa_bridge->isa_irq_for(slot, 1);
          SharedIrqLine*& line = m_wiring->pci_irqs[irq];
          if (!line && irq >= 0) {
            line = &m.add_device<SharedIrqLine>("pci_irq." + std::to_string(irq),
                                                IrqLine{m_wiring->pic, static_cast<unsigned>(irq)});
          }
          const IrqLine intx = line ? line->source(slot) : IrqLine{};
          auto& pci_nic = m.add_device<Ne2000Pci>(name, slot, mac, m.ports(), intx);
          m_wiring->pci->attach(&pci_nic);
          nic = &pci_nic;
        } else {
          const u16 iobase = n.iobase.value_or(Ne2000Isa::kDefaultIobase);
          const unsigned irq = n.irq.value_or(Ne2000Isa::kDefaultIrq);
          auto& isa_nic = m.add_device<Ne2000Isa>(name, mac, iobase, IrqLine{m_wiring->pic, irq});
          isa_nic.map_into(m.ports());
          nic = &isa_nic;
        }
        hub.attach(*nic, name);
        break;
      }
      case NetOption::Kind::socket: {
        const std::string name = client_name(n, "socket");
        if (n.socket_mode == NetOption::SocketMode::mcast) {
          auto& b = m.add_device<McastBackend>(name, m, McastBackend::Config{n.host, n.port, n.localaddr});
          if (!b.error().empty()) throw BadInput(b.error());
          hub.attach(b, name);
        } else {
          SocketBackend::Config c;
          c.mode = n.socket_mode == NetOption::SocketMode::listen ? SocketBackend::Mode::listen
                                                                  : SocketBackend::Mode::connect;
          c.host = n.host;
          c.port = n.port;
          auto& b = m.add_device<SocketBackend>(name, m, c);
          if (!b.error().empty()) throw BadInput(b.error());
          hub.attach(b, name);
        }
        break;
      }
      case NetOption::Kind::dump: {
        const std::string name = client_name(n, "dump");
        auto& d = m.add_device<PcapDump>(name, m, n.file, n.snap_length);
        hub.attach(d, name);
        break;
      }
      case NetOption::Kind::user: {
        const UserNetOption& u = n.user;
        const std::string name = client_name(n, "user");
        UserNet::Config c;
        c.network = u.network;
        c.netmask = u.netmask;
        c.host = u.host;
        c.dhcp_start = u.dhcp_start;
        c.dns = u.dns;
        c.hostname = u.hostname;
        c.domainname = u.domainname;
        c.dns_search = u.dns_search;
        c.restrict = u.restrict;
        c.tftp_root = u.tftp_root;
        c.bootfile = u.bootfile;
        c.tftp_server_name = u.tftp_server_name;
        c.resolver = u.resolver;
        for (const PortForwardOption& f : u.forwards)
          c.forwards.push_back(UserNetForward{f.udp, f.host_address.empty() ? "127.0.0.1" : f.host_address,
                                              f.host_port, f.guest_address, f.guest_port});
        auto& gateway = m.add_device<UserNet>(name, m, c);
        hub.attach(gateway, name);
        if (const std::string error = gateway.start_forwards(); !error.empty())
          throw BadInput("-net user,hostfwd (or -redir): " + error);
        break;
      }
    }
  }
}

std::vector<const Hub*> PcBoard::hubs() const {
  std::vector<const Hub*> out;
  for (const auto& [vlan, hub] : m_wiring->hubs) out.push_back(hub);
  return out;
}

void PcBoard::open_monitor() {
  const MonitorOption& mo = m_options.monitor;
  if (mo.kind == MonitorOption::Kind::none) return;
  ConsoleSpec spec;
  spec.name = "monitor";
  if (mo.kind == MonitorOption::Kind::stdio) {
    spec.kind = ConsoleSpec::Kind::stdio;
    spec.wants_input = true;
  } else {
    spec.kind = ConsoleSpec::Kind::unix_server;
    spec.path = mo.path;
    spec.wants_input = true;
    spec.wait_for_client = mo.wait;
  }
  const ChannelId channel = m_host.open_console(spec);
  Machine& m = *m_machine;
  Monitor& mon = m.add_device<Monitor>(m, m_host, channel, [this] { return hubs(); });
  m.set_input_handler(channel, [&mon](std::span<const u8> bytes) { mon.receive(bytes); });
  m_monitor = &mon;
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
  m_linux = looks_like_bzimage(m_kernel);
  if (!m_options.initrd.empty()) {
    if (!m_linux)
      throw BadInput("-initrd " + m_options.initrd + ": only a Linux bzImage kernel takes an initrd");
    HostFile initrd = m_host.read_file(m_options.initrd);
    if (!initrd.ok) throw BadInput("-initrd " + m_options.initrd + ": " + initrd.error);
    m_initrd = std::move(initrd.bytes);
  }
  const std::string error = load_image();
  if (!error.empty()) throw BadInput("-kernel " + m_options.kernel + ": " + error);
}

std::string PcBoard::load_image() {
  if (m_linux) {
    const LinuxLoadResult r = load_linux(m_machine->memory(), m_kernel, m_initrd, m_options.append);
    if (!r.ok) return r.error;
    m_linux_boot = r;
    return {};
  }
  const MultibootLoadResult r =
      load_multiboot(m_machine->memory(), m_kernel, m_options.append, m_options.kernel);
  if (!r.ok) return r.error;
  m_entry = r.entry;
  m_mbi = r.mbi_address;
  return {};
}

void PcBoard::boot_cpu() {
  Cpu& cpu = m_machine->cpu();
  if (m_linux) {
    enter_linux_32bit(cpu, m_linux_boot);
    return;
  }
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
  if (!load_image().empty()) return false;
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
