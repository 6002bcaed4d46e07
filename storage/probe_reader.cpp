#include "storage/internal/probe_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "storage/internal/label_codec.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/rollup.h"

namespace modelpulse::storage {
namespace {

constexpr std::string_view kReadProbes = R"sql(
SELECT start_ms, label_set_id, outcome, http_status, total_s,
  dns_s, connect_s, tls_s, first_byte_s, ttft_s, first_answer_s, last_token_s,
  input_tokens, output_tokens, itl_s, tokens_per_s, chunk_count,
  req_limit, req_remaining, req_reset_s, tok_limit, tok_remaining, tok_reset_s,
  retry_after_s, request_id, error
FROM probes
WHERE target_id = (SELECT id FROM targets WHERE name = ?1) AND start_ms >= ?2 AND start_ms < ?3
ORDER BY start_ms, seq)sql";

constexpr std::string_view kListTargets = R"sql(
SELECT name, labels FROM targets
WHERE EXISTS (SELECT 1 FROM probes WHERE probes.target_id = targets.id)
ORDER BY name)sql";

Error StepError(sqlite3* db, std::string_view what) {
  return SqliteError(db, what, Error::Code::kIo);
}

// The rollup statements' parameters: one field of one target, the buckets wholly inside
// [from_ms, to_ms), that is bucket_ms in [from_ms, to_ms - bucket length].
void BindBuckets(sqlite3_stmt* s, int64_t target_id, ProbeField field, int64_t from_ms,
                 int64_t to_ms) {
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int(s, 2, static_cast<int>(field));
  sqlite3_bind_int64(s, 3, from_ms);
  sqlite3_bind_int64(s, 4, to_ms - kRollupBucketMs);
}

}  // namespace

Result<std::unique_ptr<ProbeReader>> ProbeReader::Create(DbHandle db) {
  auto reader = std::make_unique<ProbeReader>(std::move(db));
  sqlite3* raw = reader->db_.get();
  auto read = Prepare(raw, kReadProbes);
  auto label_set = Prepare(raw, "SELECT labels FROM label_sets WHERE id = ?1");
  auto targets = Prepare(raw, kListTargets);
  for (const auto* statement : {&read, &label_set, &targets}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  auto target_ids = Prepare(raw, R"sql(
SELECT id, name, labels FROM targets
WHERE EXISTS (SELECT 1 FROM probes WHERE probes.target_id = targets.id)
ORDER BY name)sql");
  auto rollups = Prepare(raw, R"sql(
SELECT bucket_ms, label_set_id, count, sum, min, max, first_ms, last_ms, first_value, second_ms
FROM rollups
WHERE target_id = ?1 AND field = ?2 AND bucket_ms >= ?3 AND bucket_ms <= ?4
ORDER BY bucket_ms, label_set_id)sql");
  // Every rollup, with its values where they are kept: a rollup without them reads as such.
  auto rollup_values = Prepare(raw, R"sql(
SELECT r.bucket_ms, r.label_set_id, r.count, v.vals FROM rollups AS r
LEFT JOIN rollup_values AS v ON v.target_id = r.target_id AND v.field = r.field
  AND v.bucket_ms = r.bucket_ms AND v.label_set_id = r.label_set_id
WHERE r.target_id = ?1 AND r.field = ?2 AND r.bucket_ms >= ?3 AND r.bucket_ms <= ?4
ORDER BY r.bucket_ms, r.label_set_id)sql");
  for (const auto* statement : {&target_ids, &rollups, &rollup_values}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  reader->list_target_ids_ = std::move(*target_ids);
  reader->read_rollups_ = std::move(*rollups);
  reader->read_rollup_values_ = std::move(*rollup_values);
  reader->read_probes_ = std::move(*read);
  reader->read_label_set_ = std::move(*label_set);
  reader->list_targets_ = std::move(*targets);
  return reader;
}

Result<const Labels*> ProbeReader::LabelSet(int64_t id) {
  if (auto it = label_sets_.find(id); it != label_sets_.end()) {
    return &it->second;
  }
  sqlite3_stmt* s = read_label_set_.get();
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, id);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    return Fail(Error::Internal(fmt::format("probe refers to missing label set {}", id)));
  }
  if (rc != SQLITE_ROW) {
    return Fail(StepError(db_.get(), "reading label set"));
  }
  auto labels = DecodeLabels(ColumnText(s, 0));
  if (!labels) {
    return Fail(labels.error());
  }
  return &label_sets_.emplace(id, std::move(*labels)).first->second;
}

Result<std::vector<ProbeResult>> ProbeReader::Read(std::string_view target, int64_t from_ms,
                                                   int64_t to_ms) {
  std::vector<ProbeResult> out;
  if (from_ms >= to_ms) {
    return out;
  }
  std::lock_guard lock(mu_);
  sqlite3_stmt* s = read_probes_.get();
  ScopedReset reset(s);
  BindText(s, 1, target);
  sqlite3_bind_int64(s, 2, from_ms);
  sqlite3_bind_int64(s, 3, to_ms);
  int rc = SQLITE_ROW;
  int64_t cached_set_id = -1;
  const Labels* labels = nullptr;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ProbeResult& p = out.emplace_back();
    p.target = std::string(target);
    p.start_unix_ms = sqlite3_column_int64(s, 0);
    const int64_t set_id = sqlite3_column_int64(s, 1);
    if (set_id != cached_set_id) {
      auto found = LabelSet(set_id);
      if (!found) {
        return Fail(found.error());
      }
      labels = *found;
      cached_set_id = set_id;
    }
    p.labels = *labels;
    p.outcome = static_cast<Outcome>(sqlite3_column_int(s, 2));
    p.http_status = sqlite3_column_int(s, 3);
    p.total_seconds = sqlite3_column_double(s, 4);
    p.dns_seconds = ColumnOptionalDouble(s, 5);
    p.connect_seconds = ColumnOptionalDouble(s, 6);
    p.tls_seconds = ColumnOptionalDouble(s, 7);
    p.first_byte_seconds = ColumnOptionalDouble(s, 8);
    p.ttft_seconds = ColumnOptionalDouble(s, 9);
    p.first_answer_token_seconds = ColumnOptionalDouble(s, 10);
    p.last_token_seconds = ColumnOptionalDouble(s, 11);
    p.input_tokens = ColumnOptionalInt(s, 12);
    p.output_tokens = ColumnOptionalInt(s, 13);
    p.inter_token_latency_seconds = ColumnOptionalDouble(s, 14);
    p.output_tokens_per_second = ColumnOptionalDouble(s, 15);
    p.chunk_count = sqlite3_column_int64(s, 16);
    p.requests.limit = ColumnOptionalDouble(s, 17);
    p.requests.remaining = ColumnOptionalDouble(s, 18);
    p.requests.reset_seconds = ColumnOptionalDouble(s, 19);
    p.tokens.limit = ColumnOptionalDouble(s, 20);
    p.tokens.remaining = ColumnOptionalDouble(s, 21);
    p.tokens.reset_seconds = ColumnOptionalDouble(s, 22);
    p.retry_after_seconds = ColumnOptionalDouble(s, 23);
    p.request_id = ColumnText(s, 24);
    p.error = ColumnText(s, 25);
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "reading probes"));
  }
  return out;
}

Result<std::vector<std::pair<std::string, Labels>>> ProbeReader::Targets() {
  std::vector<std::pair<std::string, Labels>> out;
  std::lock_guard lock(mu_);
  sqlite3_stmt* s = list_targets_.get();
  ScopedReset reset(s);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto labels = DecodeLabels(ColumnText(s, 1));
    if (!labels) {
      return Fail(labels.error());
    }
    out.emplace_back(ColumnText(s, 0), std::move(*labels));
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "listing targets"));
  }
  return out;
}

Result<std::vector<StoredTarget>> ProbeReader::ListTargets() {
  std::vector<StoredTarget> out;
  std::lock_guard lock(mu_);
  sqlite3_stmt* s = list_target_ids_.get();
  ScopedReset reset(s);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto labels = DecodeLabels(ColumnText(s, 2));
    if (!labels) {
      return Fail(labels.error());
    }
    out.push_back({sqlite3_column_int64(s, 0), ColumnText(s, 1), std::move(*labels)});
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "listing targets"));
  }
  return out;
}

Result<sqlite3_stmt*> ProbeReader::FieldStatement(ProbeField field) {
  const FieldColumns columns = ColumnsOf(field);
  StatementHandle& slot = read_field_[static_cast<size_t>(field)];
  if (!slot) {
    // Only the field's own columns: the row is still visited whole (WITHOUT ROWID keeps it in
    // the key's leaf), but nothing else is decoded or copied.
    std::string sql = "SELECT start_ms, label_set_id, ";
    sql += kFieldColumnNames[static_cast<size_t>(columns.a)];
    sql += ", ";
    sql += columns.b < 0 ? std::string_view("NULL")
                         : kFieldColumnNames[static_cast<size_t>(columns.b)];
    sql +=
        " FROM probes WHERE target_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 "
        "ORDER BY start_ms, seq";
    auto prepared = Prepare(db_.get(), sql);
    if (!prepared) {
      return Fail(prepared.error());
    }
    slot = std::move(*prepared);
  }
  return slot.get();
}

Status ProbeReader::StepField(sqlite3_stmt* s, ProbeField field, int64_t target_id, int64_t from_ms,
                              int64_t to_ms, std::vector<FieldPoint>& out) {
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, from_ms);
  sqlite3_bind_int64(s, 3, to_ms);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const std::optional<double> value =
        FieldFromColumns(field, ColumnOptionalDouble(s, 2), ColumnOptionalDouble(s, 3));
    if (value) {
      out.push_back({sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), *value});
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "reading a probe field"));
  }
  return {};
}

Result<std::vector<FieldPoint>> ProbeReader::ReadField(int64_t target_id, ProbeField field,
                                                       int64_t from_ms, int64_t to_ms) {
  std::vector<FieldPoint> out;
  const int f = static_cast<int>(field);
  if (from_ms >= to_ms || f < 0 || f >= kProbeFieldCount) {
    return out;
  }
  std::lock_guard lock(mu_);
  auto s = FieldStatement(field);
  if (!s) {
    return Fail(s.error());
  }
  if (auto status = StepField(*s, field, target_id, from_ms, to_ms, out); !status) {
    return Fail(status.error());
  }
  return out;
}

Result<std::vector<std::vector<FieldPoint>>> ProbeReader::ReadFieldIn(
    int64_t target_id, ProbeField field,
    const std::vector<std::pair<int64_t, int64_t>>& intervals) {
  std::vector<std::vector<FieldPoint>> out(intervals.size());
  const int f = static_cast<int>(field);
  if (f < 0 || f >= kProbeFieldCount) {
    return out;
  }
  std::lock_guard lock(mu_);
  auto s = FieldStatement(field);
  if (!s) {
    return Fail(s.error());
  }
  // One read transaction for all the intervals: each statement on its own would take and drop
  // the WAL read lock (two fcntl calls) and re-read the file's header page.
  if (sqlite3_exec(db_.get(), "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail(StepError(db_.get(), "starting a read"));
  }
  Status status;
  for (size_t i = 0; i < intervals.size() && status; ++i) {
    const auto [from_ms, to_ms] = intervals[i];
    if (from_ms < to_ms) {
      status = StepField(*s, field, target_id, from_ms, to_ms, out[i]);
    }
  }
  // A read transaction has nothing to commit; COMMIT ends it either way.
  sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
  if (!status) {
    return Fail(status.error());
  }
  return out;
}

Result<std::vector<FieldRollup>> ProbeReader::ReadRollups(int64_t target_id, ProbeField field,
                                                          int64_t from_ms, int64_t to_ms) {
  std::vector<FieldRollup> out;
  if (to_ms - from_ms < kRollupBucketMs) {
    return out;
  }
  std::lock_guard lock(mu_);
  sqlite3_stmt* s = read_rollups_.get();
  ScopedReset reset(s);
  BindBuckets(s, target_id, field, from_ms, to_ms);
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    out.push_back(
        {sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2),
         ColumnOptionalDouble(s, 3).value_or(kNaN), ColumnOptionalDouble(s, 4).value_or(kNaN),
         ColumnOptionalDouble(s, 5).value_or(kNaN), ColumnOptionalInt(s, 6).value_or(INT64_MIN),
         ColumnOptionalInt(s, 7).value_or(INT64_MAX), ColumnOptionalDouble(s, 8),
         ColumnOptionalInt(s, 9).value_or(INT64_MIN)});
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "reading rollups"));
  }
  return out;
}

Result<std::vector<RollupValues>> ProbeReader::ReadRollupValues(int64_t target_id, ProbeField field,
                                                                int64_t from_ms, int64_t to_ms) {
  std::vector<RollupValues> out;
  if (to_ms - from_ms < kRollupBucketMs) {
    return out;
  }
  std::lock_guard lock(mu_);
  sqlite3_stmt* s = read_rollup_values_.get();
  ScopedReset reset(s);
  BindBuckets(s, target_id, field, from_ms, to_ms);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    RollupValues& r = out.emplace_back();
    r.bucket_ms = sqlite3_column_int64(s, 0);
    r.label_set_id = sqlite3_column_int64(s, 1);
    r.count = sqlite3_column_int64(s, 2);
    // Bytes whatever the type: the writer's || appends make TEXT of them.
    const void* data = sqlite3_column_blob(s, 3);
    if (auto values = DecodeValues(data, static_cast<size_t>(sqlite3_column_bytes(s, 3)));
        data != nullptr && values) {
      r.values = std::move(*values);
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "reading rollup values"));
  }
  return out;
}

Status ProbeReader::ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                                      const std::function<void(const CounterPoint&)>& each) {
  if (from_ms >= to_ms) {
    return {};
  }
  std::lock_guard lock(mu_);
  if (!read_counter_inputs_) {
    auto prepared = CounterInputsStatement::Prepare(db_.get());
    if (!prepared) {
      return Fail(prepared.error());
    }
    read_counter_inputs_ = std::move(*prepared);
  }
  return read_counter_inputs_->Scan(db_.get(), target_id, from_ms, to_ms,
                                    [&each](const CounterPoint& p) {
                                      each(p);
                                      return true;
                                    });
}

Result<std::vector<CounterFirstSeen>> ProbeReader::FirstSeenCounters(int64_t target_id) {
  std::lock_guard lock(mu_);
  return ReadFirstSeen(db_.get(), target_id);
}

Result<Labels> ProbeReader::LabelSetOf(int64_t id) {
  std::lock_guard lock(mu_);
  auto labels = LabelSet(id);
  if (!labels) {
    return Fail(labels.error());
  }
  return **labels;
}

}  // namespace modelpulse::storage
