#ifndef MODELPULSE_TESTS_STORAGE_TEST_SUPPORT_H_
#define MODELPULSE_TESTS_STORAGE_TEST_SUPPORT_H_

// Helpers shared by the storage tests: a temporary directory and probe records.

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/common.h"

namespace modelpulse::storage::testing {

// A fresh directory under /tmp, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mp-storage-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A successful streamed probe with every optional field set and realistic values.
inline ProbeResult FullProbe(const std::string& target, int64_t start_ms) {
  ProbeResult p;
  p.target = target;
  p.labels = {{"target", target}, {"provider", "openai"},   {"cloud", "openai"},
              {"region", "us"},   {"model", "gpt-4o-mini"}, {"tier", "prod"}};
  p.start_unix_ms = start_ms;
  p.dns_seconds = 0.0012345678901;
  p.connect_seconds = 0.0105;
  p.tls_seconds = 0.02875;
  p.first_byte_seconds = 0.231;
  p.ttft_seconds = 0.3125;
  p.first_answer_token_seconds = 0.5;
  p.last_token_seconds = 0.875;
  p.total_seconds = 0.90625;
  p.http_status = 200;
  p.outcome = Outcome::kOk;
  p.input_tokens = 14;
  p.output_tokens = 16;
  p.inter_token_latency_seconds = 0.025;
  p.output_tokens_per_second = 41.7;
  p.chunk_count = 18;
  p.requests = {10000.0, 9999.0, 0.006};
  p.tokens = {200000.0, 199970.0, 0.009};
  p.retry_after_seconds = 1.5;
  p.request_id = "chatcmpl-9aBcDeFgHiJkLmNoPqRsTuVwXyZ01";
  p.error = "";
  return p;
}

}  // namespace modelpulse::storage::testing

#endif  // MODELPULSE_TESTS_STORAGE_TEST_SUPPORT_H_
