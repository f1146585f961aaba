// The journal format: round trips of every event kind and header field,
// and corruption anywhere refused with a message naming the byte offset.

#include "replay/journal.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <unistd.h>

namespace reel {
namespace {

std::string temp_path(const char* name) { return std::string(::testing::TempDir()) + name; }

std::vector<u8> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<u8>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<u8> make_journal(bool with_end = true) {
  const std::string path = temp_path("journal_test.reel");
  JournalHeader h;
  h.argv = {"-kernel", "guest.elf", "-append", "a b"};
  h.cwd = "/somewhere";
  h.seed = 0x1234567890abcdefull;
  h.checkpoint_interval = 1000;
  h.inputs.push_back(InputFile{"guest.elf", 3, 0xfeed, true, {1, 2, 3}});
  h.metadata.emplace_back("note", "test");
  {
    JournalWriter w(path, h);
    ByteWriter t;
    t.i64v(-5);
    w.append(EventKind::host_time, 0, t.data());
    for (u64 i = 1; i <= 50; ++i) {
      ByteWriter in;
      in.u32v(0);
      in.raw(std::vector<u8>(static_cast<size_t>(i % 7), static_cast<u8>(i)));
      w.append(EventKind::console_input, i * 100, in.data());
      if (i % 10 == 0) w.flush();
    }
    if (with_end) {
      EndRecord e{0, 3, 9999, 123456, 0xabcdef};
      w.append(EventKind::end, 9999, encode_end(e));
    }
  }
  return read_all(path);
}

TEST(Journal, RoundTrip) {
  const std::vector<u8> bytes = make_journal();
  const JournalReader r = JournalReader::parse(bytes, "j", {});
  EXPECT_EQ(r.format_version(), kJournalFormatVersion);
  EXPECT_EQ(r.header().argv, (std::vector<std::string>{"-kernel", "guest.elf", "-append", "a b"}));
  EXPECT_EQ(r.header().cwd, "/somewhere");
  EXPECT_EQ(r.header().seed, 0x1234567890abcdefull);
  EXPECT_EQ(r.header().checkpoint_interval, 1000u);
  ASSERT_EQ(r.header().inputs.size(), 1u);
  EXPECT_TRUE(r.header().inputs[0].embedded);
  EXPECT_EQ(r.header().inputs[0].bytes, (std::vector<u8>{1, 2, 3}));
  ASSERT_EQ(r.events().size(), 52u);
  EXPECT_EQ(r.events()[0].kind, EventKind::host_time);
  EXPECT_EQ(r.events()[10].icount, 1000u);
  EXPECT_TRUE(r.has_end());
  const EndRecord e = decode_end(r.events().back(), "j");
  EXPECT_EQ(e.status, 3);
  EXPECT_EQ(e.state_hash, 0xabcdefu);
}

TEST(Journal, EveryFlippedByteIsRefused) {
  const std::vector<u8> bytes = make_journal();
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::vector<u8> bad = bytes;
    bad[at] ^= 0x01;
    try {
      JournalReader::parse(bad, "j", {});
      ADD_FAILURE() << "flip at byte " << at << " was accepted";
    } catch (const JournalError& e) {
      EXPECT_NE(std::string(e.what()).find("at byte "), std::string::npos) << e.what();
    }
  }
}

TEST(Journal, EveryTruncationIsRefusedOrAValidPrefix) {
  const std::vector<u8> bytes = make_journal();
  size_t accepted_prefixes = 0;
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::span<const u8> part(bytes.data(), len);
    try {
      const JournalReader r = JournalReader::parse(part, "j", {});
      // Only a cut exactly at a chunk boundary reads, and it has no end.
      EXPECT_FALSE(r.has_end());
      ++accepted_prefixes;
    } catch (const JournalError& e) {
      EXPECT_NE(std::string(e.what()).find("at byte "), std::string::npos) << e.what();
    }
    try {
      const JournalReader r = JournalReader::parse(part, "j", {true});
      EXPECT_FALSE(r.has_end());
    } catch (const JournalError&) {
    }
  }
  EXPECT_GE(accepted_prefixes, 5u);  // one per flushed chunk
}

TEST(Journal, VersionMismatchNamesBothVersions) {
  std::vector<u8> bytes = make_journal();
  bytes[8] = 7;
  try {
    JournalReader::parse(bytes, "old.reel", {});
    FAIL();
  } catch (const JournalError& e) {
    EXPECT_EQ(std::string(e.what()),
              "old.reel: journal format version 7 is not supported (this reel reads version 1) at byte 8");
  }
}

TEST(Journal, InterruptedRecordingKeepsCompleteChunks) {
  const std::vector<u8> bytes = make_journal(false);
  const JournalReader r = JournalReader::parse(bytes, "j", {});
  EXPECT_FALSE(r.has_end());
  EXPECT_EQ(r.events().size(), 51u);
}

TEST(Journal, UnwritablePathIsAnError) {
  EXPECT_THROW(JournalWriter("/nonexistent-dir/x.reel", JournalHeader{}), JournalError);
}

}  // namespace
}  // namespace reel
