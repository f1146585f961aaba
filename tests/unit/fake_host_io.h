#pragma once

// A HostIO for device and netstack tests: records console output and
// socket calls, returns a fixed host time, has no inputs of its own (tests
// hand socket events to the machine themselves).

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/host_io.h"
#include "core/interrupts.h"

namespace reel::test {

class FakeHostIO : public HostIO {
 public:
  void attach(const VirtualClock*, std::function<u64()>) override {}
  i64 host_time_ns() override {
    ++time_reads;
    return time_ns;
  }
  HostFile read_file(const std::string&) override { return {}; }
  // Serves `files` by name (the root must be `files_root`); names in
  // `refused_names` are refused as the jail would refuse them. Every call
  // is remembered in `reads`.
  HostFile read_file_under(const std::string& root, const std::string& name) override {
    reads.push_back(name);
    HostFile f;
    if (root != files_root) {
      f.error = "No such file or directory";
    } else if (refused_names.count(name)) {
      f.refused = true;
      f.error = std::string(kHostFileRefusedPrefix) + "outside the root";
    } else if (auto it = files.find(name); it != files.end()) {
      f.ok = true;
      f.bytes = it->second;
    } else {
      f.error = "No such file or directory";
    }
    return f;
  }
  ChannelId open_console(const ConsoleSpec&) override { return 0; }
  void console_write(ChannelId, std::span<const u8> bytes) override {
    output.append(bytes.begin(), bytes.end());
  }
  SocketOpenResult socket_open(const SocketSpec& spec) override {
    opened.push_back(spec);
    SocketOpenResult r;
    r.ok = !refuse_sockets;
    if (r.ok) r.id = next_socket++;
    else r.error = "refused by the test";
    return r;
  }
  size_t socket_send(SocketId socket, std::span<const u8> bytes) override {
    sent.push_back(Sent{socket, {}, std::vector<u8>(bytes.begin(), bytes.end())});
    return send_limit < bytes.size() ? send_limit : bytes.size();
  }
  size_t socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) override {
    sent.push_back(Sent{socket, to, std::vector<u8>(bytes.begin(), bytes.end())});
    return bytes.size();
  }
  void socket_pause(SocketId socket, bool paused) override { this->paused[socket] = paused; }
  void socket_shutdown(SocketId socket) override { shut.push_back(socket); }
  void socket_close(SocketId socket) override { closed.push_back(socket); }
  u64 next_stop_icount() override { return kNever; }
  bool boundary(InputSink&) override { return true; }
  std::optional<u64> idle(std::optional<u64> deadline) override { return deadline; }
  void finish(const RunEnd&) override {}

  i64 time_ns = 1795581792LL * 1000000000LL;  // 2026-11-25 04:43:12 UTC, a Wednesday
  int time_reads = 0;
  std::string output;

  struct Sent {
    SocketId socket;
    SocketAddress to;
    std::vector<u8> bytes;
  };
  bool refuse_sockets = false;
  size_t send_limit = SIZE_MAX;
  SocketId next_socket = 0;
  std::vector<SocketSpec> opened;
  std::vector<Sent> sent;
  std::map<SocketId, bool> paused;
  std::vector<SocketId> shut;
  std::vector<SocketId> closed;
  std::string files_root = "/tftp";
  std::map<std::string, std::vector<u8>> files;
  std::set<std::string> refused_names;
  std::vector<std::string> reads;
};

// An IrqSink that remembers line levels and counts rising edges.
class FakeIrqSink : public IrqSink {
 public:
  void set_irq(unsigned line, bool level) override {
    if (level && !levels[line]) ++edges[line];
    levels[line] = level;
  }
  bool levels[16] = {};
  int edges[16] = {};
};

// Stands in for the CPU: counts INTR change notifications.
class FakeIntrListener : public IntrListener {
 public:
  void intr_changed() override { ++changes; }
  int changes = 0;
};

}  // namespace reel::test
