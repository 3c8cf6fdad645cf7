// Export of the store (or one experiment) to plain files: one JSON-lines or CSV file per table, and the
// topology blobs as files (masks/job<ID>_<kind>_<step>.e2et, Topology::serialize() bytes) referenced by the
// masks rows. The folder appears complete or not at all.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "db/reader.hpp"

namespace e2e {

enum class ExportFormat { JsonLines, Csv };
ExportFormat parse_export_format(const std::string& text);  // jsonl | csv

struct ExportReport {
  std::map<std::string, int64_t> rows;  // table → rows written
  int64_t mask_files = 0;
};

// `out_dir` must not exist or be empty (ConfigError otherwise). An unknown experiment is an InputError.
ExportReport export_store(const StoreReader& reader, const std::string& out_dir, ExportFormat format,
                          const std::optional<std::string>& experiment = {});

}  // namespace e2e
