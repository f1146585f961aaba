#include "harness/monitor.h"

#include <cinttypes>
#include <cstdio>

#include "core/machine.h"
#include "harness/options.h"
#include "netstack/hub.h"
#include "netstack/user_net.h"

namespace reel {

namespace {

constexpr const char* kPrompt = "(reel) ";

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return {};
  const size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

std::string hex32(u32 v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t a = s.find_first_not_of(" \t", i);
    if (a == std::string::npos) break;
    const size_t b = s.find_first_of(" \t", a);
    out.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
    i = b == std::string::npos ? s.size() : b;
  }
  return out;
}

}  // namespace

Monitor::Monitor(Machine& machine, HostIO& host, ChannelId channel,
                 std::function<std::vector<const Hub*>()> hubs)
    : Component("monitor"), m_machine(machine), m_host(host), m_channel(channel), m_hubs(std::move(hubs)) {
  // As QEMU's monitor greets when its character device opens.
  greet();
  write(kPrompt);
}

void Monitor::write(const std::string& text) {
  m_host.console_write(m_channel, {reinterpret_cast<const u8*>(text.data()), text.size()});
}

void Monitor::greet() {
  if (m_greeted) return;
  m_greeted = true;
  write(std::string("reel ") + REEL_VERSION_STRING + " monitor - type 'help' for more information\n");
}

void Monitor::receive(std::span<const u8> bytes) {
  for (const u8 b : bytes) {
    if (b == '\r') continue;
    if (b != '\n') {
      // A line longer than any command is cut, not grown without bound.
      if (m_line.size() < 4096) m_line.push_back(static_cast<char>(b));
      continue;
    }
    const std::string line = trim(m_line);
    m_line.clear();
    if (!line.empty()) {
      ++m_commands;
      write(execute(line));
    }
    if (line == "quit" || line == "q") return;
    write(kPrompt);
  }
}

std::string Monitor::execute(const std::string& line) {
  if (line == "quit" || line == "q") {
    m_machine.request_exit(RunEnd::Kind::shutdown, 0);
    return {};
  }
  if (line == "help" || line == "?") {
    return "info network    -- show the VLANs and what is attached to them\n"
           "info registers  -- show the CPU registers\n"
           "info usernet    -- show the user-mode networks' forwards and leases\n"
           "hostfwd_add [vlan_id name] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport\n"
           "                -- forward a host port to the guest (-net user)\n"
           "hostfwd_remove [vlan_id name] [tcp|udp]:[hostaddr]:hostport\n"
           "                -- remove a forward\n"
           "quit|q          -- end the run\n";
  }
  if (line == "info network") return info_network();
  if (line == "info registers") return info_registers();
  if (line == "info usernet") return info_usernet();
  if (line == "info" || line.rfind("info ", 0) == 0) return "info: available: network, registers, usernet\n";
  const auto w = words(line);
  if (!w.empty() && (w[0] == "hostfwd_add" || w[0] == "hostfwd_remove")) return hostfwd(w);
  return "unknown command: '" + line + "'\n";
}

std::string Monitor::info_network() const {
  std::string out;
  for (const Hub* hub : m_hubs()) {
    out += "VLAN " + std::to_string(hub->vlan()) + " devices:\n";
    for (const Hub::PortEntry& p : hub->ports()) {
      out += "  " + p.name + ": " + p.port->describe_port() + "\n";
      // A user-mode network's forwards belong to what the VLAN leads to.
      if (const auto* u = dynamic_cast<const UserNet*>(p.port)) {
        for (const std::string& f : u->forwards().describe()) out += "    hostfwd " + f + "\n";
      }
    }
  }
  return out;
}

std::vector<std::pair<unsigned, UserNet*>> Monitor::user_nets() const {
  std::vector<std::pair<unsigned, UserNet*>> out;
  for (const Hub* hub : m_hubs()) {
    for (const Hub::PortEntry& p : hub->ports()) {
      if (auto* u = dynamic_cast<UserNet*>(p.port)) out.emplace_back(hub->vlan(), u);
    }
  }
  return out;
}

std::string Monitor::info_usernet() const {
  std::string out;
  for (const auto& [vlan, net] : user_nets()) {
    out += "VLAN " + std::to_string(vlan) + " (" + net->name() + "):\n";
    for (const std::string& l : net->describe_state()) out += "  " + l + "\n";
  }
  return out;
}

std::string Monitor::hostfwd(const std::vector<std::string>& w) {
  const bool add = w[0] == "hostfwd_add";
  // QEMU's forms: "<cmd> RULE" (the first user network) or "<cmd> VLAN NAME RULE".
  if (w.size() != 2 && w.size() != 4) return w[0] + ": expected [vlan_id name] rule\n";
  UserNet* net = nullptr;
  for (const auto& [vlan, n] : user_nets()) {
    if (w.size() == 2 || (std::to_string(vlan) == w[1] && n->name() == w[2])) {
      net = n;
      break;
    }
  }
  if (!net)
    return w.size() == 2 ? w[0] + ": no user-mode network\n"
                         : w[0] + ": no user-mode network " + w[2] + " on VLAN " + w[1] + "\n";
  const std::string& rule = w.back();
  try {
    if (add) {
      const PortForwardOption f = parse_port_forward(rule, "hostfwd_add");
      const std::string error =
          net->add_forward(UserNetForward{f.udp, f.host_address.empty() ? "127.0.0.1" : f.host_address,
                                          f.host_port, f.guest_address, f.guest_port});
      return error.empty() ? std::string{} : error + "\n";
    }
    // "[tcp|udp]:[hostaddr]:hostport": reuse the forward parser with a dummy guest side.
    const PortForwardOption f = parse_port_forward(rule + "-:1", "hostfwd_remove");
    const std::string error = net->remove_forward(f.udp, f.host_address, f.host_port);
    return error.empty() ? std::string{} : error + "\n";
  } catch (const std::exception& e) {
    return std::string(e.what()) + "\n";
  }
}

std::string Monitor::info_registers() const {
  const CpuRegisters r = m_machine.cpu().registers();
  static const char* const kSeg[] = {"ES", "CS", "SS", "DS", "FS", "GS"};
  std::string out;
  out += "EAX=" + hex32(r.gpr[0]) + " EBX=" + hex32(r.gpr[3]) + " ECX=" + hex32(r.gpr[1]) +
         " EDX=" + hex32(r.gpr[2]) + "\n";
  out += "ESI=" + hex32(r.gpr[6]) + " EDI=" + hex32(r.gpr[7]) + " EBP=" + hex32(r.gpr[5]) +
         " ESP=" + hex32(r.gpr[4]) + "\n";
  std::string flags = "[";
  const char* names = "ODITSZ-A-P-C";  // bits 11..0, as QEMU shows a subset
  for (int bit = 11, i = 0; bit >= 0; --bit, ++i) {
    const char c = names[i];
    if (c == '-') continue;
    flags += (r.eflags >> bit) & 1 ? c : '-';
  }
  flags += "]";
  const unsigned cpl = (r.cr0 & 1) ? (r.seg[1].selector & 3) : 0;
  out += "EIP=" + hex32(r.eip) + " EFL=" + hex32(r.eflags) + " " + flags + " CPL=" + std::to_string(cpl) +
         " HLT=" + (m_machine.cpu().halted() ? "1" : "0") + "\n";
  for (int i = 0; i < 6; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%-3s=%04x %08x %08x %08x\n", kSeg[i], r.seg[i].selector, r.seg[i].base,
                  r.seg[i].limit, u32{r.seg[i].attrs} << 8);
    out += buf;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "LDT=%04x %08x %08x %08x\nTR =%04x %08x %08x %08x\n", r.ldtr.selector,
                r.ldtr.base, r.ldtr.limit, u32{r.ldtr.attrs} << 8, r.tr.selector, r.tr.base, r.tr.limit,
                u32{r.tr.attrs} << 8);
  out += buf;
  std::snprintf(buf, sizeof buf, "GDT=     %08x %08x\nIDT=     %08x %08x\n", r.gdtr.base, r.gdtr.limit,
                r.idtr.base, r.idtr.limit);
  out += buf;
  out +=
      "CR0=" + hex32(r.cr0) + " CR2=" + hex32(r.cr2) + " CR3=" + hex32(r.cr3) + " CR4=" + hex32(r.cr4) + "\n";
  return out;
}

}  // namespace reel
