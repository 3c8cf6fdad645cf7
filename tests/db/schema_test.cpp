// Opening stores: fresh creation, idempotent re-open, newer schemas, foreign and corrupt files, read-only
// opens that never create or change a file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/errors.hpp"
#include "db/reader.hpp"
#include "db/schema.hpp"
#include "db_fixtures.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;

using testing::file_bytes;
using ::testing::HasSubstr;
using testing::TempFolder;
using testing::write_text;

void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

std::string input_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no InputError";
}

TEST(StoreSchema, FreshStoreHasTheCurrentVersionAndEveryTable) {
  TempFolder dir;
  const std::string path = dir.file("e2e.db");
  { Store store(path); }
  Database db(path, Database::Mode::ReadOnly);
  EXPECT_EQ(db.pragma_int("user_version"), schema_version());
  EXPECT_EQ(db.pragma_int("application_id"), kStoreApplicationId);
  for (const char* table :
       {"experiments", "splits", "jobs", "events", "epochs", "case_metrics", "results", "masks", "imports"}) {
    Statement query = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
    query.bind_all(table);
    ASSERT_TRUE(query.step());
    EXPECT_EQ(query.int64(0), 1) << table;
  }
}

TEST(StoreSchema, ReopeningKeepsDataAndVersion) {
  TempFolder dir;
  const std::string path = dir.file("e2e.db");
  {
    Store store(path);
    store.upsert_experiment(testing::experiment_info());
  }
  Store again(path);
  EXPECT_EQ(again.database().pragma_int("user_version"), schema_version());
  EXPECT_EQ(again.reader().experiments().size(), 1u);
}

TEST(StoreSchema, WalByDefaultAndRollbackJournalOnRequest) {
  TempFolder dir;
  Store wal(dir.file("wal.db"));
  Statement mode = wal.database().prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.step());
  EXPECT_EQ(mode.text(0), "wal");

  StoreOptions options;
  options.journal = JournalMode::Rollback;
  Store rollback(dir.file("nfs.db"), options);
  Statement mode2 = rollback.database().prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode2.step());
  EXPECT_EQ(mode2.text(0), "delete");
  EXPECT_GT(rollback.database().pragma_int("busy_timeout"), 0);
}

TEST(StoreSchema, NewerSchemaIsRefusedAndLeftUntouched) {
  for (JournalMode journal : {JournalMode::Rollback, JournalMode::Wal}) {
    TempFolder dir;
    const std::string path = dir.file("future.db");
    {
      StoreOptions options;
      options.journal = journal;
      Store store(path, options);
      store.upsert_experiment(testing::experiment_info());
    }
    raw_exec(path, "PRAGMA user_version = " + std::to_string(schema_version() + 1));
    ASSERT_FALSE(fs::exists(path + "-wal"));  // the last connection checkpointed everything into the file
    const std::string before = file_bytes(path);
    EXPECT_THAT(input_error_of([&] { Store store(path); }), HasSubstr("newer"));
    EXPECT_THAT(input_error_of([&] { StoreReader reader(path); }), HasSubstr("newer"));
    EXPECT_EQ(file_bytes(path), before);
  }
}

TEST(StoreSchema, NonSqliteFileIsRefusedByteIdentical) {
  TempFolder dir;
  const std::string path = dir.file("notes.db");
  write_text(path, "this is a text file, not a database\n");
  const std::string before = file_bytes(path);
  const std::string writer_error = input_error_of([&] { Store store(path); });
  EXPECT_THAT(writer_error, HasSubstr(path));
  EXPECT_THAT(writer_error, HasSubstr("not an SQLite database"));
  EXPECT_THAT(input_error_of([&] { StoreReader reader(path); }), HasSubstr("not an SQLite database"));
  EXPECT_EQ(file_bytes(path), before);
  EXPECT_FALSE(fs::exists(path + "-wal"));
  EXPECT_FALSE(fs::exists(path + "-journal"));
}

TEST(StoreSchema, CorruptStoreIsRefusedByteIdentical) {
  TempFolder dir;
  const std::string path = dir.file("corrupt.db");
  {
    StoreOptions options;
    options.journal = JournalMode::Rollback;
    Store store(path, options);
    const int64_t experiment = store.upsert_experiment(testing::experiment_info());
    store.enumerate_jobs(experiment, testing::grid({0, 1, 2, 3, 4}, {0.7, 0.8, 0.9}));
  }
  // Garbage over every page after the first: the header still says SQLite, the b-trees are gone.
  std::string bytes = file_bytes(path);
  ASSERT_GT(bytes.size(), 8192u);
  for (std::size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) & 0xff);
  write_text(path, bytes);
  const std::string writer_error = input_error_of([&] { Store store(path); });
  EXPECT_THAT(writer_error, HasSubstr(path));
  EXPECT_THAT(writer_error, HasSubstr("corrupt"));
  const std::string reader_error = input_error_of([&] {
    StoreReader reader(path);
    reader.jobs();
  });
  EXPECT_THAT(reader_error, HasSubstr(path));
  EXPECT_EQ(file_bytes(path), bytes);
}

TEST(StoreSchema, TruncatedStoreIsRefusedByteIdentical) {
  TempFolder dir;
  const std::string path = dir.file("truncated.db");
  {
    StoreOptions options;
    options.journal = JournalMode::Rollback;
    Store store(path, options);
    const int64_t experiment = store.upsert_experiment(testing::experiment_info());
    store.enumerate_jobs(experiment, testing::grid({0, 1, 2, 3, 4}, {0.7, 0.8, 0.9}));
  }
  const std::string bytes = file_bytes(path).substr(0, 4096 + 100);
  write_text(path, bytes);
  EXPECT_THAT(input_error_of([&] { Store store(path); }), HasSubstr(path));
  EXPECT_EQ(file_bytes(path), bytes);
}

TEST(StoreSchema, ForeignSqliteDatabaseIsNotAStore) {
  TempFolder dir;
  const std::string path = dir.file("other.db");
  raw_exec(path, "CREATE TABLE people (name TEXT)");
  const std::string before = file_bytes(path);
  EXPECT_THAT(input_error_of([&] { Store store(path); }), HasSubstr("not an e2e store"));
  EXPECT_THAT(input_error_of([&] { StoreReader reader(path); }), HasSubstr("not an e2e store"));
  EXPECT_EQ(file_bytes(path), before);
}

TEST(StoreSchema, ReadOnlyOpenNeverCreatesAFile) {
  TempFolder dir;
  const std::string path = dir.file("missing.db");
  EXPECT_THAT(input_error_of([&] { StoreReader reader(path); }), HasSubstr("no such file"));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(StoreSchema, ReaderSeesAWalStoreWhileTheWriterHoldsIt) {
  TempFolder dir;
  const std::string path = dir.file("live.db");
  Store store(path);
  const int64_t experiment = store.upsert_experiment(testing::experiment_info());
  store.enumerate_jobs(experiment, testing::grid({0, 1}, {0.8}));
  StoreReader reader(path);
  EXPECT_EQ(reader.jobs().size(), 2u);
  store.claim_next(experiment, 1);
  EXPECT_EQ(reader.jobs(JobFilter{JobStatus::Running, std::nullopt}).size(), 1u);
  EXPECT_THROW(reader.database().exec("DELETE FROM jobs"), StoreError);  // read-only connection
}

TEST(StoreSchema, EmptyPathIsAUsageError) {
  EXPECT_THROW(Store store(""), ConfigError);
  EXPECT_THROW(StoreReader reader(""), ConfigError);
}

}  // namespace
}  // namespace e2e
