#include "common/regex.h"

#include <re2/re2.h>

#include <utility>

namespace modelpulse {

Regex::Regex(std::string pattern, std::shared_ptr<const re2::RE2> compiled)
    : pattern_(std::move(pattern)), compiled_(std::move(compiled)) {}

Result<Regex> Regex::Compile(std::string_view pattern, RegexOptions options) {
  re2::RE2::Options re2_options;
  re2_options.set_log_errors(false);  // errors come back in the Result, not on stderr
  re2_options.set_case_sensitive(!options.case_insensitive);
  re2_options.set_max_mem(static_cast<int64_t>(options.max_program_memory));
  auto compiled = std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()),
                                                   re2_options);
  if (!compiled->ok()) {
    return Fail(Error::InvalidArgument("invalid regular expression \"" + std::string(pattern) +
                                       "\": " + compiled->error()));
  }
  return Regex(std::string(pattern), std::move(compiled));
}

bool Regex::FullMatch(std::string_view text) const {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *compiled_);
}

bool Regex::Search(std::string_view text) const {
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *compiled_);
}

std::optional<std::vector<std::string_view>> Regex::FullMatchGroups(std::string_view text) const {
  const int groups = compiled_->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> pieces(static_cast<std::size_t>(groups));
  if (!compiled_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(),
                        re2::RE2::ANCHOR_BOTH, pieces.data(), groups)) {
    return std::nullopt;
  }
  std::vector<std::string_view> out;
  out.reserve(pieces.size());
  for (const auto& piece : pieces) {
    out.emplace_back(piece.data() == nullptr ? std::string_view{}
                                             : std::string_view(piece.data(), piece.size()));
  }
  return out;
}

std::optional<int> Regex::GroupIndex(std::string_view name) const {
  const auto& names = compiled_->NamedCapturingGroups();
  const auto found = names.find(std::string(name));
  if (found == names.end()) return std::nullopt;
  return found->second;
}

int Regex::GroupCount() const { return compiled_->NumberOfCapturingGroups(); }

}  // namespace modelpulse
