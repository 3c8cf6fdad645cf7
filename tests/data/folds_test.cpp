// Fold splits identical to nnU-Net's (sklearn KFold(5, shuffle, 12345)) and splits_final.json I/O.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "data/dataset.hpp"
#include "data/folds.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> numbered_cases(int n) {
  std::vector<std::string> ids;
  for (int i = 1; i <= n; ++i) ids.push_back(fmt::format("case_{:03d}", i));
  return ids;
}

TEST(Folds, PermutationMatchesNumpyLegacyRandomState) {
  EXPECT_THAT(legacy_numpy_permutation(10, 12345), ElementsAre(0, 7, 3, 9, 6, 4, 1, 8, 5, 2));
  // numpy 1.24: RandomState(12345).shuffle(arange(n)) and RandomState(7) for 300 (first 12 values).
  EXPECT_THAT(legacy_numpy_permutation(12, 12345), ElementsAre(8, 0, 3, 7, 11, 10, 6, 9, 4, 1, 5, 2));
  const std::vector<int64_t> large = legacy_numpy_permutation(1000, 12345);
  EXPECT_EQ(std::vector<int64_t>(large.begin(), large.begin() + 8),
            (std::vector<int64_t>{144, 833, 270, 468, 962, 186, 942, 516}));
  const std::vector<int64_t> other_seed = legacy_numpy_permutation(300, 7);
  EXPECT_EQ(std::vector<int64_t>(other_seed.begin(), other_seed.begin() + 6),
            (std::vector<int64_t>{254, 57, 150, 66, 114, 280}));
  EXPECT_TRUE(legacy_numpy_permutation(0, 12345).empty());
  EXPECT_THAT(legacy_numpy_permutation(1, 12345), ElementsAre(0));
}

TEST(Folds, TenCasesGiveNnUNetsValidationSets) {
  const std::vector<FoldSplit> splits = kfold_splits(numbered_cases(10));
  ASSERT_EQ(splits.size(), 5u);
  EXPECT_THAT(splits[0].val, ElementsAre("case_001", "case_008"));
  EXPECT_THAT(splits[1].val, ElementsAre("case_004", "case_010"));
  EXPECT_THAT(splits[2].val, ElementsAre("case_005", "case_007"));
  EXPECT_THAT(splits[3].val, ElementsAre("case_002", "case_009"));
  EXPECT_THAT(splits[4].val, ElementsAre("case_003", "case_006"));
  EXPECT_THAT(splits[0].train, ElementsAre("case_002", "case_003", "case_004", "case_005", "case_006",
                                           "case_007", "case_009", "case_010"));
}

TEST(Folds, EveryCaseIsValidatedExactlyOnceAndFirstFoldsTakeTheRemainder) {
  const std::vector<FoldSplit> splits = kfold_splits(numbered_cases(12));
  std::map<std::string, int> validated;
  std::vector<std::size_t> sizes;
  for (const FoldSplit& split : splits) {
    sizes.push_back(split.val.size());
    EXPECT_EQ(split.train.size() + split.val.size(), 12u);
    EXPECT_TRUE(std::is_sorted(split.train.begin(), split.train.end()));
    for (const std::string& id : split.val) ++validated[id];
  }
  EXPECT_THAT(sizes, ElementsAre(3, 3, 2, 2, 2));
  EXPECT_EQ(validated.size(), 12u);
  for (const auto& [id, count] : validated) EXPECT_EQ(count, 1) << id;
  // shuffled indices 8 0 3 | 7 11 10 | 6 9 | 4 1 | 5 2
  EXPECT_THAT(splits[0].val, ElementsAre("case_001", "case_004", "case_009"));
  EXPECT_THAT(splits[1].val, ElementsAre("case_008", "case_011", "case_012"));
  EXPECT_THAT(splits[4].val, ElementsAre("case_003", "case_006"));
}

TEST(Folds, OrderOfTheInputDoesNotMatter) {
  std::vector<std::string> shuffled = numbered_cases(10);
  std::reverse(shuffled.begin(), shuffled.end());
  const std::vector<FoldSplit> a = kfold_splits(shuffled);
  const std::vector<FoldSplit> b = kfold_splits(numbered_cases(10));
  for (int f = 0; f < 5; ++f) EXPECT_EQ(a[f].val, b[f].val);
}

TEST(Folds, RejectsTooFewCasesDuplicatesAndFewerThanTwoFolds) {
  EXPECT_THROW(kfold_splits(numbered_cases(4)), InputError);
  EXPECT_THROW(kfold_splits({"a", "b", "c", "d", "e", "a"}), InputError);
  EXPECT_THROW(kfold_splits(numbered_cases(10), 1), ConfigError);
  EXPECT_EQ(kfold_splits(numbered_cases(3), 3).size(), 3u);
}

class SplitsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("e2e_splits_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream((dir_ / name).string()) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(SplitsFile, RoundTrips) {
  const std::vector<FoldSplit> splits = kfold_splits(numbered_cases(11));
  const std::string path = (dir_ / "splits_final.json").string();
  write_splits_json(path, splits);
  const std::vector<FoldSplit> back = read_splits_json(path);
  ASSERT_EQ(back.size(), splits.size());
  for (std::size_t f = 0; f < splits.size(); ++f) {
    EXPECT_EQ(back[f].train, splits[f].train);
    EXPECT_EQ(back[f].val, splits[f].val);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);  // no temporary left
}

// The case store keeps the same text inside cases.h5: the text form is what the file holds, and errors in it
// name where the text came from.
TEST_F(SplitsFile, TheTextFormIsTheFileAndItsErrorsNameTheSource) {
  const std::vector<FoldSplit> splits = kfold_splits(numbered_cases(6));
  const std::string path = (dir_ / "splits_final.json").string();
  write_splits_json(path, splits);
  std::ifstream in(path);
  const std::string file_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(splits_json_text(splits), file_text);
  const std::vector<FoldSplit> back = parse_splits_json(file_text, "cases.h5: splits_final.json");
  ASSERT_EQ(back.size(), splits.size());
  EXPECT_EQ(back[3].val, splits[3].val);
  // One case: its single fold trains and validates on it, as preprocessing writes it.
  EXPECT_EQ(parse_splits_json(R"([{"train": ["a"], "val": ["a"]}])", "x").at(0).val.at(0), "a");
  try {
    parse_splits_json(R"([{"train": ["a", "b"], "val": ["a"]}, {"train": ["a"], "val": ["b"]}])",
                      "cases.h5: splits_final.json");
    ADD_FAILURE() << "accepted a case in both train and val";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cases.h5: splits_final.json"));
  }
}

TEST_F(SplitsFile, ReadsNnUNetsFileAsWritten) {
  const std::string path = write("splits_final.json", R"([
    {"train": ["b", "c"], "val": ["a"]},
    {"train": ["a", "c"], "val": ["b"]}
  ])");
  const std::vector<FoldSplit> splits = read_splits_json(path);
  ASSERT_EQ(splits.size(), 2u);
  EXPECT_THAT(splits[1].train, ElementsAre("a", "c"));
  EXPECT_THAT(splits[1].val, ElementsAre("b"));
}

TEST_F(SplitsFile, MalformedFilesAreInputErrorsNamingTheProblem) {
  auto message = [&](const std::string& text) {
    const std::string path = write("bad.json", text);
    try {
      read_splits_json(path);
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr(path));
      return std::string(e.what());
    }
    ADD_FAILURE() << "accepted: " << text;
    return std::string();
  };
  EXPECT_THAT(message("{not json"), HasSubstr("not valid JSON"));
  EXPECT_THAT(message("[]"), HasSubstr("non-empty list"));
  EXPECT_THAT(message(R"([{"train": ["a"]}])"), HasSubstr("fold 0: expected \"val\""));
  EXPECT_THAT(message(R"([{"train": ["a"], "val": [1]}])"), HasSubstr("must hold strings"));
  EXPECT_THAT(message(R"([{"train": ["a", "b"], "val": ["b"]}])"), HasSubstr("'b' is in both"));
  EXPECT_THROW(read_splits_json((dir_ / "absent.json").string()), InputError);
}

}  // namespace
}  // namespace e2e
