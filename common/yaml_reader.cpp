#include "common/yaml_reader.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <sstream>
#include <utility>

namespace modelpulse::yaml {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

void Diagnostics::Add(const YAML::Mark& mark, std::string message) {
  const bool known = !mark.is_null();
  problems_.push_back({known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, std::move(message)});
}

Error Diagnostics::ToError(const std::string& file) const {
  std::vector<Problem> sorted = problems_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  std::string text;
  for (const Problem& problem : sorted) {
    if (!text.empty()) {
      text += '\n';
    }
    text += problem.line > 0
                ? fmt::format("{}:{}:{}: {}", file, problem.line, problem.column, problem.message)
                : fmt::format("{}: {}", file, problem.message);
  }
  return Error::Parse(std::move(text));
}

Error Diagnostics::FirstToError(const std::string& file) const {
  const Problem& first = problems_.front();
  return Error::Parse(first.message, first.line > 0
                                         ? fmt::format("{}:{}:{}", file, first.line, first.column)
                                         : file);
}

std::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string Suggestion(std::string_view key, std::span<const std::string_view> known) {
  const size_t limit = key.size() <= 4 ? 1 : (key.size() <= 8 ? 2 : 3);
  size_t best = limit + 1;
  std::string_view best_key;
  for (std::string_view candidate : known) {
    const size_t distance = EditDistance(key, candidate);
    if (distance < best) {
      best = distance;
      best_key = candidate;
    }
  }
  if (best_key.empty() && key.size() >= 3) {
    // A truncated key ("api_key" for "api_key_env") is far in edits but plain to a reader.
    for (std::string_view candidate : known) {
      if (candidate.starts_with(key)) {
        best_key = candidate;
        break;
      }
    }
  }
  return best_key.empty() ? std::string() : fmt::format(" (did you mean \"{}\"?)", best_key);
}

std::vector<Entry> MapEntries(const YAML::Node& node, const YAML::Mark& mark, std::string_view path,
                              std::string_view where, std::span<const std::string_view> known,
                              Diagnostics& diag) {
  std::vector<Entry> entries;
  if (node.IsNull()) {
    return entries;
  }
  if (!node.IsMap()) {
    diag.Add(mark, fmt::format("\"{}\": expected a map, got {}", path, KindName(node)));
    return entries;
  }
  std::map<std::string, int> seen;  // key -> 1-based line
  for (auto it = node.begin(); it != node.end(); ++it) {
    // A copy: `it->` yields a temporary proxy, so a reference to its member would dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      diag.Add(key.Mark(),
               fmt::format("keys must be plain strings, got {} {}", KindName(key), where));
      continue;
    }
    const std::string name = key.Scalar();
    if (auto [pos, inserted] = seen.emplace(name, key.Mark().line + 1); !inserted) {
      diag.Add(key.Mark(),
               fmt::format("duplicate key \"{}\" {} (first at line {})", name, where, pos->second));
      continue;
    }
    if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
      diag.Add(key.Mark(),
               fmt::format("unknown key \"{}\" {}{}", name, where, Suggestion(name, known)));
      continue;
    }
    entries.push_back({name, key, value});
  }
  return entries;
}

std::optional<std::string> ReadString(const Entry& e, std::string_view path, Diagnostics& diag) {
  if (!e.value.IsScalar()) {
    diag.Add(e.ValueMark(),
             fmt::format("\"{}\": expected a string, got {}", path, KindName(e.value)));
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<std::string> ReadNonEmptyString(const Entry& e, std::string_view path,
                                              Diagnostics& diag) {
  std::optional<std::string> text = ReadString(e, path, diag);
  if (text && text->empty()) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must not be empty", path));
    return std::nullopt;
  }
  return text;
}

std::optional<bool> ReadBool(const Entry& e, std::string_view path, Diagnostics& diag) {
  bool value = false;
  if (!e.value.IsScalar() || !YAML::convert<bool>::decode(e.value, value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected true or false, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ReadInt(const Entry& e, std::string_view path, int64_t min, int64_t max,
                               Diagnostics& diag) {
  long long value = 0;
  if (!e.value.IsScalar() || !YAML::convert<long long>::decode(e.value, value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected an integer, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  if (value < min || value > max) {
    diag.Add(e.ValueMark(),
             value < min ? fmt::format("\"{}\": must be at least {}, got {}", path, min, value)
                         : fmt::format("\"{}\": must be at most {}, got {}", path, max, value));
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

std::optional<double> ReadNumber(const Entry& e, std::string_view path, Sign sign,
                                 Diagnostics& diag) {
  double value = 0;
  if (!e.value.IsScalar() || !YAML::convert<double>::decode(e.value, value) ||
      !std::isfinite(value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected a number, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  if (sign == Sign::kPositive && value <= 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must be greater than 0, got {}", path, value));
    return std::nullopt;
  }
  if (value < 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must not be negative, got {}", path, value));
    return std::nullopt;
  }
  return value;
}

std::optional<Millis> ReadDuration(const Entry& e, std::string_view path, Sign sign,
                                   Diagnostics& diag) {
  std::optional<std::string> text = ReadString(e, path, diag);
  if (!text) {
    return std::nullopt;
  }
  Result<Millis> duration = ParsePromDuration(*text);
  if (!duration) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, duration.error().message));
    return std::nullopt;
  }
  if (sign == Sign::kPositive && duration->count() <= 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must be greater than 0, got {}", path, *text));
    return std::nullopt;
  }
  return *duration;
}

bool IsIdentifier(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

namespace {

// Where each document of a stream starts: the mark of its first node (of the document start when
// it has none), without building nodes.
class DocumentMarks final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override {
    marks.push_back(mark);
    node_seen_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark) {
    if (!node_seen_ && !marks.empty()) {
      marks.back() = mark;
    }
    node_seen_ = true;
  }
  bool node_seen_ = false;
};

}  // namespace

void ReadSingleDocument(std::string_view text, std::string_view what, Diagnostics& diag,
                        const std::function<void(const YAML::Node&)>& read) {
  try {
    // Not YAML::LoadAll: on a stream whose first token is a flow entry (a lone ",") yaml-cpp
    // 0.7's LoadAll yields documents without end, gigabytes in seconds (the config fuzz target
    // found it). At most two documents are looked at: the first, and whether a second starts.
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    DocumentMarks documents;
    for (int i = 0; i < 2 && parser.HandleNextDocument(documents); ++i) {
    }
    if (documents.marks.size() > 1) {
      diag.Add(documents.marks[1], fmt::format("only one YAML document is allowed in {}", what));
    }
    const YAML::Node document = YAML::Load(std::string(text));
    if (!document.IsNull()) {
      read(document);
    }
  } catch (const YAML::ParserException& e) {
    diag.Add(e.mark, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    diag.Add(e.mark, "YAML error: " + e.msg);
  }
}

std::filesystem::path ResolvePath(const std::filesystem::path& folder, const std::string& path) {
  const std::filesystem::path p(path);
  return (p.is_absolute() ? p : folder / p).lexically_normal();
}

}  // namespace modelpulse::yaml
