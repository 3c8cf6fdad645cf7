// A thin RAII layer over the SQLite C API: one connection, prepared statements with bound parameters only,
// and transactions that roll back unless committed. Errors name the database file; a file that is not an
// SQLite database, or a corrupt one, is an InputError (bad input, exit code 2).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace e2e {

// An SQLite failure that is not the input's fault (busy, I/O, full disk): exit code 1.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Blob {
  const std::string& bytes;
};

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string path)
      : db_(db), stmt_(stmt), path_(std::move(path)) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite. NaN doubles and empty optionals are stored as NULL.
  void bind(int index, int64_t value);
  void bind(int index, int value) { bind(index, static_cast<int64_t>(value)); }
  void bind(int index, uint64_t value) { bind(index, static_cast<int64_t>(value)); }
  void bind(int index, double value);
  void bind(int index, const std::string& value);
  void bind(int index, const char* value) { bind(index, std::string(value)); }
  void bind(int index, const Blob& value);
  void bind(int index, std::nullopt_t);
  template <typename T>
  void bind(int index, const std::optional<T>& value) {
    if (value)
      bind(index, *value);
    else
      bind(index, std::nullopt);
  }

  template <typename... Args>
  Statement& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  bool step();  // true while a row is available
  void run();   // steps to completion, ignoring rows
  void reset();

  enum class Type { Integer, Real, Text, Blob, Null };
  int column_count() const;
  std::string column_name(int column) const;
  Type column_type(int column) const;

  bool is_null(int column) const;
  int64_t int64(int column) const;
  double real(int column) const;  // NULL reads as NaN
  std::optional<double> optional_real(int column) const;
  std::optional<int64_t> optional_int64(int column) const;
  std::string text(int column) const;  // NULL reads as ""
  std::string blob(int column) const;

 private:
  [[noreturn]] void fail(int rc, const char* what) const;
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string path_;
};

class Database {
 public:
  enum class Mode { ReadOnly, ReadWrite, ReadWriteCreate };

  // Opens `path`. ReadOnly never creates a file: a missing file is an InputError.
  Database(const std::string& path, Mode mode);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return mode_ == Mode::ReadOnly; }

  void exec(const std::string& sql);
  Statement prepare(const std::string& sql);
  // A statement kept for the connection's lifetime, reset and cleared on every call (hot paths).
  Statement& cached(const std::string& sql);

  int64_t last_insert_rowid() const;
  int64_t changes() const;
  int64_t pragma_int(const std::string& name);
  bool in_transaction() const;  // a BEGIN is open on this connection

  [[noreturn]] void fail(int rc, const std::string& what) const;

 private:
  std::string path_;
  Mode mode_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> cache_;
};

// BEGIN IMMEDIATE (writers: takes the write lock up front so the transaction cannot deadlock on upgrade) or
// BEGIN DEFERRED (readers: one consistent snapshot across several queries). Rolls back unless committed.
// Inside an open transaction it is a SAVEPOINT instead, so Store methods compose into a caller's
// transaction (a bundle import is one transaction of many Store calls): its rollback undoes only its part.
class Transaction {
 public:
  enum class Kind { Immediate, Deferred };
  explicit Transaction(Database& db, Kind kind = Kind::Immediate);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool nested_;
  bool open_ = true;
};

// Throws InputError unless the file starts with the SQLite header (a missing or empty file passes).
void check_sqlite_header(const std::string& path);

}  // namespace e2e
