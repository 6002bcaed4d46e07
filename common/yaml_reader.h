#ifndef MODELPULSE_COMMON_YAML_READER_H_
#define MODELPULSE_COMMON_YAML_READER_H_

// Reading YAML documents the way every modelpulse file format wants: problems are collected with
// their file:line:column position rather than thrown, maps are checked for unknown and repeated
// keys (with a "did you mean" suggestion), and typed scalars report their own problems.
//
// This header includes yaml-cpp, so it is deliberately not part of common/common.h: only the units
// that read YAML (daemon config, the collector's provider sections, rule files, simulator
// scenarios) include it.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/duration.h"
#include "common/result.h"

namespace modelpulse::yaml {

// Every problem found in one file, with its position. Not thread-safe; one per parse.
class Diagnostics {
 public:
  struct Problem {
    int line = 0;  // 1-based; 0 when there is nothing to point at
    int column = 0;
    std::string message;
  };

  // `mark` may be null (nothing to point at): the problem is then reported without a position.
  void Add(const YAML::Mark& mark, std::string message);
  bool empty() const { return problems_.empty(); }

  // One kParse Error whose message holds one line per problem, "FILE:LINE:COLUMN: message"
  // (1-based), sorted by position; problems at one position keep the order they were added in.
  Error ToError(const std::string& file) const;
  // The problem added first, alone, as a kParse Error located at "FILE:LINE:COLUMN" (just FILE
  // when it has no position): for formats that report one problem at a time, as promtool does
  // for rule files. REQUIRES: !empty().
  Error FirstToError(const std::string& file) const;
  // The problem added first, for formats that word their own report (promtool's unit-test files
  // quote Go's yaml package). REQUIRES: !empty().
  const Problem& First() const { return problems_.front(); }

 private:
  std::vector<Problem> problems_;
};

// "nothing", "a scalar", "a list", "a map": how messages name what they found instead.
std::string_view KindName(const YAML::Node& node);

// One key of a map with its value.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;

  // yaml-cpp marks an empty value at the next token, possibly lines away; the key is a better
  // place to point at.
  YAML::Mark ValueMark() const { return value.IsNull() ? key_node.Mark() : value.Mark(); }
};

// " (did you mean \"KEY\"?)" for the known key closest to `key`, or "" when none is close.
std::string Suggestion(std::string_view key, std::span<const std::string_view> known);

// The entries of a map, each key once. A null node counts as an empty map. Reports a node of
// another kind (as `path`), non-scalar keys, repeated keys and, unless `known` is empty, keys
// outside `known` (described as being `where`, e.g. `in "global"`).
std::vector<Entry> MapEntries(const YAML::Node& node, const YAML::Mark& mark, std::string_view path,
                              std::string_view where, std::span<const std::string_view> known,
                              Diagnostics& diag);

// Typed scalars. Each reports its own problem at the value (`path` names the key in messages) and
// returns nullopt.
std::optional<std::string> ReadString(const Entry& e, std::string_view path, Diagnostics& diag);
std::optional<std::string> ReadNonEmptyString(const Entry& e, std::string_view path,
                                              Diagnostics& diag);
std::optional<bool> ReadBool(const Entry& e, std::string_view path, Diagnostics& diag);
std::optional<int64_t> ReadInt(const Entry& e, std::string_view path, int64_t min, int64_t max,
                               Diagnostics& diag);

enum class Sign { kNonNegative, kPositive };

std::optional<double> ReadNumber(const Entry& e, std::string_view path, Sign sign,
                                 Diagnostics& diag);
// A Prometheus duration ("90s", "1h30m").
std::optional<Millis> ReadDuration(const Entry& e, std::string_view path, Sign sign,
                                   Diagnostics& diag);

// Parses `text`, which must hold at most one YAML document, and hands that document's root to
// `read` (not called for an empty text). Syntax errors, yaml-cpp exceptions thrown by `read`, and
// a second document (`what` names the file kind: "a config file") become problems in `diag`.
void ReadSingleDocument(std::string_view text, std::string_view what, Diagnostics& diag,
                        const std::function<void(const YAML::Node&)>& read);

// [a-zA-Z_][a-zA-Z0-9_]*: label names, environment variable names.
bool IsIdentifier(std::string_view name);

// `path` made absolute against `folder` (where relative paths in a file start), normalised.
std::filesystem::path ResolvePath(const std::filesystem::path& folder, const std::string& path);

}  // namespace modelpulse::yaml

#endif  // MODELPULSE_COMMON_YAML_READER_H_
