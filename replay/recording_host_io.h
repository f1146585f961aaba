#pragma once

#include <string>

#include "replay/journal.h"
#include "replay/live_host_io.h"

namespace reel {

// Live behaviour plus a journal: every result the machine observes from the
// host is written down with the instruction count at which it was observed,
// together with console output digests, periodic state-hash checkpoints and
// the end of the run. Touches the host only through LiveHostIO.
class RecordingHostIO : public LiveHostIO {
 public:
  RecordingHostIO(const std::string& path, JournalHeader header, Options options);
  ~RecordingHostIO() override;

  i64 host_time_ns() override;
  HostFile read_file(const std::string& path) override;
  ChannelId open_console(const ConsoleSpec& spec) override;
  u64 next_stop_icount() override;
  bool boundary(InputSink& sink) override;
  std::optional<u64> idle(std::optional<u64> deadline_ns) override;
  void finish(const RunEnd& end) override;

  const JournalWriter& writer() const { return m_writer; }
  u64 checkpoints_written() const { return m_checkpoints; }

 protected:
  void on_input(ChannelId channel, std::span<const u8> bytes) override;

 private:
  u64 icount() const;
  void write_digests();

  JournalWriter m_writer;
  u64 m_interval;
  u64 m_next_checkpoint = 0;
  u64 m_checkpoints = 0;
  std::vector<u64> m_digested;  // console bytes covered by the last digest
  bool m_input_since_flush = false;
};

}  // namespace reel
