#include "storage/internal/probe_codec.h"

#include <cmath>
#include <optional>

#include "storage/internal/sqlite.h"

namespace modelpulse::storage {
namespace {

constexpr double kMs = 1e3;
constexpr double kUs = 1e6;

// `seconds` in units of 1/scale s, rounded to the nearest (halves away from zero). None for
// none, NaN, infinities and magnitudes past 2^53 units, which a double could not give back
// exactly (SQLite stored NaN as NULL before too).
std::optional<int64_t> Scaled(std::optional<double> seconds, double scale) {
  if (!seconds || !std::isfinite(*seconds)) {
    return std::nullopt;
  }
  const double units = *seconds * scale;
  if (std::fabs(units) >= 9.0e15) {
    return std::nullopt;
  }
  return std::llround(units);
}

// What the view computes: the integer over its scale, as a double division (the same IEEE
// operation SQLite performs for `ms / 1e3`).
std::optional<double> Unscaled(std::optional<int64_t> units, double scale) {
  if (!units) {
    return std::nullopt;
  }
  return static_cast<double>(*units) / scale;
}

std::optional<double> RoundTrip(std::optional<double> seconds, double scale) {
  return Unscaled(Scaled(seconds, scale), scale);
}

// `value` minus `base`, where a missing base counts as 0, so the stored offset is usually small.
std::optional<int64_t> Offset(std::optional<int64_t> value, std::optional<int64_t> base) {
  if (!value) {
    return std::nullopt;
  }
  return *value - base.value_or(0);
}

constexpr std::string_view kReadLegacy = R"sql(
SELECT target_id, start_ms, seq, label_set_id, outcome, http_status, total_s,
  dns_s, connect_s, tls_s, first_byte_s, ttft_s, first_answer_s, last_token_s,
  input_tokens, output_tokens, itl_s, tokens_per_s, chunk_count,
  req_limit, req_remaining, req_reset_s, tok_limit, tok_remaining, tok_reset_s,
  retry_after_s, request_id, error
FROM probes ORDER BY target_id, start_ms, seq)sql";

// Migration 8's probe_rows as the writer of schemas 8 and 9 filled it, for migration 8's copy
// (released: never edited; migration 10 converts what it wrote). ?28 is the seq.
constexpr std::string_view kInsertSchema8RowSql = R"sql(
INSERT INTO probe_rows (target_id, start_ms, seq, label_set_id, outcome, http_status,
  dns_us, connect_us, tls_us, first_byte_ms, ttft_ms, first_answer_after_ttft_ms, last_token_ms,
  total_after_last_token_ms, input_tokens, output_tokens, itl_us, tokens_per_ks, chunk_count,
  req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms,
  retry_after_ms, request_id, error)
VALUES (?1, ?2,
  COALESCE(?28, (SELECT COALESCE(MAX(seq) + 1, 0) FROM probe_rows
                 WHERE target_id = ?1 AND start_ms = ?2)),
  ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
  ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27))sql";

void BindSchema8Row(sqlite3_stmt* s, const ProbeResult& p) {
  sqlite3_bind_int(s, 4, static_cast<int>(p.outcome));
  sqlite3_bind_int(s, 5, p.http_status);
  BindOptional(s, 6, Scaled(p.dns_seconds, kUs));
  BindOptional(s, 7, Scaled(p.connect_seconds, kUs));
  BindOptional(s, 8, Scaled(p.tls_seconds, kUs));
  BindOptional(s, 9, Scaled(p.first_byte_seconds, kMs));
  const std::optional<int64_t> ttft = Scaled(p.ttft_seconds, kMs);
  BindOptional(s, 10, ttft);
  BindOptional(s, 11, Offset(Scaled(p.first_answer_token_seconds, kMs), ttft));
  const std::optional<int64_t> last = Scaled(p.last_token_seconds, kMs);
  BindOptional(s, 12, last);
  BindOptional(s, 13, Offset(Scaled(p.total_seconds, kMs), last));
  BindOptional(s, 14, p.input_tokens);
  BindOptional(s, 15, p.output_tokens);
  BindOptional(s, 16, Scaled(p.inter_token_latency_seconds, kUs));
  // Tokens per kilosecond: a rate to 0.001 tokens/s in 3 bytes instead of an 8-byte REAL.
  BindOptional(s, 17, Scaled(p.output_tokens_per_second, kMs));
  sqlite3_bind_int64(s, 18, p.chunk_count);
  // Limits and remaining stay REAL: SQLite already stores a whole REAL as a small integer.
  BindOptional(s, 19, p.requests.limit);
  BindOptional(s, 20, p.requests.remaining);
  BindOptional(s, 21, Scaled(p.requests.reset_seconds, kMs));
  BindOptional(s, 22, p.tokens.limit);
  BindOptional(s, 23, p.tokens.remaining);
  BindOptional(s, 24, Scaled(p.tokens.reset_seconds, kMs));
  BindOptional(s, 25, Scaled(p.retry_after_seconds, kMs));
  // Evidence only where there is something to prove: a failed probe.
  if (p.outcome == Outcome::kOk || p.request_id.empty()) {
    sqlite3_bind_null(s, 26);
  } else {
    BindText(s, 26, p.request_id);
  }
  if (p.error.empty()) {
    sqlite3_bind_null(s, 27);
  } else {
    BindText(s, 27, p.error);
  }
}

}  // namespace

// ?25 (kProbeRowSeqParam) is the seq when the caller knows it; unbound (NULL) it is the next free
// number for this (target, ms): a seek in the primary key, correct across restarts and
// out-of-order appends, unlike a counter kept in memory.
const std::string_view kInsertProbeRowSql = R"sql(
INSERT INTO probe_rows (target_id, start_ms, seq, label_set_id, shape, outcome,
  dns_us, connect_us, tls_us, first_byte_ms, ttft_ms, first_answer_after_ttft_ms, last_token_ms,
  total_after_last_token_ms, output_tokens, itl_us, tokens_per_ks, chunk_count,
  req_remaining, req_reset_ms, tok_remaining, tok_reset_ms, retry_after_ms, request_id, error)
VALUES (?1, ?2,
  COALESCE(?25, (SELECT COALESCE(MAX(seq) + 1, 0) FROM probe_rows
                 WHERE target_id = ?1 AND start_ms = ?2)),
  ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
  ?19, ?20, ?21, ?22, ?23, ?24))sql";

void BindProbeRow(sqlite3_stmt* s, const ProbeResult& p) {
  sqlite3_bind_int(s, 5, static_cast<int>(p.outcome));
  BindOptional(s, 6, Scaled(p.dns_seconds, kUs));
  BindOptional(s, 7, Scaled(p.connect_seconds, kUs));
  BindOptional(s, 8, Scaled(p.tls_seconds, kUs));
  BindOptional(s, 9, Scaled(p.first_byte_seconds, kMs));
  const std::optional<int64_t> ttft = Scaled(p.ttft_seconds, kMs);
  BindOptional(s, 10, ttft);
  BindOptional(s, 11, Offset(Scaled(p.first_answer_token_seconds, kMs), ttft));
  const std::optional<int64_t> last = Scaled(p.last_token_seconds, kMs);
  BindOptional(s, 12, last);
  BindOptional(s, 13, Offset(Scaled(p.total_seconds, kMs), last));
  BindOptional(s, 14, p.output_tokens);
  BindOptional(s, 15, Scaled(p.inter_token_latency_seconds, kUs));
  // Tokens per kilosecond: a rate to 0.001 tokens/s in 3 bytes instead of an 8-byte REAL.
  BindOptional(s, 16, Scaled(p.output_tokens_per_second, kMs));
  sqlite3_bind_int64(s, 17, p.chunk_count);
  // Remaining stays REAL: SQLite already stores a whole REAL as a small integer.
  BindOptional(s, 18, p.requests.remaining);
  BindOptional(s, 19, Scaled(p.requests.reset_seconds, kMs));
  BindOptional(s, 20, p.tokens.remaining);
  BindOptional(s, 21, Scaled(p.tokens.reset_seconds, kMs));
  BindOptional(s, 22, Scaled(p.retry_after_seconds, kMs));
  // Evidence only where there is something to prove: a failed probe.
  if (p.outcome == Outcome::kOk || p.request_id.empty()) {
    sqlite3_bind_null(s, 23);
  } else {
    BindText(s, 23, p.request_id);
  }
  if (p.error.empty()) {
    sqlite3_bind_null(s, 24);
  } else {
    BindText(s, 24, p.error);
  }
}

ProbeShape ShapeOf(const ProbeResult& probe) {
  ProbeShape shape{probe.http_status, probe.input_tokens, probe.requests.limit, probe.tokens.limit};
  // SQLite stores NaN as NULL in the REAL columns.
  for (std::optional<double>* v : {&shape.requests_limit, &shape.tokens_limit}) {
    if (*v && std::isnan(**v)) {
      v->reset();
    }
  }
  return shape;
}

Result<int64_t> ShapeIds::Id(sqlite3* db, int64_t target_id, const ProbeShape& shape) {
  const auto key = std::make_pair(target_id, shape);
  if (auto it = ids_.find(key); it != ids_.end()) {
    return it->second;
  }
  if (!find_) {
    // IS: a missing value matches a missing value. A target has a few shapes, all in one leaf.
    auto find = Prepare(db, R"sql(
SELECT shape FROM probe_shapes WHERE target_id = ?1 AND http_status = ?2
  AND input_tokens IS ?3 AND req_limit IS ?4 AND tok_limit IS ?5)sql");
    auto insert = Prepare(db, R"sql(
INSERT INTO probe_shapes (target_id, shape, http_status, input_tokens, req_limit, tok_limit)
VALUES (?1, (SELECT COALESCE(MAX(shape) + 1, 0) FROM probe_shapes WHERE target_id = ?1),
  ?2, ?3, ?4, ?5))sql");
    for (const auto* statement : {&find, &insert}) {
      if (!*statement) {
        return Fail(statement->error());
      }
    }
    find_ = std::move(*find);
    insert_ = std::move(*insert);
  }
  for (sqlite3_stmt* s : {find_.get(), insert_.get()}) {
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, target_id);
    sqlite3_bind_int(s, 2, shape.http_status);
    BindOptional(s, 3, shape.input_tokens);
    BindOptional(s, 4, shape.requests_limit);
    BindOptional(s, 5, shape.tokens_limit);
  }
  ScopedReset reset_find(find_.get());
  int rc = sqlite3_step(find_.get());
  if (rc == SQLITE_DONE) {
    ScopedReset reset_insert(insert_.get());
    if (sqlite3_step(insert_.get()) != SQLITE_DONE) {
      return Fail(SqliteError(db, "inserting a probe shape", Error::Code::kIo));
    }
    sqlite3_reset(find_.get());
    rc = sqlite3_step(find_.get());
  }
  if (rc != SQLITE_ROW) {
    return Fail(SqliteError(db, "looking up a probe shape", Error::Code::kIo));
  }
  const int64_t id = sqlite3_column_int64(find_.get(), 0);
  ids_.emplace(key, id);
  return id;
}

ProbeResult AsStored(const ProbeResult& probe) {
  ProbeResult p = probe;
  p.dns_seconds = RoundTrip(p.dns_seconds, kUs);
  p.connect_seconds = RoundTrip(p.connect_seconds, kUs);
  p.tls_seconds = RoundTrip(p.tls_seconds, kUs);
  p.first_byte_seconds = RoundTrip(p.first_byte_seconds, kMs);
  p.ttft_seconds = RoundTrip(p.ttft_seconds, kMs);
  p.first_answer_token_seconds = RoundTrip(p.first_answer_token_seconds, kMs);
  p.last_token_seconds = RoundTrip(p.last_token_seconds, kMs);
  // The view gives NULL for a total that could not be stored; the reader reads NULL as 0.
  p.total_seconds = RoundTrip(p.total_seconds, kMs).value_or(0.0);
  p.inter_token_latency_seconds = RoundTrip(p.inter_token_latency_seconds, kUs);
  p.output_tokens_per_second = RoundTrip(p.output_tokens_per_second, kMs);
  p.requests.reset_seconds = RoundTrip(p.requests.reset_seconds, kMs);
  p.tokens.reset_seconds = RoundTrip(p.tokens.reset_seconds, kMs);
  p.retry_after_seconds = RoundTrip(p.retry_after_seconds, kMs);
  // SQLite stores NaN as NULL in the REAL columns.
  for (std::optional<double>* v :
       {&p.requests.limit, &p.requests.remaining, &p.tokens.limit, &p.tokens.remaining}) {
    if (*v && std::isnan(**v)) {
      v->reset();
    }
  }
  if (p.outcome == Outcome::kOk) {
    p.request_id.clear();
  }
  p.estimated_cost_dollars.reset();  // never stored
  return p;
}

StoredNumber StoredNumberOf(ProbeNumber number) {
  switch (number) {
    case ProbeNumber::kOutcome:
      return {"r.outcome", "", 1};
    case ProbeNumber::kHttpStatus:
      return {"s.http_status", "", 1};
    case ProbeNumber::kTotalSeconds:
      return {"r.total_after_last_token_ms", "r.last_token_ms", kMs};
    case ProbeNumber::kDnsSeconds:
      return {"r.dns_us", "", kUs};
    case ProbeNumber::kConnectSeconds:
      return {"r.connect_us", "", kUs};
    case ProbeNumber::kTlsSeconds:
      return {"r.tls_us", "", kUs};
    case ProbeNumber::kFirstByteSeconds:
      return {"r.first_byte_ms", "", kMs};
    case ProbeNumber::kTtftSeconds:
      return {"r.ttft_ms", "", kMs};
    case ProbeNumber::kFirstAnswerSeconds:
      return {"r.first_answer_after_ttft_ms", "r.ttft_ms", kMs};
    case ProbeNumber::kInterTokenLatencySeconds:
      return {"r.itl_us", "", kUs};
    case ProbeNumber::kOutputTokensPerSecond:
      return {"r.tokens_per_ks", "", kMs};
    case ProbeNumber::kOutputTokens:
      return {"r.output_tokens", "", 1};
    case ProbeNumber::kRequestsRemaining:
      return {"r.req_remaining", "", 1};
    case ProbeNumber::kRequestsLimit:
      return {"s.req_limit", "", 1};
    case ProbeNumber::kTokensRemaining:
      return {"r.tok_remaining", "", 1};
    case ProbeNumber::kTokensLimit:
      return {"s.tok_limit", "", 1};
    case ProbeNumber::kRetryAfterSeconds:
      return {"r.retry_after_ms", "", kMs};
  }
  return {"NULL", "", 1};
}

std::optional<double> NumberFromColumns(sqlite3_stmt* s, int index, const StoredNumber& number) {
  if (sqlite3_column_type(s, index) == SQLITE_NULL) {
    return std::nullopt;
  }
  if (number.scale == 1) {
    return sqlite3_column_double(s, index);
  }
  // The view's (column + COALESCE(base, 0)) / scale: an integer sum, then a double division.
  int64_t units = sqlite3_column_int64(s, index);
  if (sqlite3_column_type(s, index + 1) != SQLITE_NULL) {
    units += sqlite3_column_int64(s, index + 1);
  }
  return static_cast<double>(units) / number.scale;
}

Status CopyLegacyProbes(sqlite3* db) {
  auto read = Prepare(db, kReadLegacy);
  auto insert = Prepare(db, kInsertSchema8RowSql);
  for (const auto* statement : {&read, &insert}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  sqlite3_stmt* r = read->get();
  sqlite3_stmt* w = insert->get();
  int rc = SQLITE_ROW;
  ProbeResult p;
  while ((rc = sqlite3_step(r)) == SQLITE_ROW) {
    p.outcome = static_cast<Outcome>(sqlite3_column_int(r, 4));
    p.http_status = sqlite3_column_int(r, 5);
    p.total_seconds = sqlite3_column_double(r, 6);
    p.dns_seconds = ColumnOptionalDouble(r, 7);
    p.connect_seconds = ColumnOptionalDouble(r, 8);
    p.tls_seconds = ColumnOptionalDouble(r, 9);
    p.first_byte_seconds = ColumnOptionalDouble(r, 10);
    p.ttft_seconds = ColumnOptionalDouble(r, 11);
    p.first_answer_token_seconds = ColumnOptionalDouble(r, 12);
    p.last_token_seconds = ColumnOptionalDouble(r, 13);
    p.input_tokens = ColumnOptionalInt(r, 14);
    p.output_tokens = ColumnOptionalInt(r, 15);
    p.inter_token_latency_seconds = ColumnOptionalDouble(r, 16);
    p.output_tokens_per_second = ColumnOptionalDouble(r, 17);
    p.chunk_count = sqlite3_column_int64(r, 18);
    p.requests.limit = ColumnOptionalDouble(r, 19);
    p.requests.remaining = ColumnOptionalDouble(r, 20);
    p.requests.reset_seconds = ColumnOptionalDouble(r, 21);
    p.tokens.limit = ColumnOptionalDouble(r, 22);
    p.tokens.remaining = ColumnOptionalDouble(r, 23);
    p.tokens.reset_seconds = ColumnOptionalDouble(r, 24);
    p.retry_after_seconds = ColumnOptionalDouble(r, 25);
    p.request_id = ColumnText(r, 26);
    p.error = ColumnText(r, 27);
    ScopedReset reset(w);
    sqlite3_bind_int64(w, 1, sqlite3_column_int64(r, 0));
    sqlite3_bind_int64(w, 2, sqlite3_column_int64(r, 1));
    sqlite3_bind_int64(w, 28, sqlite3_column_int64(r, 2));
    sqlite3_bind_int64(w, 3, sqlite3_column_int64(r, 3));
    BindSchema8Row(w, p);
    if (sqlite3_step(w) != SQLITE_DONE) {
      return Fail(SqliteError(db, "copying a probe into probe_rows", Error::Code::kIo));
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading the probes to migrate", Error::Code::kIo));
  }
  return {};
}

}  // namespace modelpulse::storage
