// The journal format: round trips of every event kind and header field,
// and corruption anywhere refused with a one-line message naming the byte
// offset, never a crash.

#include "replay/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <xxhash.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace reel {
namespace {

std::string temp_path(const char* name) { return std::string(::testing::TempDir()) + name; }

std::vector<u8> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<u8>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<u8> to_bytes(const std::string& s) { return std::vector<u8>(s.begin(), s.end()); }

JournalHeader sample_header() {
  JournalHeader h;
  h.argv = {"-kernel", "guest.elf", "-append", "a b", ""};
  h.cwd = "/somewhere";
  h.seed = 0x1234567890abcdefull;
  h.checkpoint_interval = 1000;
  h.poll_interval = 300;
  const std::vector<u8> contents = {1, 2, 3};
  h.inputs.push_back(InputFile{"guest.elf", 3, XXH3_64bits(contents.data(), 3), true, contents});
  h.inputs.push_back(InputFile{"bios.bin", 65536, 0x1122334455667788ull, false, {}});
  h.metadata.emplace_back("note", "test");
  h.metadata.emplace_back("host", "");
  return h;
}

// One of every event kind, then many inputs spread over several chunks.
void write_sample(JournalWriter& w, bool with_end) {
  w.append(EventKind::console_open, 0, encode_console_open({0, "serial0"}));
  w.append(EventKind::host_time, 0, encode_host_time(-5));
  const std::vector<u8> file = to_bytes("tftp contents");
  w.append(EventKind::file_read, 10,
           encode_file_read({"boot/pxelinux.0", true, file.size(), XXH3_64bits(file.data(), file.size()), "",
                             true, file}));
  w.append(EventKind::file_read, 10,
           encode_file_read({"missing", false, 0, 0, "No such file or directory", false, {}}));
  w.append(EventKind::checkpoint, 1000, encode_checkpoint(0xdeadbeef));
  w.append(EventKind::idle_advance, 1000, encode_idle_advance({123456789, kNever}));
  w.append(EventKind::idle_advance, 1000, encode_idle_advance({123456800, 200000000}));
  w.append(EventKind::console_digest, 1500, encode_console_digest({0, 42, 0xabcdef0123456789ull}));
  for (u64 i = 1; i <= 50; ++i) {
    const std::vector<u8> bytes(static_cast<size_t>(i % 7), static_cast<u8>('a' + i % 26));
    w.append(EventKind::console_input, 2000 + i * 100, encode_console_input(0, bytes));
    if (i % 10 == 0) w.flush();
  }
  if (with_end) {
    EndRecord e{0, 3, 99999, 123456, 0xabcdef, {{0, 42, 0x77}, {1, 0, 0x2d06800538d394c2ull}}};
    w.append(EventKind::end, 99999, encode_end(e));
  }
}

std::vector<u8> make_journal(bool with_end = true) {
  std::ostringstream out;
  {
    JournalWriter w(out, sample_header(), "mem");
    write_sample(w, with_end);
  }
  return to_bytes(out.str());
}

// Every socket record, with the edge values each field can take.
std::vector<u8> make_socket_journal() {
  std::ostringstream out;
  {
    JournalWriter w(out, sample_header(), "mem");
    SocketOpenRecord open;
    open.spec.kind = SocketSpec::Kind::udp_multicast;
    open.spec.host = "230.0.0.1";
    open.spec.port = 65535;
    open.spec.local_host = "127.0.0.1";
    open.result.ok = true;
    open.result.id = 7;
    open.result.local = {0x7f000001, 1234};
    w.append(EventKind::socket_open, 1, encode_socket_open(open));
    SocketOpenRecord refused;
    refused.spec.host = "localhost";
    refused.spec.port = 1;
    refused.result.error = "Connection refused";
    w.append(EventKind::socket_open, 1, encode_socket_open(refused));
    SocketSendRecord send;
    send.socket = 7;
    send.has_to = true;
    send.to = {0xe0000001, 80};
    send.size = 300;
    send.hash = 0x0123456789abcdefull;
    send.accepted = 299;
    w.append(EventKind::socket_send, 5, encode_socket_send(send));
    w.append(EventKind::socket_control, 5, encode_socket_control({7, SocketControlRecord::Op::shutdown}));
    SocketEvent accepted;
    accepted.kind = SocketEvent::Kind::accepted;
    accepted.socket = 7;
    accepted.accepted = 8;
    accepted.peer = {0x7f000001, 40000};
    w.append(EventKind::socket_event, 9, encode_socket_event(accepted));
    SocketEvent data;
    data.kind = SocketEvent::Kind::datagram;
    data.socket = 8;
    data.bytes = {0, 1, 2, 255};
    w.append(EventKind::socket_event, 9, encode_socket_event(data));
    SocketEvent error;
    error.kind = SocketEvent::Kind::error;
    error.socket = 8;
    error.error = "Connection reset by peer";
    w.append(EventKind::socket_event, 10, encode_socket_event(error));
  }
  return to_bytes(out.str());
}

TEST(Journal, SocketRecordsRoundTrip) {
  const JournalReader r = JournalReader::parse(make_socket_journal(), "j", {});
  ASSERT_EQ(r.size(), 7u);
  const auto& ev = r.events();
  const SocketOpenRecord open = decode_socket_open(ev[0], "j");
  EXPECT_EQ(open.spec.kind, SocketSpec::Kind::udp_multicast);
  EXPECT_EQ(open.spec.host, "230.0.0.1");
  EXPECT_EQ(open.spec.port, 65535);
  EXPECT_EQ(open.spec.local_host, "127.0.0.1");
  EXPECT_TRUE(open.result.ok);
  EXPECT_EQ(open.result.id, 7u);
  EXPECT_EQ(format_socket_address(open.result.local), "127.0.0.1:1234");
  const SocketOpenRecord refused = decode_socket_open(ev[1], "j");
  EXPECT_FALSE(refused.result.ok);
  EXPECT_EQ(refused.result.error, "Connection refused");
  const SocketSendRecord send = decode_socket_send(ev[2], "j");
  EXPECT_TRUE(send.has_to);
  EXPECT_EQ(format_socket_address(send.to), "224.0.0.1:80");
  EXPECT_EQ(send.size, 300u);
  EXPECT_EQ(send.accepted, 299u);
  EXPECT_EQ(send.hash, 0x0123456789abcdefull);
  EXPECT_EQ(decode_socket_control(ev[3], "j").op, SocketControlRecord::Op::shutdown);
  const SocketEvent accepted = decode_socket_event(ev[4], "j");
  EXPECT_EQ(accepted.kind, SocketEvent::Kind::accepted);
  EXPECT_EQ(accepted.accepted, 8u);
  EXPECT_EQ(accepted.peer.port, 40000);
  EXPECT_EQ(decode_socket_event(ev[5], "j").bytes, (std::vector<u8>{0, 1, 2, 255}));
  EXPECT_EQ(decode_socket_event(ev[6], "j").error, "Connection reset by peer");
  EXPECT_EQ(r.count(EventKind::socket_event), 3u);
  EXPECT_EQ(describe_event(ev[2]), "socket_send at icount 5 (socket 7, 300 bytes, 299 taken)");
  EXPECT_TRUE(is_synchronous(EventKind::socket_send));
  EXPECT_FALSE(is_synchronous(EventKind::socket_event));
}

TEST(Journal, SocketRecordsWithBadValuesAreRefused) {
  JournalEvent e;
  e.kind = EventKind::socket_event;
  e.payload = encode_socket_event(SocketEvent{});
  e.payload[0] = 99;  // no such event kind
  EXPECT_THROW(decode_socket_event(e, "j"), JournalError);
  SocketSendRecord send;
  send.size = 3;
  send.accepted = 3;
  e.kind = EventKind::socket_send;
  e.payload = encode_socket_send(send);
  e.payload.back() = 4;  // took more than it was given
  EXPECT_THROW(decode_socket_send(e, "j"), JournalError);
  e.kind = EventKind::socket_control;
  e.payload = encode_socket_control({1, SocketControlRecord::Op::close});
  e.payload.back() = 9;
  EXPECT_THROW(decode_socket_control(e, "j"), JournalError);
}

TEST(Journal, HeaderRoundTrip) {
  const JournalReader r = JournalReader::parse(make_journal(), "j", {});
  const JournalHeader want = sample_header();
  const JournalHeader& h = r.header();
  EXPECT_EQ(r.format_version(), kJournalFormatVersion);
  EXPECT_EQ(h.reel_version, REEL_VERSION_STRING);
  EXPECT_EQ(h.argv, want.argv);
  EXPECT_EQ(h.cwd, "/somewhere");
  EXPECT_EQ(h.seed, 0x1234567890abcdefull);
  EXPECT_EQ(h.checkpoint_interval, 1000u);
  EXPECT_EQ(h.poll_interval, 300u);
  ASSERT_EQ(h.inputs.size(), 2u);
  EXPECT_EQ(h.inputs[0].path, "guest.elf");
  EXPECT_TRUE(h.inputs[0].embedded);
  EXPECT_EQ(h.inputs[0].bytes, (std::vector<u8>{1, 2, 3}));
  EXPECT_EQ(h.inputs[1].path, "bios.bin");
  EXPECT_EQ(h.inputs[1].size, 65536u);
  EXPECT_EQ(h.inputs[1].hash, 0x1122334455667788ull);
  EXPECT_FALSE(h.inputs[1].embedded);
  EXPECT_EQ(h.metadata, want.metadata);
}

TEST(Journal, EveryEventKindRoundTrips) {
  const JournalReader r = JournalReader::parse(make_journal(), "j", {});
  ASSERT_EQ(r.size(), 59u);
  const auto& ev = r.events();
  EXPECT_EQ(decode_console_open(ev[0], "j").name, "serial0");
  EXPECT_EQ(decode_host_time(ev[1], "j"), -5);
  const FileReadRecord f = decode_file_read(ev[2], "j");
  EXPECT_EQ(ev[2].icount, 10u);
  EXPECT_EQ(f.path, "boot/pxelinux.0");
  EXPECT_TRUE(f.ok && f.embedded);
  EXPECT_EQ(f.bytes, to_bytes("tftp contents"));
  const FileReadRecord missing = decode_file_read(ev[3], "j");
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.error, "No such file or directory");
  EXPECT_EQ(decode_checkpoint(ev[4], "j"), 0xdeadbeefu);
  EXPECT_EQ(decode_idle_advance(ev[5], "j").resume_ns, 123456789u);
  EXPECT_EQ(decode_idle_advance(ev[5], "j").deadline_ns, kNever);
  EXPECT_EQ(decode_idle_advance(ev[6], "j").deadline_ns, 200000000u);
  const ConsoleDigestRecord d = decode_console_digest(ev[7], "j");
  EXPECT_EQ(d.total, 42u);
  EXPECT_EQ(d.hash, 0xabcdef0123456789ull);
  const ConsoleInputRecord in = decode_console_input(ev[8], "j");
  EXPECT_EQ(ev[8].icount, 2100u);
  EXPECT_EQ(in.bytes, to_bytes("b"));
  EXPECT_TRUE(decode_console_input(ev[14], "j").bytes.empty());  // i == 7: an empty input
  ASSERT_TRUE(r.has_end());
  const EndRecord e = *r.end_record();
  EXPECT_EQ(e.status, 3);
  EXPECT_EQ(e.icount, 99999u);
  EXPECT_EQ(e.time_ns, 123456u);
  EXPECT_EQ(e.state_hash, 0xabcdefu);
  ASSERT_EQ(e.digests.size(), 2u);
  EXPECT_EQ(e.digests[1].channel, 1u);
  EXPECT_EQ(r.end_event(), &ev.back());
  EXPECT_EQ(r.count(EventKind::console_input), 50u);
  EXPECT_EQ(r.count(EventKind::file_read), 2u);
  EXPECT_EQ(r.count(EventKind::idle_advance), 2u);
  EXPECT_EQ(r.count(EventKind::end), 1u);
  // Decoding as the wrong kind is an error, not garbage.
  EXPECT_THROW(decode_host_time(ev[0], "j"), JournalError);
  EXPECT_NE(describe_event(ev[8]).find("console_input at icount 2100"), std::string::npos);
}

TEST(Journal, PathStreamAndSpanReadTheSame) {
  const std::string path = temp_path("journal_test_path.reel");
  {
    JournalWriter w(path, sample_header());
    write_sample(w, true);
  }
  const std::vector<u8> bytes = read_all(path);
  EXPECT_EQ(bytes, make_journal());
  const JournalReader a = JournalReader::open(path, {});
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  const JournalReader b = JournalReader::read(in, "stream", {});
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(a.file_size(), bytes.size());
  EXPECT_EQ(a.valid_size(), bytes.size());
}

TEST(Journal, EveryFlippedByteIsRefused) {
  const std::vector<u8> bytes = make_journal();
  for (size_t at = 0; at < bytes.size(); ++at) {
    for (u8 mask : {u8{0x01}, u8{0x80}}) {
      std::vector<u8> bad = bytes;
      bad[at] ^= mask;
      // The format version is not under a checksum: a flip that lands on an
      // older readable version reads the same journal (each version only
      // added to the one before).
      if (at == 8 && bad[at] >= kJournalOldestReadableVersion && bad[at] < kJournalFormatVersion) {
        EXPECT_EQ(JournalReader::parse(bad, "j.reel", {}).size(),
                  JournalReader::parse(bytes, "j.reel", {}).size());
        continue;
      }
      try {
        JournalReader::parse(bad, "j.reel", {});
        ADD_FAILURE() << "flip at byte " << at << " was accepted";
      } catch (const JournalError& e) {
        const std::string what = e.what();
        EXPECT_EQ(what.rfind("j.reel: ", 0), 0u) << what;
        EXPECT_NE(what.find(" at byte "), std::string::npos) << what;
        EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      }
    }
  }
}

size_t header_chunk_end(const std::vector<u8>& bytes) {
  return 12 + 16 + (bytes[16] | bytes[17] << 8 | bytes[18] << 16 | size_t{bytes[19]} << 24);
}

TEST(Journal, EveryTruncationIsRefusedOrAValidPrefix) {
  const std::vector<u8> bytes = make_journal();
  const size_t header_end = header_chunk_end(bytes);
  size_t accepted_prefixes = 0;
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::span<const u8> part(bytes.data(), len);
    try {
      const JournalReader r = JournalReader::parse(part, "j", {});
      // Only a cut exactly at a chunk boundary reads, and it has no end.
      EXPECT_FALSE(r.has_end());
      EXPECT_FALSE(r.truncated());
      ++accepted_prefixes;
    } catch (const JournalError& e) {
      EXPECT_NE(std::string(e.what()).find("at byte "), std::string::npos) << e.what();
    }
    try {
      const JournalReader r = JournalReader::parse(part, "j", {true});
      EXPECT_FALSE(r.has_end());
      EXPECT_LE(r.valid_size(), len);
    } catch (const JournalError& e) {
      // Only a journal without a complete header is beyond rescue.
      EXPECT_LT(len, header_end) << e.what();
    }
  }
  EXPECT_EQ(accepted_prefixes, 6u);  // after the header and after each flush
}

TEST(Journal, TruncationMessageNamesTheChunkOffset) {
  std::vector<u8> bytes = make_journal();
  const JournalReader whole = JournalReader::parse(bytes, "j", {});
  bytes.resize(bytes.size() - 3);
  try {
    JournalReader::parse(bytes, "cut.reel", {});
    FAIL();
  } catch (const JournalError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.reel: truncated chunk"), std::string::npos) << e.what();
  }
  const JournalReader prefix = JournalReader::parse(bytes, "cut.reel", {true});
  EXPECT_TRUE(prefix.truncated());
  EXPECT_EQ(prefix.size(), whole.size() - 1);  // the end event was alone in the last chunk
}

TEST(Journal, VersionMismatchNamesBothVersions) {
  std::vector<u8> bytes = make_journal();
  bytes[8] = 7;
  try {
    JournalReader::parse(bytes, "old.reel", {});
    FAIL();
  } catch (const JournalError& e) {
    EXPECT_EQ(std::string(e.what()),
              "old.reel: journal format version 7 is not supported (this reel reads versions " +
                  std::to_string(kJournalOldestReadableVersion) + " to " +
                  std::to_string(kJournalFormatVersion) + ") at byte 8");
  }
}

TEST(Journal, VersionThreeStillReads) {
  std::vector<u8> bytes = make_journal();
  bytes[8] = 3;
  const JournalReader r = JournalReader::parse(bytes, "v3.reel", {});
  EXPECT_EQ(r.format_version(), 3u);
}

TEST(Journal, NotAJournal) {
  const std::vector<u8> junk(100, 'x');
  EXPECT_THROW(JournalReader::parse(junk, "x", {}), JournalError);
  EXPECT_THROW(JournalReader::parse({}, "x", {true}), JournalError);
  EXPECT_THROW(JournalReader::open(temp_path("no-such-journal.reel"), {}), JournalError);
}

// Resealed chunks (valid checksums) with bad contents are refused too.
std::vector<u8> sealed(const std::vector<u8>& events_payload) {
  std::vector<u8> bytes = make_journal(false);
  // Keep the preamble and header chunk, then append one hand-made chunk.
  bytes.resize(header_chunk_end(bytes));
  ByteWriter w;
  w.u32v(0x56454a52);
  w.u32v(static_cast<u32>(events_payload.size()));
  w.u64v(XXH3_64bits(events_payload.data(), events_payload.size()));
  w.raw(events_payload);
  bytes.insert(bytes.end(), w.data().begin(), w.data().end());
  return bytes;
}

std::string error_of(const std::vector<u8>& bytes) {
  try {
    JournalReader::parse(bytes, "j", {});
  } catch (const JournalError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Journal, ResealedGarbageIsRefused) {
  EXPECT_NE(error_of(sealed({99, 0, 0})).find("unknown event kind 99"), std::string::npos);
  EXPECT_NE(error_of(sealed({1, 0, 20, 1, 2})).find("payload overruns its chunk"), std::string::npos);
  EXPECT_NE(error_of(sealed({1, 0, 4, 1, 2, 3, 4})).find("runs past the end"), std::string::npos);
  EXPECT_NE(error_of(sealed({1, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9})).find("stray bytes"), std::string::npos);
  EXPECT_NE(
      error_of(sealed({1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0})).find("overflows"),
      std::string::npos);
  EXPECT_NE(error_of(sealed({})).find("empty event chunk"), std::string::npos);
  // An end event, then another event.
  std::vector<u8> two_ends;
  for (int i = 0; i < 2; ++i) {
    const std::vector<u8> end = encode_end(EndRecord{0, 0, 0, 0, 0, {}});
    two_ends.push_back(static_cast<u8>(EventKind::end));
    two_ends.push_back(0);
    two_ends.push_back(static_cast<u8>(end.size()));
    two_ends.insert(two_ends.end(), end.begin(), end.end());
  }
  EXPECT_NE(error_of(sealed(two_ends)).find("events after the end event"), std::string::npos);
}

TEST(Journal, InterruptedRecordingKeepsCompleteChunks) {
  const std::vector<u8> bytes = make_journal(false);
  const JournalReader r = JournalReader::parse(bytes, "j", {});
  EXPECT_FALSE(r.has_end());
  EXPECT_EQ(r.end_event(), nullptr);
  EXPECT_FALSE(r.end_record().has_value());
  EXPECT_EQ(r.size(), 58u);
}

TEST(Journal, EventsOutOfOrderAreAnInternalError) {
  std::ostringstream out;
  JournalWriter w(out, JournalHeader{}, "mem");
  w.append(EventKind::checkpoint, 100, encode_checkpoint(1));
  EXPECT_THROW(w.append(EventKind::checkpoint, 99, encode_checkpoint(1)), std::logic_error);
}

TEST(Journal, UnwritablePathIsAnError) {
  EXPECT_THROW(JournalWriter("/nonexistent-dir/x.reel", JournalHeader{}), JournalError);
}

TEST(Journal, DiskFullIsReportedOnceAndRecordingStops) {
  JournalWriter w("/dev/full", JournalHeader{});
  EXPECT_TRUE(w.failed());
  EXPECT_NE(w.error().find("write failed"), std::string::npos) << w.error();
  w.append(EventKind::checkpoint, 0, encode_checkpoint(1));
  w.flush();
  w.close();
  EXPECT_TRUE(w.failed());
}

// A file size limit makes writes fail part-way through a chunk, like a
// full disk: the journal is cut back to its last complete chunk.
TEST(Journal, WriteFailureLeavesAValidPrefix) {
  const std::string path = temp_path("journal_test_full.reel");
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  rlimit limited = old;
  limited.rlim_cur = 5000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  u64 written = 0;
  bool failed = false;
  {
    JournalWriter w(path, sample_header());
    for (u64 i = 0; i < 400; ++i) {
      w.append(EventKind::console_input, i, encode_console_input(0, std::vector<u8>(50, 'x')));
      w.flush();
    }
    written = w.bytes_written();
    failed = w.failed();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(failed);
  EXPECT_LE(written, 5000u);
  const std::vector<u8> bytes = read_all(path);
  EXPECT_EQ(bytes.size(), written);
  const JournalReader r = JournalReader::parse(bytes, "j", {});
  EXPECT_FALSE(r.has_end());
  EXPECT_GT(r.size(), 10u);
}

// The fuzz target's seeds (tests/fuzz/corpus/journal_reader_fuzz/) are
// journals of the current format: REEL_UPDATE_FUZZ_SEEDS=1 rewrites them
// after a format change.
TEST(Journal, FuzzSeedsAreCurrent) {
  const std::string dir = REEL_SOURCE_DIR "/tests/fuzz/corpus/journal_reader_fuzz/";
  std::vector<u8> torn = make_journal();
  torn.resize(torn.size() - 5);
  const std::pair<const char*, std::vector<u8>> seeds[] = {{"sample.reel", make_journal()},
                                                           {"interrupted.reel", make_journal(false)},
                                                           {"torn.reel", torn},
                                                           {"sockets.reel", make_socket_journal()}};
  for (const auto& [name, bytes] : seeds) {
    if (std::getenv("REEL_UPDATE_FUZZ_SEEDS")) {
      std::ofstream(dir + name, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    const std::vector<u8> stored = read_all(dir + name);
    EXPECT_NO_THROW(JournalReader::parse(stored, name, {true})) << name;
  }
}

// Embedded contents are stored compressed when that is smaller, and come
// back byte for byte; ones that do not compress are stored as they are.
TEST(Journal, EmbeddedFilesAreCompressedAndRoundTrip) {
  std::vector<u8> text;
  for (int i = 0; i < 20000; ++i) text.push_back(static_cast<u8>("reel kernel image "[i % 18]));
  std::vector<u8> noise(4096);
  u64 x = 88172645463325252ull;
  for (auto& b : noise) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b = static_cast<u8>(x);
  }
  JournalHeader h;
  h.inputs.push_back(InputFile{"kernel.elf", text.size(), XXH3_64bits(text.data(), text.size()), true, text});
  std::ostringstream out;
  {
    JournalWriter w(out, h, "j");
    w.append(EventKind::file_read, 5,
             encode_file_read({"noise.bin", true, noise.size(), XXH3_64bits(noise.data(), noise.size()), "",
                               true, noise}));
    w.append(EventKind::file_read, 6,
             encode_file_read(
                 {"text.bin", true, text.size(), XXH3_64bits(text.data(), text.size()), "", true, text}));
    w.close();
  }
  const std::string bytes = out.str();
  EXPECT_LT(bytes.size(), text.size() / 4 + noise.size() + 1000) << "the repeated text was not compressed";
  const JournalReader r = JournalReader::parse(to_bytes(bytes), "j", {});
  ASSERT_EQ(r.header().inputs.size(), 1u);
  EXPECT_EQ(r.header().inputs[0].bytes, text);
  EXPECT_LT(r.header().inputs[0].stored_size, text.size() / 10);
  const FileReadRecord n = decode_file_read(r.events()[0], "j");
  EXPECT_EQ(n.bytes, noise);
  EXPECT_EQ(n.stored_size, noise.size());  // stored as it is
  const FileReadRecord t = decode_file_read(r.events()[1], "j");
  EXPECT_EQ(t.bytes, text);
  EXPECT_LT(t.stored_size, text.size() / 10);
}

// A corrupted compressed stream, or a recorded size the stream cannot
// have, is refused with the file named; never inflated into a huge buffer.
TEST(Journal, CorruptedCompressedContentsAreRefused) {
  std::vector<u8> text(50000, 'z');
  const u64 hash = XXH3_64bits(text.data(), text.size());
  JournalEvent e;
  e.kind = EventKind::file_read;
  e.payload = encode_file_read({"boot.img", true, text.size(), hash, "", true, text});
  ASSERT_EQ(decode_file_read(e, "j").bytes, text);
  // The stored stream is the payload's tail: flip a byte in its middle.
  JournalEvent bad = e;
  bad.payload[bad.payload.size() - 20] ^= 0x55;
  try {
    (void)decode_file_read(bad, "j");
    FAIL() << "a corrupted stream was accepted";
  } catch (const JournalError& err) {
    EXPECT_NE(std::string(err.what()).find("boot.img"), std::string::npos) << err.what();
  }
  // A size far beyond what the stream could hold.
  JournalEvent lie;
  lie.kind = EventKind::file_read;
  lie.payload = encode_file_read({"boot.img", true, text.size(), hash, "", true, text});
  FileReadRecord huge{"boot.img", true, u64{1} << 40, hash, "", true, text};
  lie.payload = encode_file_read(huge);
  EXPECT_THROW(decode_file_read(lie, "j"), JournalError);
}

// verb_record streams Machine::save_state through deflate (many small
// writes, then RAM in one large one); the event must inflate to exactly
// what was written, like the one-span encoder's.
TEST(Journal, StreamedKeyframeInflatesToTheBytesWritten) {
  std::vector<u8> state(3 << 20, 0);
  u64 x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < state.size(); i += (i % 7 == 0) ? 1 : 97) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state[i] = static_cast<u8>(x);
  }
  const std::vector<ConsoleDigestRecord> consoles = {{0, 42, 0x1234}, {1, 7, 0x5678}};
  const std::vector<u8> streamed = encode_keyframe(0xfeedu, consoles, [&](std::ostream& os) {
    size_t at = 0;
    for (size_t n = 1; at + n < 300000; at += n, n = n % 113 + 1)
      os.write(reinterpret_cast<const char*>(state.data() + at), static_cast<std::streamsize>(n));
    const size_t big = 2 << 20;
    os.write(reinterpret_cast<const char*>(state.data() + at), static_cast<std::streamsize>(big));
    at += big;
    for (; at < state.size(); ++at) os.put(static_cast<char>(state[at]));
  });
  const std::vector<u8> spanned = encode_keyframe(0xfeedu, consoles, std::span<const u8>(state));
  for (const std::vector<u8>* payload : {&streamed, &spanned}) {
    JournalEvent e;
    e.kind = EventKind::keyframe;
    e.icount = 5;
    e.payload = *payload;
    const KeyframeRecord k = decode_keyframe(e, "j");
    EXPECT_EQ(k.state_hash, 0xfeedu);
    ASSERT_EQ(k.consoles.size(), 2u);
    EXPECT_EQ(k.consoles[1].hash, 0x5678u);
    EXPECT_EQ(k.state_size, state.size());
    EXPECT_LT(k.packed.size(), state.size() / 4);
    EXPECT_TRUE(keyframe_state(e, k, "j") == state);
  }
  // An empty state is a valid (empty) stream too.
  JournalEvent empty;
  empty.kind = EventKind::keyframe;
  empty.payload = encode_keyframe(1, {}, [](std::ostream&) {});
  const KeyframeRecord k = decode_keyframe(empty, "j");
  EXPECT_EQ(k.state_size, 0u);
  EXPECT_TRUE(keyframe_state(empty, k, "j").empty());
}

}  // namespace
}  // namespace reel
