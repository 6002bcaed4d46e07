#include "common/regex.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
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
  if (found == names.end())
    return std::nullopt;
  return found->second;
}

int Regex::GroupCount() const { return compiled_->NumberOfCapturingGroups(); }

namespace {

// Go's regexp.extract over letters, digits and '_'; any byte of a multi-byte UTF-8 sequence
// counts as a letter, which is what Go's unicode.IsLetter says for the letters people write.
std::size_t NameLength(std::string_view s) {
  std::size_t n = 0;
  while (n < s.size() && (std::isalnum(static_cast<unsigned char>(s[n])) != 0 || s[n] == '_' ||
                          static_cast<unsigned char>(s[n]) >= 0x80)) {
    ++n;
  }
  return n;
}

// A group number as Go reads it: digits only, no leading zero, below 1e8; else -1 (a name).
int GroupNumber(std::string_view name) {
  if (name.size() > 1 && name[0] == '0') {
    return -1;
  }
  int num = 0;
  for (char c : name) {
    if (c < '0' || c > '9' || num >= 100000000) {
      return -1;
    }
    num = num * 10 + (c - '0');
  }
  return num;
}

}  // namespace

std::string Regex::Expand(std::string_view tmpl,
                          const std::vector<std::string_view>& groups) const {
  std::string out;
  while (!tmpl.empty()) {
    const std::size_t dollar = tmpl.find('$');
    if (dollar == std::string_view::npos) {
      break;
    }
    out.append(tmpl.substr(0, dollar));
    tmpl.remove_prefix(dollar + 1);
    if (!tmpl.empty() && tmpl[0] == '$') {
      out += '$';
      tmpl.remove_prefix(1);
      continue;
    }
    const bool brace = !tmpl.empty() && tmpl[0] == '{';
    const std::string_view rest = brace ? tmpl.substr(1) : tmpl;
    const std::size_t length = NameLength(rest);
    if (length == 0 || (brace && (length >= rest.size() || rest[length] != '}'))) {
      out += '$';  // malformed: the '$' is text
      continue;
    }
    const std::string_view name = rest.substr(0, length);
    tmpl = rest.substr(length + (brace ? 1 : 0));
    int index = GroupNumber(name);
    if (index < 0) {
      // The first group of that name that took part in the match, as Go picks among duplicates.
      const auto& names = compiled_->CapturingGroupNames();
      for (const auto& [i, group_name] : names) {
        if (group_name == name && static_cast<std::size_t>(i) < groups.size() &&
            groups[static_cast<std::size_t>(i)].data() != nullptr) {
          index = i;
          break;
        }
      }
    }
    if (index >= 0 && static_cast<std::size_t>(index) < groups.size()) {
      out.append(groups[static_cast<std::size_t>(index)]);
    }
  }
  out.append(tmpl);
  return out;
}

Result<std::string> Regex::ReplaceAll(std::string_view text, std::string_view tmpl,
                                      std::size_t max_size) const {
  const int count = compiled_->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> pieces(static_cast<std::size_t>(count));
  std::vector<std::string_view> groups(pieces.size());
  const re2::StringPiece whole(text.data(), text.size());
  std::string out;
  std::size_t last_end = 0;
  std::size_t search = 0;
  // Go's replaceAll loop: an empty match right after a match is not replaced, and the search
  // always advances by at least one character.
  while (search <= text.size()) {
    if (!compiled_->Match(whole, search, text.size(), re2::RE2::UNANCHORED, pieces.data(), count)) {
      break;
    }
    const auto begin = static_cast<std::size_t>(pieces[0].data() - text.data());
    const std::size_t end = begin + pieces[0].size();
    out.append(text.substr(last_end, begin - last_end));
    if (end > last_end || begin == 0) {
      for (std::size_t i = 0; i < pieces.size(); ++i) {
        groups[i] = pieces[i].data() == nullptr
                        ? std::string_view{}
                        : std::string_view(pieces[i].data(), pieces[i].size());
      }
      out.append(Expand(tmpl, groups));
    }
    if (out.size() > max_size) {
      return Fail(Error::InvalidArgument("regular expression replacement longer than " +
                                         std::to_string(max_size) + " bytes"));
    }
    last_end = end;
    std::size_t width = 1;
    if (search < text.size()) {
      const auto lead = static_cast<unsigned char>(text[search]);
      width = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      width = std::min(width, text.size() - search);
    }
    search = search + width > end ? search + width : end;
  }
  out.append(text.substr(last_end));
  if (out.size() > max_size) {
    return Fail(Error::InvalidArgument("regular expression replacement longer than " +
                                       std::to_string(max_size) + " bytes"));
  }
  return out;
}

}  // namespace modelpulse
