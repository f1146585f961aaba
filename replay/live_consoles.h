#pragma once

#include <poll.h>
#include <xxhash.h>

#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "core/host_io.h"

namespace reel {

// A host resource named by the options cannot be used (a -serial file that
// cannot be created): one line, exit status 2.
class HostError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The output side of the consoles: writes each channel's bytes where its
// spec says (stdout unbuffered, a file, nowhere) and keeps a running digest
// of everything written, which recording journals and replay compares.
// Shared by live, recording and replay, which all show console output.
class LiveConsoles {
 public:
  struct Digest {
    u64 total = 0;  // bytes written so far
    u64 hash = 0;   // XXH3-64 of all of them
  };

  // Replay shows output on stdio and files as the recording did, but opens
  // no sockets: a Unix socket console writes nowhere.
  enum class Mode : u8 { live, replay };
  explicit LiveConsoles(Mode mode = Mode::live);
  ~LiveConsoles();
  LiveConsoles(const LiveConsoles&) = delete;
  LiveConsoles& operator=(const LiveConsoles&) = delete;

  // Channel ids count up from 0 in open order. Throws HostError when a
  // file console cannot be created.
  ChannelId open(const ConsoleSpec& spec);
  // Bytes for an unknown channel are dropped (a reel bug, not the guest's).
  void write(ChannelId channel, std::span<const u8> bytes);
  Digest digest(ChannelId channel) const;
  size_t size() const { return m_consoles.size(); }
  const ConsoleSpec& spec(ChannelId channel) const;

  // Unix socket consoles: the connected client's descriptor, accepting a
  // waiting client first (-1 when there is none).
  int client_fd(ChannelId channel);
  // The client went away; the console waits for the next one.
  void drop_client(ChannelId channel);
  // What an idle wait should watch for these consoles.
  void add_pollfds(std::vector<pollfd>& fds) const;

 private:
  struct Console;
  Mode m_mode;
  std::vector<std::unique_ptr<Console>> m_consoles;
};

}  // namespace reel
