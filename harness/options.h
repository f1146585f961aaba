#pragma once

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/types.h"

namespace reel {

// A bad option: what() is one line naming the option and what was expected.
class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A `help` value (`-net nic,model=help`, `-M help`): what() is the answer,
// printed on stdout, and reel exits with 0 as QEMU does.
class HelpRequested : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// QEMU's "key=value,key=value" sub-option syntax; ",," is a literal comma.
// The first element may be a bare value ("file:x" in -serial, "isa-debug-exit"
// in -device), returned with an empty key.
using SubOptions = std::vector<std::pair<std::string, std::string>>;
SubOptions parse_suboptions(std::string_view text);

struct SerialOption {
  enum class Kind : u8 { none, stdio, file };
  Kind kind = Kind::stdio;
  std::string path;
};

struct DebugExitOption {
  u16 iobase = 0x501;  // QEMU's defaults
  u16 iosize = 2;
};

// hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport, or the
// legacy -redir [tcp|udp]:hostport:[guestaddr]:guestport.
struct PortForwardOption {
  bool udp = false;
  std::string host_address;  // empty: 127.0.0.1 (reel binds loopback unless told)
  u16 host_port = 0;
  u32 guest_address = 0;  // 0: the first DHCP address
  u16 guest_port = 0;
};

// -net user's properties, with QEMU's defaults. Addresses in host order.
struct UserNetOption {
  u32 network = 0x0a000200;  // net=10.0.2.0/24
  u32 netmask = 0xffffff00;
  u32 host = 0x0a000202;                    // host=
  u32 dhcp_start = 0x0a00020f;              // dhcpstart=
  u32 dns = 0x0a000203;                     // dns=
  bool restrict = false;                    // restrict=on|off
  std::string hostname;                     // hostname=
  std::string domainname;                   // domainname=
  std::vector<std::string> dns_search;      // dnssearch= (repeatable)
  std::string tftp_root;                    // tftp= (or -tftp)
  std::string bootfile;                     // bootfile= (or -bootp)
  std::string tftp_server_name;             // tftp-server-name=
  std::vector<PortForwardOption> forwards;  // hostfwd= (repeatable), -redir
  std::string resolver;                     // resolver=A.B.C.D[:PORT] (reel's own), "ip:port"
};

// hostfwd's "[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport" (also the
// monitor's hostfwd_add); throws OptionError naming `option`.
PortForwardOption parse_port_forward(std::string_view text, std::string_view option);

// "10.0.2.15" -> 0x0a00020f; throws OptionError naming `option`.
u32 parse_ipv4(std::string_view text, std::string_view option);

// One -net option (QEMU's classic VLAN syntax).
struct NetOption {
  enum class Kind : u8 { nic, user, socket, dump };
  enum class SocketMode : u8 { listen, connect, mcast };
  Kind kind = Kind::nic;
  unsigned vlan = 0;
  std::string name;  // name=, or empty for the default ("ne2k_pci.0")
  // nic
  std::string model;  // empty: the machine's default (ne2k_pci; ne2k_isa on isapc)
  std::optional<std::array<u8, 6>> macaddr;
  std::optional<u16> iobase;  // ISA models
  std::optional<u8> irq;      // ISA models
  // socket
  SocketMode socket_mode = SocketMode::connect;
  std::string host;  // listen: may be empty (any address)
  u16 port = 0;
  std::string localaddr;  // mcast
  // dump
  std::string file;
  u32 snap_length = 65536;
  // user
  UserNetOption user;
};

struct MonitorOption {
  enum class Kind : u8 { none, stdio, unix_server };
  Kind kind = Kind::none;
  std::string path;  // unix_server
  bool wait = true;  // server: wait for a client before starting (QEMU's default)
};

// -gdb tcp:[HOST]:PORT (or -s for tcp::1234): where the gdb stub listens.
// An empty host means 127.0.0.1 (reel binds loopback unless told, unlike
// QEMU); port 0 picks a free one, printed on stderr.
struct GdbOption {
  std::string host = "127.0.0.1";
  u16 port = 1234;
};
// "tcp::1234", "tcp:HOST:PORT"; throws OptionError naming `option`.
GdbOption parse_gdb_address(std::string_view text, std::string_view option);

// Everything that defines the machine. Recorded verbatim (as the argument
// list) in the journal header so `reel replay` needs nothing else.
struct MachineOptions {
  std::string machine = "pc";  // pc | isapc
  std::string kernel;
  std::string append;
  std::string initrd;  // Linux bzImage only
  u32 ram_bytes = 128u << 20;
  unsigned icount_shift = 0;
  bool icount_sleep = true;
  std::vector<SerialOption> serials;  // serial0 = COM1, serial1 = COM2, ...
  std::optional<DebugExitOption> debug_exit;
  bool no_reboot = false;
  std::optional<i64> rtc_base_ns;  // -rtc base=YYYY-MM-DDTHH:MM:SS
  std::optional<u64> seed;
  std::vector<NetOption> nets;  // in command-line order
  MonitorOption monitor;
  // Debugging (not machine state): -gdb / -s, and -S to wait for gdb.
  std::optional<GdbOption> gdb;
  bool wait_for_gdb = false;
  u64 checkpoint_interval = u64{1} << 24;
  // Logging (not machine state, but kept so a replay logs the same way).
  bool log_in_asm = false;
  std::string log_file;
};

// Parses the machine options of `run` and `record`. Throws OptionError.
MachineOptions parse_machine_options(const std::vector<std::string>& args);

// "128", "128M", "1G", "64k" -> bytes (a bare number is MiB as in QEMU).
u64 parse_size(std::string_view text, std::string_view option);
// "YYYY-MM-DDTHH:MM:SS" or "YYYY-MM-DD" (UTC) -> ns since the epoch.
i64 parse_utc_date(std::string_view text, std::string_view option);

// "52:54:00:12:34:56" -> bytes. Throws OptionError naming `option`.
std::array<u8, 6> parse_mac_address(std::string_view text, std::string_view option);
// The NIC models reel has, in the order `model=help` lists them.
const std::vector<std::string>& nic_models();

std::string machine_options_help();

}  // namespace reel
