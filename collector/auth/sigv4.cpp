#include "collector/internal/auth/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/internal/percent_encoding.h"

namespace modelpulse::collector {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Trims and collapses runs of spaces to one, as botocore's ' '.join(value.split()) does.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(c);
  }
  return out;
}

// RFC 3986 dot-segment removal, plus the collapse of empty segments AWS requires for every
// service but S3 (botocore utils.remove_dot_segments).
std::string NormalizePath(std::string_view path) {
  if (path.empty()) {
    return "/";
  }
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) {
      out.push_back('/');
    }
    out.append(segments[i]);
  }
  if (path.back() == '/' && !segments.empty()) {
    out.push_back('/');
  }
  return out.empty() ? "/" : out;
}

// Query pairs, decoded then encoded strictly, sorted by key then value.
std::string CanonicalQuery(std::string_view query) {
  if (query.empty()) {
    return {};
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) {
      end = query.size();
    }
    const std::string_view item = query.substr(start, end - start);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      const std::string_view key = item.substr(0, eq);
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      pairs.emplace_back(PercentEncode(PercentDecode(key)), PercentEncode(PercentDecode(value)));
    }
    start = end + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty()) {
      out.push_back('&');
    }
    out += key + "=" + value;
  }
  return out;
}

struct UrlParts {
  std::string host;  // as the Host header carries it: the port only when not the default
  std::string path;
  std::string query;
};

Result<UrlParts> SplitUrl(std::string_view url) {
  std::string_view rest = url;
  std::string_view default_port;
  if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
    default_port = "80";
  } else if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
    default_port = "443";
  } else {
    return Fail(Error::InvalidArgument("SigV4: URL is not absolute http(s)"));
  }
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return Fail(Error::InvalidArgument("SigV4: URL must not carry user info"));
  }
  if (authority.empty()) {
    return Fail(Error::InvalidArgument("SigV4: URL has no host"));
  }
  UrlParts parts;
  const size_t colon = authority.rfind(':');
  const bool has_port =
      colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos;
  if (has_port && authority.substr(colon + 1) == default_port) {
    authority = authority.substr(0, colon);
  }
  parts.host = Lower(authority);
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  const size_t question = rest.find('?');
  parts.path = std::string(rest.substr(0, question));
  if (question != std::string_view::npos) {
    parts.query = std::string(rest.substr(question + 1));
  }
  return parts;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

std::string AmzDate(int64_t unix_seconds) {
  const auto time = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&time, &tm);
  char buffer[32];
  const size_t size = std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buffer, size);
}

Result<SigV4Signature> SignSigV4(const SigV4Request& request, const AwsCredentials& credentials,
                                 const SigV4Params& params) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return Fail(Error::InvalidArgument("SigV4: access key id or secret access key is empty"));
  }
  if (params.region.empty() || params.service.empty()) {
    return Fail(Error::InvalidArgument("SigV4: region or service is empty"));
  }
  Result<UrlParts> url = SplitUrl(request.url);
  if (!url) {
    return Fail(url.error());
  }
  const std::string amz_date = AmzDate(params.unix_seconds);
  const std::string day = amz_date.substr(0, 8);
  const std::string payload_hash = Sha256Hex(request.body);

  SigV4Signature out;
  out.headers.emplace_back("X-Amz-Date", Secret(amz_date));
  if (params.payload_hash_header == PayloadHashHeader::kSend) {
    out.headers.emplace_back("X-Amz-Content-Sha256", Secret(payload_hash));
  }
  if (!credentials.session_token.empty()) {
    out.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }

  // Lower-cased names; repeated names join their values with ',' in sending order.
  std::vector<std::pair<std::string, std::string>> canonical;
  auto add = [&](std::string_view name, std::string_view value) {
    std::string lower = Lower(name);
    std::string clean = CanonicalHeaderValue(value);
    for (auto& [existing, joined] : canonical) {
      if (existing == lower) {
        joined += "," + clean;
        return;
      }
    }
    canonical.emplace_back(std::move(lower), std::move(clean));
  };
  add("host", url->host);
  for (const auto& [name, value] : request.headers) {
    add(name, value);
  }
  for (const auto& [name, value] : out.headers) {
    add(name, value.Reveal());
  }
  std::stable_sort(canonical.begin(), canonical.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string canonical_headers;
  std::string signed_headers;
  for (const auto& [name, value] : canonical) {
    canonical_headers += name + ":" + value + "\n";
    if (!signed_headers.empty()) {
      signed_headers.push_back(';');
    }
    signed_headers += name;
  }

  // The wire path is already encoded once; AWS (not S3) signs it encoded again.
  const std::string canonical_uri = PercentEncode(NormalizePath(url->path), "/");
  out.canonical_request = std::string(request.method) + "\n" + canonical_uri + "\n" +
                          CanonicalQuery(url->query) + "\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + payload_hash;

  const std::string scope = day + "/" + params.region + "/" + params.service + "/aws4_request";
  out.string_to_sign = std::string(kAlgorithm) + "\n" + amz_date + "\n" + scope + "\n" +
                       Sha256Hex(out.canonical_request);

  std::string key = HmacSha256("AWS4" + credentials.secret_access_key.Reveal(), day);
  key = HmacSha256(key, params.region);
  key = HmacSha256(key, params.service);
  key = HmacSha256(key, "aws4_request");
  const std::string raw = HmacSha256(key, out.string_to_sign);
  out.signature = Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());

  out.headers.emplace_back(
      "Authorization",
      Secret(std::string(kAlgorithm) + " Credential=" + credentials.access_key_id.Reveal() + "/" +
             scope + ", SignedHeaders=" + signed_headers + ", Signature=" + out.signature));
  return out;
}

}  // namespace modelpulse::collector
