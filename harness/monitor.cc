#include "harness/monitor.h"

#include <cinttypes>
#include <cstdio>

#include "core/machine.h"
#include "netstack/hub.h"

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
           "quit|q          -- end the run\n";
  }
  if (line == "info network") return info_network();
  if (line == "info registers") return info_registers();
  if (line == "info" || line.rfind("info ", 0) == 0) return "info: available: network, registers\n";
  return "unknown command: '" + line + "'\n";
}

std::string Monitor::info_network() const {
  std::string out;
  for (const Hub* hub : m_hubs()) {
    out += "VLAN " + std::to_string(hub->vlan()) + " devices:\n";
    for (const Hub::PortEntry& p : hub->ports()) out += "  " + p.name + ": " + p.port->describe_port() + "\n";
  }
  return out;
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
