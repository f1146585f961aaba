#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace reel {

// A port forward into the guest (hostfwd=, -redir). The host side binds
// host_address (127.0.0.1 unless given) and hands what arrives to the
// guest's guest_address:guest_port (guest_address 0: the first lease).
struct UserNetForward {
  bool udp = false;
  std::string host_address = "127.0.0.1";
  u16 host_port = 0;
  u32 guest_address = 0;
  u16 guest_port = 0;
};

// `-net user` settings, QEMU's defaults.
struct UserNetConfig {
  u32 network = 0x0a000200;  // net=10.0.2.0/24
  u32 netmask = 0xffffff00;
  u32 host = 0x0a000202;                 // host= (gateway, DHCP server, TFTP server)
  u32 dhcp_start = 0x0a00020f;           // dhcpstart=
  u32 dns = 0x0a000203;                  // dns=
  std::string hostname;                  // hostname= (DHCP option 12)
  std::string domainname;                // domainname= (option 15)
  std::vector<std::string> dns_search;   // dnssearch= (option 119)
  bool restrict = false;                 // restrict=on
  std::string tftp_root;                 // tftp=
  std::string bootfile;                  // bootfile= (BOOTP file field; option 67 when asked for)
  std::string tftp_server_name;          // tftp-server-name= (option 66)
  std::vector<UserNetForward> forwards;  // hostfwd=, -redir
  // Where queries to the dns= address go: "host:port" (reel's resolver=
  // option, tests point it at a server on 127.0.0.1), or empty for the
  // first nameserver of the host's /etc/resolv.conf (read through HostIO).
  std::string resolver;
};

}  // namespace reel
