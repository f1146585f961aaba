#pragma once

// A HostIO with no outside world: a fixed host time, no files, consoles that
// write nowhere, sockets that never open, nothing ever arriving. For code
// that needs a HostIO but must not touch the host or a journal (the gdb
// stub's own Monitor); fuzz targets derive from it to fake sockets.

#include "core/host_io.h"

namespace reel {

class NullHostIO : public HostIO {
 public:
  explicit NullHostIO(i64 host_time_ns = 0) : m_host_time_ns(host_time_ns) {}

  void attach(const VirtualClock*, std::function<u64()>) override {}
  i64 host_time_ns() override { return m_host_time_ns; }
  HostFile read_file(const std::string&) override { return {}; }
  HostFile read_file_under(const std::string&, const std::string&) override { return {}; }
  ChannelId open_console(const ConsoleSpec&) override { return 0; }
  void console_write(ChannelId, std::span<const u8>) override {}
  SocketOpenResult socket_open(const SocketSpec&) override { return {}; }
  size_t socket_send(SocketId, std::span<const u8>) override { return 0; }
  size_t socket_send_to(SocketId, const SocketAddress&, std::span<const u8>) override { return 0; }
  void socket_pause(SocketId, bool) override {}
  void socket_shutdown(SocketId) override {}
  void socket_close(SocketId) override {}
  u64 next_stop_icount() override { return kNever; }
  bool boundary(InputSink&) override { return true; }
  std::optional<u64> idle(std::optional<u64> deadline) override { return deadline; }
  void finish(const RunEnd&) override {}

 private:
  i64 m_host_time_ns;
};

}  // namespace reel
