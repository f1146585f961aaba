#include "harness/options.h"

#include <charconv>
#include <cstdio>

namespace reel {

namespace {

[[noreturn]] void fail(std::string_view option, std::string_view message) {
  throw OptionError(std::string(option) + ": " + std::string(message));
}

bool parse_u64(std::string_view text, u64& out) {
  if (text.empty()) return false;
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc() && ptr == text.data() + text.size();
}

u64 number(std::string_view text, std::string_view option, u64 max) {
  u64 v = 0;
  if (!parse_u64(text, v)) fail(option, "expected a number, got '" + std::string(text) + "'");
  if (v > max)
    fail(option, "value " + std::string(text) + " is out of range (max " + std::to_string(max) + ")");
  return v;
}

bool on_off(std::string_view value, std::string_view option) {
  if (value == "on" || value == "yes" || value == "true") return true;
  if (value == "off" || value == "no" || value == "false") return false;
  fail(option, "expected on or off, got '" + std::string(value) + "'");
}

SerialOption parse_serial(std::string_view text) {
  SerialOption s;
  if (text == "stdio" || text == "mon:stdio") {
    s.kind = SerialOption::Kind::stdio;
  } else if (text == "none" || text == "null") {
    s.kind = SerialOption::Kind::none;
  } else if (text.substr(0, 5) == "file:" && text.size() > 5) {
    s.kind = SerialOption::Kind::file;
    s.path = std::string(text.substr(5));
  } else {
    fail("-serial", "expected stdio, file:PATH or none, got '" + std::string(text) + "'");
  }
  return s;
}

void parse_device(std::string_view text, MachineOptions& opts) {
  const SubOptions subs = parse_suboptions(text);
  const std::string& driver = subs.empty() ? std::string() : subs[0].second;
  if (subs.empty() || !subs[0].first.empty()) fail("-device", "expected a device name first");
  if (driver == "help") {
    throw HelpRequested("Available devices: isa-debug-exit");
  }
  if (driver != "isa-debug-exit") {
    fail("-device", "unknown device '" + driver + "' (available: isa-debug-exit)");
  }
  DebugExitOption d;
  for (size_t i = 1; i < subs.size(); ++i) {
    const auto& [key, value] = subs[i];
    if (key == "iobase") {
      d.iobase = static_cast<u16>(number(value, "-device isa-debug-exit,iobase", 0xffff));
    } else if (key == "iosize") {
      d.iosize = static_cast<u16>(number(value, "-device isa-debug-exit,iosize", 4));
      if (d.iosize == 0 || (d.iosize & (d.iosize - 1)))
        fail("-device isa-debug-exit,iosize", "expected 1, 2 or 4");
    } else {
      fail("-device isa-debug-exit", "unknown property '" + key + "' (expected iobase or iosize)");
    }
  }
  if (u32{d.iobase} + d.iosize > 0x10000) fail("-device isa-debug-exit", "ports beyond 0xffff");
  opts.debug_exit = d;
}

void parse_icount(std::string_view text, MachineOptions& opts) {
  for (const auto& [key, value] : parse_suboptions(text)) {
    if (key.empty() || key == "shift") {
      if (value == "auto") fail("-icount", "shift=auto is not deterministic; give a number 0..10");
      opts.icount_shift = static_cast<unsigned>(number(value, "-icount shift", 10));
    } else if (key == "sleep") {
      opts.icount_sleep = on_off(value, "-icount sleep");
    } else if (key == "align") {
      on_off(value, "-icount align");  // accepted for QEMU compatibility; reel never drifts
    } else {
      fail("-icount", "unknown property '" + key + "' (expected shift or sleep)");
    }
  }
}

void parse_rtc(std::string_view text, MachineOptions& opts) {
  for (const auto& [key, value] : parse_suboptions(text)) {
    if (key == "base") {
      if (value == "utc" || value == "localtime") {
        opts.rtc_base_ns.reset();
      } else {
        opts.rtc_base_ns = parse_utc_date(value, "-rtc base");
      }
    } else if (key == "clock" || key == "driftfix") {
      // QEMU spellings that have no meaning here: the RTC always follows
      // virtual time.
    } else {
      fail("-rtc", "unknown property '" + key + "' (expected base)");
    }
  }
}

void parse_debug_items(std::string_view text, MachineOptions& opts) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(start, comma - start);
    if (item == "in_asm") {
      opts.log_in_asm = true;
    } else if (item == "help") {
      throw HelpRequested("Log items: in_asm");
    } else {
      fail("-d", "unknown log item '" + std::string(item) + "' (available: in_asm)");
    }
    start = comma + 1;
  }
}

u16 port_number(std::string_view text, std::string_view option) {
  u64 v = 0;
  if (!parse_u64(text, v) || v == 0 || v > 0xffff) {
    fail(option, "expected a port number 1..65535, got '" + std::string(text) + "'");
  }
  return static_cast<u16>(v);
}

std::string ipv4_text(u32 a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

// "[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport"
PortForwardOption parse_hostfwd(std::string_view text, std::string_view option) {
  PortForwardOption f;
  const std::string expected =
      "expected [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport, got '" + std::string(text) + "'";
  const size_t c1 = text.find(':');
  if (c1 == std::string_view::npos) fail(option, expected);
  const std::string_view proto = text.substr(0, c1);
  if (proto == "udp") {
    f.udp = true;
  } else if (!proto.empty() && proto != "tcp") {
    fail(option, expected);
  }
  const std::string_view rest = text.substr(c1 + 1);
  const size_t dash = rest.find('-');
  if (dash == std::string_view::npos) fail(option, expected);
  const std::string_view host = rest.substr(0, dash), guest = rest.substr(dash + 1);
  const size_t hc = host.rfind(':'), gc = guest.rfind(':');
  if (hc == std::string_view::npos || gc == std::string_view::npos) fail(option, expected);
  f.host_address = std::string(host.substr(0, hc));
  if (!f.host_address.empty()) (void)parse_ipv4(f.host_address, option);
  f.host_port = port_number(host.substr(hc + 1), option);
  if (gc > 0) f.guest_address = parse_ipv4(guest.substr(0, gc), option);
  f.guest_port = port_number(guest.substr(gc + 1), option);
  return f;
}

// Legacy "-redir [tcp|udp]:hostport:[guestaddr]:guestport".
PortForwardOption parse_redir(std::string_view text) {
  const std::string_view option = "-redir";
  const std::string expected =
      "expected [tcp|udp]:hostport:[guestaddr]:guestport, got '" + std::string(text) + "'";
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t c = text.find(':', start);
    parts.push_back(text.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  PortForwardOption f;
  if (parts.size() == 4) {
    if (parts[0] == "udp") {
      f.udp = true;
    } else if (parts[0] != "tcp") {
      fail(option, expected);
    }
    parts.erase(parts.begin());
  }
  if (parts.size() != 3) fail(option, expected);
  f.host_port = port_number(parts[0], option);
  if (!parts[1].empty()) f.guest_address = parse_ipv4(parts[1], option);
  f.guest_port = port_number(parts[2], option);
  return f;
}

void parse_host_port(std::string_view text, std::string_view option, bool host_optional, std::string& host,
                     u16& port);

void parse_user_property(const std::string& key, const std::string& value, UserNetOption& u) {
  const std::string opt = "-net user," + key;
  if (key == "net") {
    const size_t slash = value.find('/');
    u.network = parse_ipv4(value.substr(0, slash), opt);
    if (slash != std::string::npos) {
      const std::string mask = value.substr(slash + 1);
      if (mask.find('.') != std::string::npos) {
        u.netmask = parse_ipv4(mask, opt);
        if (u.netmask & (~u.netmask >> 1)) fail(opt, "the netmask " + mask + " is not contiguous");
      } else {
        const u64 bits = number(mask, opt, 30);
        if (bits < 8) fail(opt, "a prefix of at least 8 bits");
        u.netmask = ~u32{0} << (32 - bits);
      }
    }
    // Like QEMU: the other addresses follow the network unless given.
    u.host = (u.network & u.netmask) | 2;
    u.dns = (u.network & u.netmask) | 3;
    u.dhcp_start = (u.network & u.netmask) | 15;
  } else if (key == "host") {
    u.host = parse_ipv4(value, opt);
  } else if (key == "dhcpstart") {
    u.dhcp_start = parse_ipv4(value, opt);
  } else if (key == "dns") {
    u.dns = parse_ipv4(value, opt);
  } else if (key == "restrict") {
    if (value == "y" || value == "yes" || value == "on") {
      u.restrict = true;
    } else if (value == "n" || value == "no" || value == "off") {
      u.restrict = false;
    } else {
      fail(opt, "expected on or off, got '" + value + "'");
    }
  } else if (key == "hostname") {
    u.hostname = value;
  } else if (key == "domainname") {
    u.domainname = value;
  } else if (key == "dnssearch") {
    if (value.empty()) fail(opt, "expected a domain");
    u.dns_search.push_back(value);
  } else if (key == "tftp") {
    u.tftp_root = value;
  } else if (key == "bootfile") {
    u.bootfile = value;
  } else if (key == "tftp-server-name") {
    u.tftp_server_name = value;
  } else if (key == "hostfwd") {
    u.forwards.push_back(parse_hostfwd(value, opt));
  } else if (key == "resolver") {
    // reel's own: where queries to the dns= address go (default: the
    // host's /etc/resolv.conf), "A.B.C.D" or "A.B.C.D:PORT".
    std::string host = value;
    u16 port = 53;
    if (value.find(':') != std::string::npos) parse_host_port(value, opt, false, host, port);
    (void)parse_ipv4(host, opt);
    u.resolver = host + ":" + std::to_string(port);
  } else if (key == "ipv4") {
    if (!on_off(value, opt)) fail(opt, "reel's user-mode stack is IPv4; ipv4=off leaves it nothing to do");
  } else if (key == "ipv6") {
    if (on_off(value, opt)) fail(opt, "reel's user-mode stack has no IPv6 yet; use ipv6=off");
  } else if (key == "guestfwd" || key == "smb" || key == "ipv6-net" || key == "ipv6-host" ||
             key == "ipv6-dns" || key == "ipv6-prefix" || key == "ipv6-prefixlen" || key == "vhostname" ||
             key == "vnameserver") {
    fail(opt, "not supported by reel's user-mode stack");
  } else {
    fail("-net user", "unknown property '" + key + "'");
  }
}

void check_user_addresses(const UserNetOption& u) {
  const auto inside = [&](u32 a, const char* what) {
    if ((a & u.netmask) != (u.network & u.netmask)) {
      fail(std::string("-net user,") + what,
           ipv4_text(a) + " is outside the network " + ipv4_text(u.network));
    }
  };
  inside(u.host, "host");
  inside(u.dns, "dns");
  inside(u.dhcp_start, "dhcpstart");
  if (u.host == u.dns) fail("-net user,dns", "the DNS address must differ from the host address");
  for (const auto& f : u.forwards) {
    if (f.guest_address) inside(f.guest_address, "hostfwd");
  }
}

// "host:port" (host may be empty when `host_optional`).
void parse_host_port(std::string_view text, std::string_view option, bool host_optional, std::string& host,
                     u16& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) fail(option, "expected HOST:PORT, got '" + std::string(text) + "'");
  host = std::string(text.substr(0, colon));
  if (host.empty() && !host_optional) fail(option, "expected HOST:PORT, the host is missing");
  const std::string_view p = text.substr(colon + 1);
  u64 v = 0;
  if (!parse_u64(p, v) || v == 0 || v > 0xffff) {
    fail(option, "expected a port number 1..65535, got '" + std::string(p) + "'");
  }
  port = static_cast<u16>(v);
}

NetOption parse_net(std::string_view text) {
  const SubOptions subs = parse_suboptions(text);
  if (subs.empty() || !subs[0].first.empty()) fail("-net", "expected nic, user, socket, dump or none first");
  const std::string& type = subs[0].second;
  NetOption n;
  const std::string opt = "-net " + type;
  auto common = [&](const std::string& key, const std::string& value) {
    if (key == "vlan") {
      n.vlan = static_cast<unsigned>(number(value, opt + ",vlan", 4095));
      return true;
    }
    if (key == "name" || key == "id") {
      if (value.empty()) fail(opt + ",name", "expected a name");
      n.name = value;
      return true;
    }
    return false;
  };
  if (type == "nic") {
    n.kind = NetOption::Kind::nic;
    for (size_t i = 1; i < subs.size(); ++i) {
      const auto& [key, value] = subs[i];
      if (common(key, value)) continue;
      if (key == "model") {
        if (value == "help" || value == "?") {
          std::string list = "Available NIC models:";
          for (const auto& m : nic_models()) list += "\n" + m;
          throw HelpRequested(list);
        }
        bool known = false;
        for (const auto& m : nic_models()) known = known || m == value;
        if (!known) {
          std::string list;
          for (const auto& m : nic_models()) list += (list.empty() ? "" : ", ") + m;
          fail("-net nic,model", "unknown NIC model '" + value + "' (available: " + list + ")");
        }
        n.model = value;
      } else if (key == "macaddr") {
        n.macaddr = parse_mac_address(value, "-net nic,macaddr");
      } else if (key == "iobase") {
        n.iobase = static_cast<u16>(number(value, "-net nic,iobase", 0xffe0));
      } else if (key == "irq") {
        const u64 irq = number(value, "-net nic,irq", 15);
        if (irq == 0 || irq == 1 || irq == 2 || irq == 8 || irq == 13)
          fail("-net nic,irq",
               "IRQ " + std::to_string(irq) + " belongs to the PC itself; use 3-7, 9-12, 14 or 15");
        n.irq = static_cast<u8>(irq);
      } else {
        fail("-net nic", "unknown property '" + key + "' (expected model, macaddr, vlan, name, iobase, irq)");
      }
    }
    return n;
  }
  if (type == "user") {
    n.kind = NetOption::Kind::user;
    for (size_t i = 1; i < subs.size(); ++i) {
      if (!common(subs[i].first, subs[i].second)) parse_user_property(subs[i].first, subs[i].second, n.user);
    }
    check_user_addresses(n.user);
    return n;
  }
  if (type == "socket") {
    n.kind = NetOption::Kind::socket;
    int modes = 0;
    for (size_t i = 1; i < subs.size(); ++i) {
      const auto& [key, value] = subs[i];
      if (common(key, value)) continue;
      if (key == "listen") {
        n.socket_mode = NetOption::SocketMode::listen;
        parse_host_port(value, "-net socket,listen", true, n.host, n.port);
        ++modes;
      } else if (key == "connect") {
        n.socket_mode = NetOption::SocketMode::connect;
        parse_host_port(value, "-net socket,connect", false, n.host, n.port);
        ++modes;
      } else if (key == "mcast") {
        n.socket_mode = NetOption::SocketMode::mcast;
        parse_host_port(value, "-net socket,mcast", false, n.host, n.port);
        ++modes;
      } else if (key == "localaddr") {
        if (value.empty()) fail("-net socket,localaddr", "expected an address");
        n.localaddr = value;
      } else if (key == "fd") {
        fail("-net socket,fd", "inherited descriptors cannot be replayed; use listen=, connect= or mcast=");
      } else if (key == "udp") {
        fail("-net socket,udp", "not supported yet; use mcast= or listen=/connect=");
      } else {
        fail("-net socket",
             "unknown property '" + key + "' (expected listen, connect, mcast, localaddr, vlan)");
      }
    }
    if (modes != 1) fail("-net socket", "expected exactly one of listen=, connect= or mcast=");
    if (!n.localaddr.empty() && n.socket_mode != NetOption::SocketMode::mcast)
      fail("-net socket,localaddr", "only goes with mcast=");
    return n;
  }
  if (type == "dump") {
    n.kind = NetOption::Kind::dump;
    for (size_t i = 1; i < subs.size(); ++i) {
      const auto& [key, value] = subs[i];
      if (common(key, value)) continue;
      if (key == "file") {
        if (value.empty()) fail("-net dump,file", "expected a file name");
        n.file = value;
      } else if (key == "len") {
        // A bare number is bytes here (QEMU's len= is a byte count).
        u64 v = 0;
        if (!parse_u64(value, v)) v = parse_size(value, "-net dump,len");
        if (v > 0xffffffffu) fail("-net dump,len", "too large");
        n.snap_length = static_cast<u32>(v);
        if (n.snap_length == 0) fail("-net dump,len", "must be at least 1");
      } else {
        fail("-net dump", "unknown property '" + key + "' (expected file, len, vlan)");
      }
    }
    // QEMU's default file name.
    if (n.file.empty()) n.file = "qemu-vlan" + std::to_string(n.vlan) + ".pcap";
    return n;
  }
  fail("-net", "unknown type '" + type + "' (expected nic, user, socket, dump or none)");
}

MonitorOption parse_monitor(std::string_view text) {
  MonitorOption m;
  if (text == "stdio") {
    m.kind = MonitorOption::Kind::stdio;
    return m;
  }
  if (text == "none" || text == "null") return m;
  if (text.substr(0, 5) == "unix:") {
    const SubOptions subs = parse_suboptions(text.substr(5));
    if (subs.empty() || !subs[0].first.empty() || subs[0].second.empty())
      fail("-monitor unix", "expected unix:PATH,server");
    m.kind = MonitorOption::Kind::unix_server;
    m.path = subs[0].second;
    bool server = false;
    for (size_t i = 1; i < subs.size(); ++i) {
      const auto& [key, value] = subs[i];
      if ((key.empty() && value == "server") || key == "server") {
        server = key.empty() || on_off(value, "-monitor unix,server");
      } else if ((key.empty() && value == "nowait") || key == "wait") {
        m.wait = key.empty() ? false : on_off(value, "-monitor unix,wait");
      } else {
        fail("-monitor unix",
             "unknown property '" + (key.empty() ? value : key) + "' (expected server, nowait)");
      }
    }
    if (!server) fail("-monitor unix", "reel only listens: add ,server");
    return m;
  }
  fail("-monitor", "expected stdio, unix:PATH,server or none, got '" + std::string(text) + "'");
}

}  // namespace

PortForwardOption parse_port_forward(std::string_view text, std::string_view option) {
  return parse_hostfwd(text, option);
}

u32 parse_ipv4(std::string_view text, std::string_view option) {
  u32 a = 0;
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (pos >= text.size() || text[pos] != '.')
        fail(option, "expected an IPv4 address, got '" + std::string(text) + "'");
      ++pos;
    }
    unsigned v = 0;
    const char* begin = text.data() + pos;
    auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), v);
    if (ec != std::errc() || ptr == begin || v > 255 || ptr - begin > 3) {
      fail(option, "expected an IPv4 address, got '" + std::string(text) + "'");
    }
    a = a << 8 | v;
    pos += static_cast<size_t>(ptr - begin);
  }
  if (pos != text.size()) fail(option, "expected an IPv4 address, got '" + std::string(text) + "'");
  return a;
}

const std::vector<std::string>& nic_models() {
  static const std::vector<std::string> models = {"ne2k_pci", "ne2k_isa"};
  return models;
}

std::array<u8, 6> parse_mac_address(std::string_view text, std::string_view option) {
  std::array<u8, 6> mac{};
  size_t pos = 0;
  const auto bad = [&] {
    fail(option, "expected a MAC address like 52:54:00:12:34:56, got '" + std::string(text) + "'");
  };
  for (int i = 0; i < 6; ++i) {
    if (i > 0) {
      if (pos >= text.size() || (text[pos] != ':' && text[pos] != '-')) bad();
      ++pos;
    }
    u64 v = 0;
    const std::string_view part = text.substr(pos, 2);
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v, 16);
    if (ec != std::errc() || ptr != part.data() + 2) bad();
    mac[static_cast<size_t>(i)] = static_cast<u8>(v);
    pos += 2;
  }
  if (pos != text.size()) bad();
  if (mac[0] & 1) fail(option, std::string(text) + " is a multicast address; a NIC needs a unicast one");
  return mac;
}

SubOptions parse_suboptions(std::string_view text) {
  SubOptions out;
  std::string current;
  auto flush = [&] {
    const size_t eq = current.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(std::string(), current);
    } else {
      out.emplace_back(current.substr(0, eq), current.substr(eq + 1));
    }
    current.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        current.push_back(',');
        ++i;
        continue;
      }
      flush();
    } else {
      current.push_back(text[i]);
    }
  }
  flush();
  return out;
}

u64 parse_size(std::string_view text, std::string_view option) {
  if (text.empty()) fail(option, "expected a size such as 128M");
  u64 scale = u64{1} << 20;
  const char suffix = text.back();
  switch (suffix) {
    case 'k':
    case 'K':
      scale = u64{1} << 10;
      text.remove_suffix(1);
      break;
    case 'm':
    case 'M':
      scale = u64{1} << 20;
      text.remove_suffix(1);
      break;
    case 'g':
    case 'G':
      scale = u64{1} << 30;
      text.remove_suffix(1);
      break;
    case 'b':
    case 'B':
      scale = 1;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  u64 v = 0;
  if (!parse_u64(text, v)) fail(option, "expected a size such as 128M, got '" + std::string(text) + "'");
  if (v > (u64{1} << 40) / scale) fail(option, "size too large");
  return v * scale;
}

i64 parse_utc_date(std::string_view text, std::string_view option) {
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail = 0;
  const std::string str(text);
  const int n = std::sscanf(str.c_str(), "%4u-%2u-%2uT%2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &s, &tail);
  if (!(n == 3 || n == 6) || y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
      mi > 59 || s > 59) {
    fail(option, "expected YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD, got '" + str + "'");
  }
  // Days from the civil date (proleptic Gregorian), integer only.
  const int yy = static_cast<int>(y) - (mo <= 2 ? 1 : 0);
  const int era = yy / 400;
  const unsigned yoe = static_cast<unsigned>(yy - era * 400);
  const unsigned doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const i64 days = i64{era} * 146097 + doe - 719468;
  return ((days * 86400) + h * 3600 + mi * 60 + s) * 1000000000LL;
}

GdbOption parse_gdb_address(std::string_view text, std::string_view option) {
  // QEMU's chardev spelling: tcp:[HOST]:PORT. Only TCP is offered.
  const std::string what(option);
  if (!text.starts_with("tcp:")) fail(what, "expected tcp:[HOST]:PORT, got '" + std::string(text) + "'");
  const std::string_view rest = text.substr(4);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos)
    fail(what, "expected tcp:[HOST]:PORT, got '" + std::string(text) + "'");
  GdbOption g;
  const std::string_view host = rest.substr(0, colon);
  if (!host.empty()) g.host = std::string(host);
  const std::string_view port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)
    fail(what, "port must be a number 0..65535, got '" + std::string(port) + "'");
  const unsigned long p = std::stoul(std::string(port));
  if (p > 65535) fail(what, "port must be a number 0..65535, got '" + std::string(port) + "'");
  g.port = static_cast<u16>(p);
  if (g.host.find_first_of(",=") != std::string::npos) fail(what, "sub-options are not supported");
  return g;
}

MachineOptions parse_machine_options(const std::vector<std::string>& args) {
  MachineOptions opts;
  bool serial_given = false;
  bool net_none = false;
  std::vector<PortForwardOption> redirs;
  std::optional<std::string> legacy_tftp, legacy_bootp;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string opt = args[i];
    if (opt.size() > 2 && opt[0] == '-' && opt[1] == '-') opt.erase(0, 1);  // --kernel == -kernel
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) fail(opt, "missing argument");
      return args[++i];
    };
    if (opt == "-kernel") {
      opts.kernel = value();
    } else if (opt == "-append") {
      opts.append = value();
    } else if (opt == "-initrd") {
      opts.initrd = value();
    } else if (opt == "-m") {
      std::string v = value();
      for (const auto& [key, val] : parse_suboptions(v)) {
        if (key.empty() || key == "size") {
          const u64 bytes = parse_size(val, "-m");
          if (bytes < (u64{2} << 20) || bytes > (u64{3} << 30))
            fail("-m", "RAM size must be between 2M and 3G");
          opts.ram_bytes = static_cast<u32>(bytes);
        } else {
          fail("-m", "unknown property '" + key + "' (expected size)");
        }
      }
    } else if (opt == "-serial") {
      if (!serial_given) opts.serials.clear();
      serial_given = true;
      if (opts.serials.size() >= 4) fail("-serial", "at most 4 serial ports");
      opts.serials.push_back(parse_serial(value()));
    } else if (opt == "-nographic") {
      // QEMU routes serial0 to stdio; so does reel by default.
    } else if (opt == "-display") {
      const std::string v = value();
      if (v != "none") fail("-display", "reel has no display; only 'none' is accepted");
    } else if (opt == "-device") {
      parse_device(value(), opts);
    } else if (opt == "-icount") {
      parse_icount(value(), opts);
    } else if (opt == "-d") {
      parse_debug_items(value(), opts);
    } else if (opt == "-D") {
      opts.log_file = value();
    } else if (opt == "-no-reboot") {
      opts.no_reboot = true;
    } else if (opt == "-M" || opt == "-machine") {
      const SubOptions subs = parse_suboptions(value());
      for (const auto& [key, val] : subs) {
        if (key.empty() || key == "type") {
          if (val == "help")
            throw HelpRequested(
                "Supported machines are:\npc      Standard PC (default)\nisapc   ISA-only PC");
          if (val != "pc" && val != "isapc")
            fail("-M", "unknown machine '" + val + "' (supported: pc, isapc)");
          opts.machine = val;
        } else {
          fail("-M", "unknown property '" + key + "'");
        }
      }
    } else if (opt == "-rtc") {
      parse_rtc(value(), opts);
    } else if (opt == "-seed") {
      opts.seed = number(value(), "-seed", ~u64{0});
    } else if (opt == "-checkpoint-interval") {
      opts.checkpoint_interval = number(value(), "-checkpoint-interval", u64{1} << 40);
      if (opts.checkpoint_interval == 0) fail("-checkpoint-interval", "must be at least 1");
    } else if (opt == "-cpu") {
      const std::string v = value();
      if (v != "486" && v != "qemu32" && v != "host") fail("-cpu", "reel emulates a 486; expected 486");
    } else if (opt == "-net") {
      const std::string v = value();
      if (v == "none") {
        opts.nets.clear();
        net_none = true;
      } else {
        opts.nets.push_back(parse_net(v));
      }
    } else if (opt == "-monitor") {
      opts.monitor = parse_monitor(value());
    } else if (opt == "-netdev" || opt == "-nic") {
      fail(opt, "not supported yet; use QEMU's classic -net nic / -net socket spelling");
    } else if (opt == "-redir") {
      redirs.push_back(parse_redir(value()));
    } else if (opt == "-tftp") {
      legacy_tftp = value();
    } else if (opt == "-bootp") {
      legacy_bootp = value();
    } else if (opt == "-gdb") {
      const std::string v = value();
      if (v == "none") {
        opts.gdb.reset();
      } else {
        opts.gdb = parse_gdb_address(v, "-gdb");
      }
    } else if (opt == "-s") {
      opts.gdb = GdbOption{};
    } else if (opt == "-S") {
      opts.wait_for_gdb = true;
    } else if (opt == "-bios") {
      fail(opt, "not supported yet in this build of reel");
    } else if (!opt.empty() && opt[0] == '-') {
      fail(opt, "unknown option (see 'reel help')");
    } else {
      fail(opt, "unexpected argument (options start with '-')");
    }
  }
  if (!serial_given) opts.serials.push_back(SerialOption{});
  if (opts.monitor.kind == MonitorOption::Kind::stdio) {
    for (size_t i = 0; i < opts.serials.size(); ++i) {
      if (opts.serials[i].kind == SerialOption::Kind::stdio) {
        fail("-monitor stdio",
             "stdio is taken by serial" + std::to_string(i) +
                 (serial_given ? "" : " (the default -serial stdio)") +
                 "; add -serial file:PATH or -serial none, or use -monitor unix:PATH,server");
      }
    }
  }
  if (opts.wait_for_gdb && !opts.gdb)
    fail("-S", "waits for gdb: add -gdb tcp::PORT or -s (reel's monitor has no 'cont')");
  if (net_none && !opts.nets.empty()) fail("-net none", "cannot be combined with other -net options");
  // QEMU's default network: one NIC of the machine's default model on a
  // user-mode network (`-net none` for none).
  if (!net_none && opts.nets.empty()) {
    NetOption nic;
    nic.kind = NetOption::Kind::nic;
    NetOption user;
    user.kind = NetOption::Kind::user;
    opts.nets = {nic, user};
  }
  // The legacy options apply to the first user-mode stack, as in QEMU.
  if (!redirs.empty() || legacy_tftp || legacy_bootp) {
    NetOption* user = nullptr;
    for (NetOption& n : opts.nets) {
      if (n.kind == NetOption::Kind::user) {
        user = &n;
        break;
      }
    }
    const char* which = !redirs.empty() ? "-redir" : legacy_tftp ? "-tftp" : "-bootp";
    if (!user) fail(which, "needs a user-mode network (-net nic -net user)");
    for (const auto& r : redirs) user->user.forwards.push_back(r);
    if (legacy_tftp) user->user.tftp_root = *legacy_tftp;
    if (legacy_bootp) user->user.bootfile = *legacy_bootp;
    check_user_addresses(user->user);
  }
  for (const NetOption& n : opts.nets) {
    if (n.kind == NetOption::Kind::nic && opts.machine == "isapc" && n.model == "ne2k_pci") {
      fail("-net nic,model=ne2k_pci", "-M isapc has no PCI bus; use model=ne2k_isa");
    }
    if (n.kind == NetOption::Kind::nic && (n.iobase || n.irq) &&
        (n.model == "ne2k_pci" || (n.model.empty() && opts.machine != "isapc"))) {
      fail("-net nic", "iobase= and irq= only apply to ISA models (model=ne2k_isa)");
    }
  }
  if (opts.kernel.empty()) throw OptionError("-kernel: a guest kernel is required (reel has no BIOS yet)");
  return opts;
}

std::string machine_options_help() {
  return R"(Machine options (QEMU spellings):
  -kernel FILE            multiboot ELF kernel to boot
  -append STRING          kernel command line
  -initrd FILE            initial ramdisk for a Linux bzImage kernel
  -m SIZE                 RAM size (default 128M)
  -M pc|isapc             machine type (default pc)
  -serial stdio|file:PATH|none   next serial port's backend (default: serial0 on stdio)
  -device isa-debug-exit[,iobase=0xf4][,iosize=0x04]   guest-controlled exit
  -icount [shift=]N[,sleep=on|off]  2^N ns of virtual time per instruction (default 0)
  -rtc base=utc|YYYY-MM-DDTHH:MM:SS  RTC start (default: host date, journaled)
  -no-reboot              exit instead of rebooting on triple fault
  -d in_asm [-D FILE]     log each decoded block, disassembled
  -net nic[,model=ne2k_pci|ne2k_isa][,macaddr=M][,vlan=N][,iobase=A,irq=I]
  -net socket,listen=[HOST]:PORT|connect=HOST:PORT|mcast=GROUP:PORT[,localaddr=A][,vlan=N]
  -net user[,net=A/M][,host=A][,dhcpstart=A][,dns=A][,restrict=on|off][,hostname=S][,domainname=S]
           [,dnssearch=D][,tftp=DIR][,bootfile=F][,tftp-server-name=S][,hostfwd=RULE][,vlan=N]
  -redir [tcp|udp]:hostport:[guestaddr]:guestport   -tftp DIR   -bootp FILE   (legacy spellings)
  -net dump[,vlan=N][,file=F][,len=BYTES]   pcap of a VLAN (stamped with virtual time)
  -net none               no network (the default is -net nic -net user)
  -monitor stdio|unix:PATH,server[,nowait]  QEMU-style monitor (info network, info registers, quit)
  -gdb tcp:[HOST]:PORT    gdb remote protocol server (HOST default 127.0.0.1; PORT 0: any free port)
  -s                      the same as -gdb tcp::1234
  -S                      wait for gdb before the first instruction
  -seed N                 PRNG seed (default: random in record, 0 in run)
  -checkpoint-interval N  instructions between state-hash checkpoints (record)
)";
}

}  // namespace reel
