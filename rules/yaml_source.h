// Positions in YAML files as an editor shows them, for the errors that policy
// staff read (rules.md): yaml-cpp marks are 0-based lines and byte columns,
// people count lines from 1 and columns in characters from 1.
#ifndef CARECARD_RULES_YAML_SOURCE_H_
#define CARECARD_RULES_YAML_SOURCE_H_

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "rules/spelling.h"

namespace carecard {

struct Location {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in code points
};

// Maps yaml-cpp marks (0-based line, 0-based byte column) to what an editor
// shows: 1-based line and 1-based column counted in characters.
// Keeps views into the text: it must outlive the SourceText.
class SourceText {
 public:
  explicit SourceText(std::string_view text) {
    // yaml-cpp does not count a byte-order mark in line 1's columns.
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    size_t start = 0;
    while (true) {
      const size_t newline = text.find('\n', start);
      lines_.push_back(text.substr(start, newline == std::string_view::npos ? std::string_view::npos : newline - start));
      if (newline == std::string_view::npos) break;
      start = newline + 1;
    }
  }

  std::string_view Line(int zero_based_line) const {
    if (zero_based_line < 0 || static_cast<size_t>(zero_based_line) >= lines_.size()) return {};
    return lines_[static_cast<size_t>(zero_based_line)];
  }

  Location At(const YAML::Mark& mark) const {
    if (mark.line < 0) return Location{};
    const std::string_view line = Line(mark.line);
    const size_t byte_column = static_cast<size_t>(std::max(mark.column, 0));
    const size_t within = std::min(byte_column, line.size());
    const size_t column = CountCodePoints(line.substr(0, within)) + (byte_column - within);
    return Location{mark.line + 1, static_cast<int>(column) + 1};
  }

 private:
  std::vector<std::string_view> lines_;
};

}  // namespace carecard

#endif  // CARECARD_RULES_YAML_SOURCE_H_
