#include "db/csv.hpp"

#include "common/errors.hpp"

namespace e2e {

std::string csv_escape(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

class CsvParser {
 public:
  CsvParser(const std::string& text, const std::string& source) : text_(text), source_(source) {}

  std::vector<CsvRecord> parse() {
    std::vector<CsvRecord> records;
    while (pos_ < text_.size()) {
      if (at_line_start_skippable()) {
        skip_line();
        continue;
      }
      records.push_back(record());
    }
    return records;
  }

 private:
  bool at_line_start_skippable() const {
    const char c = text_[pos_];
    return c == '\n' || c == '\r' || c == '#';
  }

  void skip_line() {
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    if (pos_ < text_.size()) ++pos_;
    ++line_;
  }

  CsvRecord record() {
    CsvRecord out;
    out.line = line_;
    for (;;) {
      out.fields.push_back(field());
      if (pos_ >= text_.size()) return out;
      const char c = text_[pos_++];
      if (c == ',') continue;
      if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      ++line_;
      return out;
    }
  }

  std::string field() {
    if (pos_ < text_.size() && text_[pos_] == '"') return quoted_field();
    const std::size_t end = text_.find_first_of(",\r\n", pos_);
    std::string out = text_.substr(pos_, end == std::string::npos ? std::string::npos : end - pos_);
    pos_ = end == std::string::npos ? text_.size() : end;
    return out;
  }

  std::string quoted_field() {
    const int start_line = line_;
    std::string out;
    ++pos_;
    for (;;) {
      if (pos_ >= text_.size())
        throw InputError(source_ + ":" + std::to_string(start_line) + ": unterminated quoted field");
      const char c = text_[pos_++];
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          out += '"';
          ++pos_;
          continue;
        }
        break;
      }
      if (c == '\n') ++line_;
      out += c;
    }
    if (pos_ < text_.size() && text_.find_first_of(",\r\n", pos_) != pos_)
      throw InputError(source_ + ":" + std::to_string(line_) + ": unexpected character '" + text_[pos_] +
                       "' after a closing quote");
    return out;
  }

  const std::string& text_;
  const std::string& source_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source) {
  return CsvParser(text, source).parse();
}

}  // namespace e2e
