#pragma once

// The journal: everything a recording observed from the host, in the order
// and at the instruction counts where the machine observed it. The writer
// and the reader live together so that the format has one definition.
//
// On disk (all integers little-endian):
//   "REELJRNL"  u32 format version
//   chunk*      u32 magic  u32 payload length  u64 XXH3-64(payload)  payload
// The first chunk is the header (magic "RJHD"); the others hold events
// (magic "RJEV"). An event is: u8 kind, uleb128 icount delta from the
// previous event, uleb128 payload length, payload.

#include <array>
#include <cstdio>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/host_io.h"
#include "core/types.h"

namespace reel {

// A journal that cannot be read or written: what() is one line naming the
// file, the problem and the byte offset.
class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bump on any change to the layout below; the reader refuses other
// versions with a message naming both.
// 3 added host sockets (1 and 2 were never released); 4 added the ICMP echo
// socket kind and jailed file reads (file_read events with the bytes
// embedded). 5 may store embedded contents zlib-compressed (flag 2). Each
// version only added to the one before, so versions 3 to 5 all read. 6 added
// keyframes (a machine state a replay can start from); 3 to 6 all read.
inline constexpr u32 kJournalFormatVersion = 6;
inline constexpr u32 kJournalOldestReadableVersion = 3;

enum class EventKind : u8 {
  host_time = 1,        // i64 ns since the epoch
  file_read = 2,        // path, ok, size, hash, error, [embedded bytes]
  console_open = 3,     // channel, console name
  console_input = 4,    // u32 channel, then the bytes up to the payload end
  console_digest = 5,   // channel, total bytes so far, running XXH3 of them
  idle_advance = 6,     // virtual ns to resume at, the timer deadline it had
  checkpoint = 7,       // machine state hash
  end = 8,              // RunEnd and the final console digests
  socket_open = 9,      // the spec asked for and the host's answer
  socket_send = 10,     // socket, destination, size and XXH3 of the bytes, how many the host took
  socket_control = 11,  // socket, pause/resume/shutdown/close
  socket_event = 12,    // SocketEvent: accepts, connects, data, datagrams, EOF, errors
  keyframe = 13,        // state hash, console digests, zlib of Machine::save_state
};
inline constexpr u8 kLastEventKind = static_cast<u8>(EventKind::keyframe);

const char* event_kind_name(EventKind kind);
// Synchronous events answer a request the machine makes while it runs; the
// others are taken at loop boundaries (idle_advance: by idle()).
bool is_synchronous(EventKind kind);

struct JournalEvent {
  EventKind kind = EventKind::end;
  u64 icount = 0;
  std::vector<u8> payload;
  u64 offset = 0;  // byte offset of the event in the file, for messages
};

struct InputFile {
  std::string path;  // as the options named it
  u64 size = 0;
  u64 hash = 0;  // XXH3-64 of the contents
  bool embedded = false;
  std::vector<u8> bytes;  // when embedded
  u64 stored_size = 0;    // bytes the contents take in the journal (compressed)
};

struct JournalHeader {
  std::string reel_version;       // filled in by the writer
  std::vector<std::string> argv;  // the machine options, re-parsed by replay
  std::string cwd;
  u64 seed = 0;
  u64 checkpoint_interval = 0;  // instructions
  // The recording's host poll interval. Replay stops its CPU slices at the
  // same instruction counts, so slice ends match the recording's exactly.
  u64 poll_interval = 0;
  std::vector<InputFile> inputs;  // files read before the first event chunk
  std::vector<std::pair<std::string, std::string>> metadata;
};

// Little-endian encoding of payloads.
class ByteWriter {
 public:
  void u8v(u8 v);
  void u32v(u32 v);
  void u64v(u64 v);
  void i64v(i64 v) { u64v(static_cast<u64>(v)); }
  void uleb(u64 v);
  void str(std::string_view s);       // u32 length, bytes
  void bytes(std::span<const u8> b);  // u32 length, bytes
  void raw(std::span<const u8> b);
  std::vector<u8>& data() { return m_bytes; }

 private:
  u8* grow(size_t n);
  std::vector<u8> m_bytes;
};

// Reads what ByteWriter wrote. Every length is checked against what is
// left; a record running past its end throws JournalError naming the file
// offset.
class ByteReader {
 public:
  ByteReader(std::span<const u8> bytes, u64 base_offset, std::string name)
      : m_bytes(bytes), m_base(base_offset), m_name(std::move(name)) {}
  u8 u8v();
  u32 u32v();
  u64 u64v();
  i64 i64v() { return static_cast<i64>(u64v()); }
  u64 uleb();
  std::string str();
  std::vector<u8> bytes();
  std::span<const u8> take(size_t n);
  std::span<const u8> rest();
  bool done() const { return m_pos == m_bytes.size(); }
  size_t left() const { return m_bytes.size() - m_pos; }
  u64 offset() const { return m_base + m_pos; }
  // Throws unless every byte was read.
  void expect_done(const char* what);
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  void need(size_t n, const char* what);
  std::span<const u8> m_bytes;
  size_t m_pos = 0;
  u64 m_base;
  std::string m_name;
};

// ---- Typed event payloads, shared by recording, replay and `reel info`.

struct FileReadRecord {
  std::string path;
  bool ok = false;
  u64 size = 0;
  u64 hash = 0;
  std::string error;
  bool embedded = false;
  std::vector<u8> bytes;  // when embedded
  u64 stored_size = 0;    // bytes the contents take in the journal (compressed)
};
struct ConsoleOpenRecord {
  ChannelId channel = 0;
  std::string name;
};
struct ConsoleInputRecord {
  ChannelId channel = 0;
  std::vector<u8> bytes;
};
struct ConsoleDigestRecord {
  ChannelId channel = 0;
  u64 total = 0;  // bytes written to the channel so far
  u64 hash = 0;   // XXH3-64 of all of them
};
struct IdleAdvanceRecord {
  u64 resume_ns = 0;
  u64 deadline_ns = kNever;  // the timer deadline idle() was given
};
struct EndRecord {
  u8 kind = 0;  // RunEnd::Kind
  i32 status = 0;
  u64 icount = 0;
  u64 time_ns = 0;
  u64 state_hash = 0;
  std::vector<ConsoleDigestRecord> digests;  // every channel
};

struct SocketOpenRecord {
  SocketSpec spec;
  SocketOpenResult result;
};
struct SocketSendRecord {
  SocketId socket = 0;
  bool has_to = false;  // socket_send_to
  SocketAddress to;
  u64 size = 0;      // bytes the machine offered
  u64 hash = 0;      // XXH3-64 of them
  u64 accepted = 0;  // bytes the host took
};
struct SocketControlRecord {
  enum class Op : u8 { pause, resume, shutdown, close };
  SocketId socket = 0;
  Op op = Op::close;
};
const char* socket_control_name(SocketControlRecord::Op op);

// A whole machine state at a boundary, written right after a checkpoint at
// the same count, so that a replay can start there in a fresh machine
// instead of running the journal from its start (reel diff re-runs one
// interval this way). The console digests are the recording's at this count.
struct KeyframeRecord {
  u64 state_hash = 0;  // Machine::state_hash(), checked after the load
  std::vector<ConsoleDigestRecord> consoles;
  u64 state_size = 0;      // bytes of the saved state
  std::vector<u8> packed;  // zlib stream of them
};

std::vector<u8> encode_host_time(i64 ns);
std::vector<u8> encode_file_read(const FileReadRecord& r);
std::vector<u8> encode_console_open(const ConsoleOpenRecord& r);
std::vector<u8> encode_console_input(ChannelId channel, std::span<const u8> bytes);
std::vector<u8> encode_console_digest(const ConsoleDigestRecord& r);
std::vector<u8> encode_idle_advance(const IdleAdvanceRecord& r);
std::vector<u8> encode_checkpoint(u64 state_hash);
std::vector<u8> encode_end(const EndRecord& end);
std::vector<u8> encode_socket_open(const SocketOpenRecord& r);
std::vector<u8> encode_socket_send(const SocketSendRecord& r);
std::vector<u8> encode_socket_control(const SocketControlRecord& r);
std::vector<u8> encode_socket_event(const SocketEvent& e);
// Compresses `state` (Machine::save_state, StateParts::all).
std::vector<u8> encode_keyframe(u64 state_hash, const std::vector<ConsoleDigestRecord>& consoles,
                                std::span<const u8> state);
// The same event, with the state written by `write_state` into a stream
// that deflates as it goes: the uncompressed state (RAM-sized) is never
// held in memory, which made a keyframe of a 64 MiB guest cost most of a
// second (a growing string's copies and fresh pages).
std::vector<u8> encode_keyframe(u64 state_hash, const std::vector<ConsoleDigestRecord>& consoles,
                                const std::function<void(std::ostream&)>& write_state);

// Decoders check the event's kind and that the payload is exactly one
// record; the reader runs them on every event it loads, so events of a
// JournalReader always decode. `name` is the journal's, for messages.
i64 decode_host_time(const JournalEvent& e, const std::string& name);
FileReadRecord decode_file_read(const JournalEvent& e, const std::string& name);
ConsoleOpenRecord decode_console_open(const JournalEvent& e, const std::string& name);
ConsoleInputRecord decode_console_input(const JournalEvent& e, const std::string& name);
ConsoleDigestRecord decode_console_digest(const JournalEvent& e, const std::string& name);
IdleAdvanceRecord decode_idle_advance(const JournalEvent& e, const std::string& name);
u64 decode_checkpoint(const JournalEvent& e, const std::string& name);
EndRecord decode_end(const JournalEvent& e, const std::string& name);
SocketOpenRecord decode_socket_open(const JournalEvent& e, const std::string& name);
SocketSendRecord decode_socket_send(const JournalEvent& e, const std::string& name);
SocketControlRecord decode_socket_control(const JournalEvent& e, const std::string& name);
SocketEvent decode_socket_event(const JournalEvent& e, const std::string& name);
// The structure only; the reader does not inflate every keyframe it loads.
KeyframeRecord decode_keyframe(const JournalEvent& e, const std::string& name);
// Inflates a keyframe's state; throws JournalError (naming the event's
// offset) when the stream is corrupted or its size lies.
std::vector<u8> keyframe_state(const JournalEvent& e, const KeyframeRecord& k, const std::string& name);
// One line for messages: "console_input at icount 1234 (channel 0, 6 bytes)".
std::string describe_event(const JournalEvent& e);

// Writes a journal: the magic and version at once, the header chunk lazily
// at the first flush (so files read while the machine is built still enter
// the header's input table), then event chunks. Events are buffered and
// written as a chunk when the buffer reaches 64 KiB and whenever flush() is
// called (the recorder does at checkpoints and after inputs), each followed
// by fflush, so an interrupted recording leaves a valid journal up to its
// last complete chunk. A write error (disk full) is reported once on
// stderr, the file is cut back to its last complete chunk, and further
// events are dropped; the run itself goes on.
class JournalWriter {
 public:
  // Throws JournalError when the file cannot be created.
  JournalWriter(const std::string& path, JournalHeader header);
  // Writes into a stream (tests, fuzz seeds); `name` is for messages.
  JournalWriter(std::ostream& out, JournalHeader header, std::string name);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  bool header_written() const { return m_header_written; }
  // Mutable until the first flush.
  JournalHeader& header() { return m_header; }

  // icount must not decrease from one event to the next.
  void append(EventKind kind, u64 icount, std::span<const u8> payload);
  void flush();

  // Keyframes: after the first checkpoint at or past each multiple of
  // `interval`, `make` is called (at that boundary, so the machine state is
  // the checkpoint's) and a non-empty result is appended as a keyframe
  // event (encode_keyframe). An empty result skips this one.
  using KeyframeMaker = std::function<std::vector<u8>(u64 icount)>;
  void set_keyframes(u64 interval, KeyframeMaker make);
  u64 keyframes_written() const { return m_keyframes; }
  u64 keyframe_bytes() const { return m_keyframe_bytes; }
  void close();

  const std::string& path() const { return m_name; }
  bool failed() const { return m_failed; }
  const std::string& error() const { return m_error; }
  u64 events_written() const { return m_events; }
  u64 bytes_written() const { return m_offset; }

 private:
  void write_chunk(u32 magic, std::span<const u8> payload);
  bool write_bytes(std::span<const u8> bytes);
  void fail(const std::string& why);

  std::string m_name;
  std::FILE* m_file = nullptr;
  std::ostream* m_stream = nullptr;
  JournalHeader m_header;
  bool m_header_written = false;
  bool m_failed = false;
  bool m_closed = false;
  std::string m_error;
  ByteWriter m_pending;  // events not yet written
  u64 m_last_icount = 0;
  u64 m_events = 0;
  u64 m_keyframe_interval = 0;
  u64 m_next_keyframe = 0;
  KeyframeMaker m_make_keyframe;
  u64 m_keyframes = 0;
  u64 m_keyframe_bytes = 0;
  u64 m_offset = 0;  // end of the last complete chunk
};

// Reads and checks a whole journal at once, so a corrupted file is refused
// before anything runs: bad magic, another format version, a checksum
// mismatch, a truncated chunk, an oversized length, an event overrunning
// its chunk, an unknown event kind or a payload that does not decode all
// throw JournalError naming the byte offset. A file ending cleanly at a
// chunk boundary without an end event is an interrupted recording
// (has_end() is false).
class JournalReader {
 public:
  struct Options {
    // Use the valid prefix of a journal whose last chunk is torn, instead
    // of refusing it.
    bool allow_truncated = false;
    // Fuzz targets turn this off to reach the parsing behind the checksums.
    bool verify_checksums = true;
  };
  static JournalReader open(const std::string& path, Options options);
  static JournalReader read(std::istream& in, const std::string& name, Options options);
  static JournalReader parse(std::span<const u8> bytes, const std::string& name, Options options);

  const std::string& name() const { return m_name; }
  const JournalHeader& header() const { return m_header; }
  const std::vector<JournalEvent>& events() const { return m_events; }
  auto begin() const { return m_events.begin(); }
  auto end() const { return m_events.end(); }
  size_t size() const { return m_events.size(); }

  bool has_end() const { return !m_events.empty() && m_events.back().kind == EventKind::end; }
  // The end event, or nullptr for an interrupted recording.
  const JournalEvent* end_event() const { return has_end() ? &m_events.back() : nullptr; }
  std::optional<EndRecord> end_record() const;
  u64 count(EventKind kind) const { return m_counts[static_cast<u8>(kind) % m_counts.size()]; }

  // allow_truncated dropped a torn last chunk starting at valid_size().
  bool truncated() const { return m_truncated; }
  u64 valid_size() const { return m_valid_size; }
  u32 format_version() const { return m_version; }
  u64 file_size() const { return m_size; }

 private:
  std::string m_name;
  JournalHeader m_header;
  std::vector<JournalEvent> m_events;
  std::array<u64, kLastEventKind + 1> m_counts{};
  bool m_truncated = false;
  u64 m_valid_size = 0;
  u32 m_version = 0;
  u64 m_size = 0;
};

}  // namespace reel
