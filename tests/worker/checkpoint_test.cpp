#include "worker/checkpoint.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/errors.hpp"

namespace e2e {
namespace {

using ::testing::HasSubstr;

class CheckpointFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("e2e_ckpt_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string error_reading(const std::string& p) {
    try {
      read_checkpoint_file(p);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
};

TEST_F(CheckpointFileTest, RoundTripKeepsMetaAndPayload) {
  std::string payload(100000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7);
  write_checkpoint_file(path("a.ckpt"), {{"iteration", 42}, {"fold", 3}}, payload);
  const CheckpointFile file = read_checkpoint_file(path("a.ckpt"));
  EXPECT_EQ(file.payload, payload);
  EXPECT_EQ(file.meta["iteration"], 42);
  EXPECT_EQ(file.meta["fold"], 3);
  EXPECT_EQ(file.meta["payload_sha256"].get<std::string>().size(), 64u);
  // No temporary files are left next to it.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
}

TEST_F(CheckpointFileTest, TruncatedCorruptAndForeignFilesAreClearErrors) {
  write_checkpoint_file(path("good.ckpt"), {{"iteration", 1}}, std::string(5000, 'x'));
  std::ifstream in(path("good.ckpt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::ofstream(path("truncated.ckpt"), std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  EXPECT_THAT(error_reading(path("truncated.ckpt")), HasSubstr("truncated"));

  std::string flipped = bytes;
  flipped[flipped.size() - 100] ^= 0x01;
  std::ofstream(path("flipped.ckpt"), std::ios::binary) << flipped;
  EXPECT_THAT(error_reading(path("flipped.ckpt")), HasSubstr("corrupt"));

  std::ofstream(path("foreign.ckpt")) << "PK\x03\x04 some zip file";
  EXPECT_THAT(error_reading(path("foreign.ckpt")), HasSubstr("not an e2e checkpoint"));
  EXPECT_THAT(error_reading(path("missing.ckpt")), HasSubstr("missing.ckpt: cannot open"));
}

TEST_F(CheckpointFileTest, OverwriteReplacesAtomically) {
  write_checkpoint_file(path("c.ckpt"), {{"iteration", 1}}, "first");
  write_checkpoint_file(path("c.ckpt"), {{"iteration", 2}}, "second");
  EXPECT_EQ(read_checkpoint_file(path("c.ckpt")).payload, "second");
}

}  // namespace
}  // namespace e2e
