#include "db/export.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/errors.hpp"
#include "common/json_number.hpp"
#include "db/csv.hpp"

namespace e2e {

namespace {

namespace fs = std::filesystem;

// Each table's rows, restricted to one experiment when ?1 is not NULL.
const std::vector<std::pair<std::string, std::string>>& table_queries() {
  static const std::string job_filter =
      " WHERE ?1 IS NULL OR job_id IN (SELECT j.id FROM jobs j JOIN experiments e ON e.id = j.experiment_id "
      "WHERE e.name = ?1)";
  static const std::vector<std::pair<std::string, std::string>> queries = {
      {"experiments", "SELECT * FROM experiments WHERE ?1 IS NULL OR name = ?1 ORDER BY id"},
      {"splits",
       "SELECT s.* FROM splits s JOIN experiments e ON e.id = s.experiment_id WHERE ?1 IS NULL OR e.name = "
       "?1 "
       "ORDER BY s.experiment_id, s.fold, s.case_id"},
      {"jobs",
       "SELECT j.* FROM jobs j JOIN experiments e ON e.id = j.experiment_id WHERE ?1 IS NULL OR e.name = ?1 "
       "ORDER BY j.id"},
      {"events", "SELECT * FROM events" + job_filter + " ORDER BY id"},
      {"epochs", "SELECT * FROM epochs" + job_filter + " ORDER BY job_id, epoch"},
      {"case_metrics", "SELECT * FROM case_metrics" + job_filter + " ORDER BY job_id, case_id, position"},
      {"results", "SELECT * FROM results" + job_filter + " ORDER BY job_id"},
      {"masks", "SELECT * FROM masks" + job_filter + " ORDER BY job_id, kind, step"},
      {"imports", "SELECT * FROM imports" + job_filter + " ORDER BY imported_at, bundle_sha256"},
  };
  return queries;
}

bool holds_json(const std::string& column) {
  return column == "pseudo_dice" || column == "patch" ||
         (column.size() > 5 && column.compare(column.size() - 5, 5, "_json") == 0);
}

// Replaces a masks row's blob with the file it was written to.
std::string write_mask_file(const Statement& row, int column, const fs::path& dir) {
  std::map<std::string, std::string> fields;
  for (int c = 0; c < row.column_count(); ++c) fields[row.column_name(c)] = row.text(c);
  std::string name = fmt::format("masks/job{}_{}_{}.e2et", fields["job_id"], fields["kind"], fields["step"]);
  fs::create_directories(dir / "masks");
  std::ofstream(dir / name, std::ios::binary) << row.blob(column);
  return name;
}

class TableWriter {
 public:
  TableWriter(const fs::path& dir, const std::string& table, ExportFormat format)
      : dir_(dir),
        format_(format),
        out_(dir / (table + (format == ExportFormat::Csv ? ".csv" : ".jsonl")), std::ios::binary) {}

  int64_t mask_files = 0;

  void write(const Statement& row) {
    if (format_ == ExportFormat::Csv)
      write_csv(row);
    else
      write_json(row);
  }

  void finish() {
    out_.flush();
    if (!out_) throw StoreError("cannot write the export into " + dir_.string());
  }

 private:
  std::string column_name(const Statement& row, int c) const {
    return row.column_type(c) == Statement::Type::Blob ? "topology_file" : row.column_name(c);
  }

  void write_csv(const Statement& row) {
    if (!header_written_) {
      for (int c = 0; c < row.column_count(); ++c) out_ << (c ? "," : "") << csv_escape(column_name(row, c));
      out_ << "\n";
      header_written_ = true;
    }
    for (int c = 0; c < row.column_count(); ++c) out_ << (c ? "," : "") << csv_escape(cell_text(row, c));
    out_ << "\n";
  }

  std::string cell_text(const Statement& row, int c) {
    switch (row.column_type(c)) {
      case Statement::Type::Null:
        return "";
      case Statement::Type::Integer:
        return std::to_string(row.int64(c));
      case Statement::Type::Real:
        return fmt::format("{}", row.real(c));
      case Statement::Type::Blob:
        return blob_file(row, c);
      default:
        return row.text(c);
    }
  }

  void write_json(const Statement& row) {
    nlohmann::ordered_json object;
    for (int c = 0; c < row.column_count(); ++c) {
      const std::string name = column_name(row, c);
      switch (row.column_type(c)) {
        case Statement::Type::Null:
          object[name] = nullptr;
          break;
        case Statement::Type::Integer:
          object[name] = row.int64(c);
          break;
        case Statement::Type::Real:
          object[name] = json_number<nlohmann::ordered_json>(row.real(c));
          break;
        case Statement::Type::Blob:
          object[name] = blob_file(row, c);
          break;
        default: {
          const std::string text = row.text(c);
          nlohmann::ordered_json parsed = holds_json(name)
                                              ? nlohmann::ordered_json::parse(text, nullptr, false)
                                              : nlohmann::ordered_json();
          object[name] = parsed.is_discarded() || !holds_json(name) ? nlohmann::ordered_json(text) : parsed;
        }
      }
    }
    out_ << object.dump() << "\n";
  }

  std::string blob_file(const Statement& row, int c) {
    ++mask_files;
    return write_mask_file(row, c, dir_);
  }

  fs::path dir_;
  ExportFormat format_;
  std::ofstream out_;
  bool header_written_ = false;
};

void check_target(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!fs::is_directory(target, ec) || !fs::is_empty(target, ec))
    throw ConfigError("export folder '" + target.string() + "' exists and is not empty; choose a new folder");
}

}  // namespace

ExportFormat parse_export_format(const std::string& text) {
  if (text == "jsonl") return ExportFormat::JsonLines;
  if (text == "csv") return ExportFormat::Csv;
  throw ConfigError("--format: expected jsonl or csv, got '" + text + "'");
}

ExportReport export_store(const StoreReader& reader, const std::string& out_dir, ExportFormat format,
                          const std::optional<std::string>& experiment) {
  fs::path target = fs::path(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "out/" → "out"
  check_target(target);
  if (experiment) reader.experiment(*experiment);  // "no such experiment" before anything is written
  const fs::path staging = target.string() + ".partial";
  fs::remove_all(staging);
  fs::create_directories(staging);
  ExportReport report;
  try {
    Transaction snapshot(reader.database(), Transaction::Kind::Deferred);
    for (const auto& [table, sql] : table_queries()) {
      Statement query = reader.database().prepare(sql);
      query.bind(1, experiment);
      TableWriter writer(staging, table, format);
      int64_t rows = 0;
      while (query.step()) {
        writer.write(query);
        ++rows;
      }
      writer.finish();
      report.rows[table] = rows;
      report.mask_files += writer.mask_files;
    }
    snapshot.commit();
    if (fs::exists(target)) fs::remove(target);  // an empty folder (checked above)
    fs::rename(staging, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw;
  }
  return report;
}

}  // namespace e2e
