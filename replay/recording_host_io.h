#pragma once

#include <string>
#include <vector>

#include "replay/journal.h"
#include "replay/live_host_io.h"

namespace reel {

// Live behaviour plus a journal: every result the machine observes from the
// host is written down with the instruction count at which it observed it,
// together with console output digests, state-hash checkpoints at every
// multiple of the checkpoint interval, and the end of the run. Touches the
// host only through LiveHostIO (and the journal file through JournalWriter).
class RecordingHostIO : public LiveHostIO {
 public:
  // The header's checkpoint interval (default 2^24 when 0) sets where
  // checkpoints fall; its poll interval is taken from the options. Throws
  // JournalError when the journal cannot be created.
  RecordingHostIO(const std::string& path, JournalHeader header, Options options);
  ~RecordingHostIO() override;

  // Store the contents of every file read in the journal, so replay needs
  // no other file. Call before the first read.
  void set_embed_files(bool embed) { m_embed_files = embed; }

  i64 host_time_ns() override;
  HostFile read_file(const std::string& path) override;
  HostFile read_file_under(const std::string& root, const std::string& name) override;
  ChannelId open_console(const ConsoleSpec& spec) override;
  SocketOpenResult socket_open(const SocketSpec& spec) override;
  size_t socket_send(SocketId socket, std::span<const u8> bytes) override;
  size_t socket_send_to(SocketId socket, const SocketAddress& to, std::span<const u8> bytes) override;
  void socket_pause(SocketId socket, bool paused) override;
  void socket_shutdown(SocketId socket) override;
  void socket_close(SocketId socket) override;
  u64 next_stop_icount() override;
  bool boundary(InputSink& sink) override;
  std::optional<u64> idle(std::optional<u64> deadline_ns) override;
  void finish(const RunEnd& end) override;

  const JournalWriter& writer() const { return m_writer; }
  u64 checkpoints_written() const { return m_checkpoints; }

 protected:
  void on_input(ChannelId channel, std::span<const u8> bytes) override;
  void on_socket_event(const SocketEvent& event) override;

 private:
  void write_digests();
  void journal_send(SocketId socket, const SocketAddress* to, std::span<const u8> bytes, size_t accepted);
  void journal_control(SocketId socket, SocketControlRecord::Op op);

  JournalWriter m_writer;
  u64 m_interval;
  u64 m_next_checkpoint = 0;
  u64 m_checkpoints = 0;
  bool m_embed_files = false;
  bool m_input_since_flush = false;
  std::vector<u64> m_digested;  // per channel: bytes covered by the last digest
};

}  // namespace reel
