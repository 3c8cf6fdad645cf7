// Minimal RFC 4180 CSV: quoting for output, and a reader that keeps line numbers for error messages.
#pragma once

#include <string>
#include <vector>

namespace e2e {

// Quotes the field when it holds a comma, quote, CR or LF.
std::string csv_escape(const std::string& field);

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// Splits CSV text into records, skipping blank lines and lines starting with '#'. Throws InputError naming
// `source` and the line on an unterminated quote or a stray character after a closing quote.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source);

}  // namespace e2e
