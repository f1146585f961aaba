#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/component.h"
#include "core/host_io.h"

namespace reel {

class Machine;
class Hub;
class UserNet;

// QEMU's human monitor, the commands reel has: `info network`, `info
// registers`, `help`, `quit`. Its input is console input (journaled, so a
// replay types the same commands at the same instruction counts) and its
// output a console channel (checked by digest in replay).
class Monitor : public Component {
 public:
  // `hubs` lists the VLANs in number order, for `info network`.
  Monitor(Machine& machine, HostIO& host, ChannelId channel, std::function<std::vector<const Hub*>()> hubs);

  // Bytes typed at the monitor.
  void receive(std::span<const u8> bytes);

  // The text of a command's answer (used by the gdb stub's qRcmd later).
  std::string execute(const std::string& line);

  void reset() override {}
  REEL_COMPONENT_STATE

  template <class Archive>
  void serialize(Archive& ar) {
    ar(REEL_FIELD(m_line), REEL_FIELD(m_greeted), REEL_FIELD(m_commands));
  }

  std::string info_network() const;
  std::string info_registers() const;
  std::string info_usernet() const;

 private:
  void write(const std::string& text);
  std::vector<std::pair<unsigned, UserNet*>> user_nets() const;
  std::string hostfwd(const std::vector<std::string>& words);
  void greet();

  Machine& m_machine;
  HostIO& m_host;
  ChannelId m_channel;
  std::function<std::vector<const Hub*>()> m_hubs;
  std::string m_line;
  bool m_greeted = false;
  u64 m_commands = 0;
};

}  // namespace reel
