#include "db/sqlite.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/errors.hpp"

namespace e2e {

namespace {

[[noreturn]] void throw_for(int rc, const std::string& path, const std::string& what, const char* detail) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_NOTADB)
    throw InputError("store '" + path + "': not an SQLite database (" + what + ")");
  if (primary == SQLITE_CORRUPT)
    throw InputError("store '" + path + "': the database file is corrupt (" + what + ": " + detail + ")");
  throw StoreError("store '" + path + "': " + what + ": " + detail);
}

std::string file_uri(const std::string& path, const char* query) {
  std::string uri = "file:";
  for (char c : std::filesystem::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#')
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else
      uri += c;
  }
  return uri + query;
}

// A reader of a WAL store needs the -wal and -shm files, and creates them when missing. In a folder it cannot
// write to no writer can be active either, so the file is opened immutable instead of failing.
std::string open_name(const std::string& path, Database::Mode mode) {
  if (mode != Database::Mode::ReadOnly) return file_uri(path, "");
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::absolute(path, ec).parent_path();
  const bool wal_present = std::filesystem::exists(path + "-wal", ec);
  if (!wal_present && access(parent.c_str(), W_OK) != 0) return file_uri(path, "?immutable=1");
  return file_uri(path, "?mode=ro");
}

}  // namespace

// ----------------------------------------------------------------------------------------------------------
// Statement

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), path_(std::move(other.path_)) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::fail(int rc, const char* what) const {
  throw_for(rc, path_, std::string(what) + " [" + sqlite3_sql(stmt_) + "]", sqlite3_errmsg(db_));
}

void Statement::bind(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) fail(rc, "bind");
}

void Statement::bind(int index, double value) {
  if (std::isnan(value)) return bind(index, std::nullopt);
  if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK) fail(rc, "bind");
}

void Statement::bind(int index, const std::string& value) {
  if (int rc =
          sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    fail(rc, "bind");
}

void Statement::bind(int index, const Blob& value) {
  if (int rc = sqlite3_bind_blob(stmt_, index, value.bytes.data(), static_cast<int>(value.bytes.size()),
                                 SQLITE_TRANSIENT);
      rc != SQLITE_OK)
    fail(rc, "bind");
}

void Statement::bind(int index, std::nullopt_t) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) fail(rc, "bind");
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const int code = sqlite3_extended_errcode(db_);
  sqlite3_reset(stmt_);
  fail(code, "step");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::column_count() const {
  return sqlite3_column_count(stmt_);
}

std::string Statement::column_name(int column) const {
  return sqlite3_column_name(stmt_, column);
}

Statement::Type Statement::column_type(int column) const {
  switch (sqlite3_column_type(stmt_, column)) {
    case SQLITE_INTEGER:
      return Type::Integer;
    case SQLITE_FLOAT:
      return Type::Real;
    case SQLITE_TEXT:
      return Type::Text;
    case SQLITE_BLOB:
      return Type::Blob;
    default:
      return Type::Null;
  }
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

double Statement::real(int column) const {
  return is_null(column) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, column);
}

std::optional<double> Statement::optional_real(int column) const {
  if (is_null(column)) return std::nullopt;
  return sqlite3_column_double(stmt_, column);
}

std::optional<int64_t> Statement::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return data ? std::string(data, sqlite3_column_bytes(stmt_, column)) : std::string();
}

std::string Statement::blob(int column) const {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  return data ? std::string(data, sqlite3_column_bytes(stmt_, column)) : std::string();
}

// ----------------------------------------------------------------------------------------------------------
// Database

void check_sqlite_header(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0) return;
  if (std::filesystem::is_directory(path, ec))
    throw InputError("store '" + path + "': is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  char header[16] = {};
  in.read(header, sizeof header);
  if (!in || std::memcmp(header, "SQLite format 3", 16) != 0)
    throw InputError("store '" + path +
                     "': not an SQLite database (the file does not start with the SQLite header)");
}

Database::Database(const std::string& path, Mode mode) : path_(path), mode_(mode) {
  if (path.empty()) throw ConfigError("--db: a store path is required");
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (mode != Mode::ReadWriteCreate && !exists) throw InputError("store '" + path + "': no such file");
  check_sqlite_header(path);
  int flags = SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::ReadOnly)
    flags |= SQLITE_OPEN_READONLY;
  else
    flags |= SQLITE_OPEN_READWRITE | (mode == Mode::ReadWriteCreate ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(open_name(path, mode).c_str(), &db_, flags | SQLITE_OPEN_URI, nullptr);
  if (rc != SQLITE_OK) {
    const std::string detail = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    if ((rc & 0xff) == SQLITE_CANTOPEN)
      throw InputError("store '" + path + "': cannot open (" + detail + ")");
    throw_for(rc, path, "open", detail.c_str());
  }
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  cache_.clear();  // statements must be finalized before the connection closes
  sqlite3_close(db_);
}

void Database::fail(int rc, const std::string& what) const {
  throw_for(rc, path_, what, sqlite3_errmsg(db_));
}

void Database::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    const std::string detail = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    throw_for(sqlite3_extended_errcode(db_), path_, "exec [" + sql.substr(0, 80) + "]", detail.c_str());
  }
}

Statement Database::prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size() + 1), &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, "prepare [" + sql.substr(0, 80) + "]");
  return Statement(db_, stmt, path_);
}

Statement& Database::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "prepare [" + sql.substr(0, 80) + "]");
    it = cache_.emplace(sql, std::make_unique<Statement>(db_, stmt, path_)).first;
  }
  it->second->reset();
  return *it->second;
}

int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int64_t Database::changes() const {
  return sqlite3_changes(db_);
}

int64_t Database::pragma_int(const std::string& name) {
  Statement statement = prepare("PRAGMA " + name);
  return statement.step() ? statement.int64(0) : 0;
}

// ----------------------------------------------------------------------------------------------------------
// Transaction

bool Database::in_transaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

Transaction::Transaction(Database& db, Kind kind) : db_(db), nested_(db.in_transaction()) {
  if (nested_)
    db_.exec("SAVEPOINT e2e_nested");
  else
    db_.exec(kind == Kind::Immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

Transaction::~Transaction() {
  if (!open_) return;
  try {
    db_.exec(nested_ ? "ROLLBACK TO e2e_nested; RELEASE e2e_nested" : "ROLLBACK");
  } catch (...) {
    // The connection already rolled back (e.g. after SQLITE_FULL); nothing left to undo.
  }
}

void Transaction::commit() {
  db_.exec(nested_ ? "RELEASE e2e_nested" : "COMMIT");
  open_ = false;
}

}  // namespace e2e
