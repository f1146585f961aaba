#pragma once

// A HostIO with no outside world, for fuzz targets: a fixed date, no files,
// consoles that write nowhere, and sockets that open (ids counting up) and
// take at most `take` bytes of each send. Nothing ever arrives by itself;
// a target delivers socket events to the machine directly.

#include <cstdint>

#include "core/host_io.h"

namespace reel::fuzz {

class NullHostIO : public HostIO {
 public:
  size_t take = SIZE_MAX;

  void attach(const VirtualClock*, std::function<u64()>) override {}
  i64 host_time_ns() override { return 1700000000ll * 1000000000ll; }
  HostFile read_file(const std::string&) override { return {}; }
  HostFile read_file_under(const std::string&, const std::string&) override { return {}; }
  ChannelId open_console(const ConsoleSpec&) override { return 0; }
  void console_write(ChannelId, std::span<const u8>) override {}
  SocketOpenResult socket_open(const SocketSpec&) override {
    SocketOpenResult r;
    r.ok = true;
    r.id = m_next++;
    return r;
  }
  size_t socket_send(SocketId, std::span<const u8> bytes) override {
    return bytes.size() < take ? bytes.size() : take;
  }
  size_t socket_send_to(SocketId, const SocketAddress&, std::span<const u8> bytes) override {
    return bytes.size();
  }
  void socket_pause(SocketId, bool) override {}
  void socket_shutdown(SocketId) override {}
  void socket_close(SocketId) override {}
  u64 next_stop_icount() override { return kNever; }
  bool boundary(InputSink&) override { return true; }
  std::optional<u64> idle(std::optional<u64> deadline) override { return deadline; }
  void finish(const RunEnd&) override {}

  SocketId next_id() const { return m_next; }
  // An id for a connection the host "accepted".
  SocketId new_id() { return m_next++; }

 private:
  SocketId m_next = 0;
};

}  // namespace reel::fuzz
