#include "storage/internal/summary.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "storage/internal/sqlite.h"
#include "storage/internal/varint.h"

namespace modelpulse::storage {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int kFirstOutcomeColumn = 4;
constexpr int kFirstTokenColumn = kFirstOutcomeColumn + static_cast<int>(kOutcomeCount);

// The table's columns in the order every statement here reads and binds them.
std::string ColumnsSql() {
  std::string sql = "target_id, span_ms, bucket_ms, probes";
  for (Outcome outcome : kAllOutcomes) {
    sql += ", ";
    sql += OutcomeName(outcome);
  }
  return sql + ", first_token, total, tokens_per_s_sum, tokens_per_s_count, down_minutes";
}

// down_minutes: per minute, in order, the varint of its offset in minutes from the previous one
// (the first from the bucket's start) and the varint of its outcome mask.
std::string EncodeMinutes(int64_t bucket_ms, const std::map<int64_t, OutcomeMask>& minutes) {
  std::string out;
  int64_t previous = 0;
  for (const auto& [minute, mask] : minutes) {
    const int64_t offset = (minute - bucket_ms) / kMinuteMs;
    PutVarint(out, static_cast<uint64_t>(offset - previous));
    PutVarint(out, mask);
    previous = offset;
  }
  return out;
}

bool DecodeMinutes(int64_t bucket_ms, int64_t span_ms, std::string_view bytes,
                   std::map<int64_t, OutcomeMask>& out) {
  uint64_t offset = 0;
  while (!bytes.empty()) {
    uint64_t delta = 0;
    uint64_t mask = 0;
    if (!GetVarint(bytes, delta) || !GetVarint(bytes, mask)) {
      return false;
    }
    offset += delta;
    if (offset >= static_cast<uint64_t>(span_ms / kMinuteMs)) {
      return false;
    }
    out[bucket_ms + static_cast<int64_t>(offset) * kMinuteMs] = static_cast<OutcomeMask>(mask);
  }
  return true;
}

std::string_view ColumnBlob(sqlite3_stmt* s, int index) {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(s, index));
  return {data == nullptr ? "" : data, static_cast<size_t>(sqlite3_column_bytes(s, index))};
}

// The digest of a row read with ColumnsSql() from column 3 on.
Result<ProbeDigest> DigestOfRow(sqlite3_stmt* s, int64_t span_ms, int64_t bucket_ms) {
  ProbeDigest d;
  d.probes = sqlite3_column_int64(s, 3);
  for (size_t i = 0; i < kOutcomeCount; ++i) {
    d.outcomes[i] = sqlite3_column_int64(s, kFirstOutcomeColumn + static_cast<int>(i));
  }
  for (int i = 0; i < 2; ++i) {
    if (sqlite3_column_type(s, kFirstTokenColumn + i) == SQLITE_NULL) {
      continue;
    }
    auto sketch = DDSketch::Decode(ColumnBlob(s, kFirstTokenColumn + i));
    if (!sketch) {
      return Fail(Error::Io("probe_summaries: undecodable sketch"));
    }
    (i == 0 ? d.first_token : d.total) = std::move(*sketch);
  }
  d.tokens_per_s_sum = sqlite3_column_double(s, kFirstTokenColumn + 2);
  d.tokens_per_s_count = sqlite3_column_int64(s, kFirstTokenColumn + 3);
  if (sqlite3_column_type(s, kFirstTokenColumn + 4) != SQLITE_NULL &&
      !DecodeMinutes(bucket_ms, span_ms, ColumnBlob(s, kFirstTokenColumn + 4), d.down_minutes)) {
    return Fail(Error::Io("probe_summaries: undecodable down_minutes"));
  }
  return d;
}

void BindBlobOrNull(sqlite3_stmt* s, int index, const std::string& bytes, bool null) {
  if (null) {
    sqlite3_bind_null(s, index);
  } else {
    sqlite3_bind_blob(s, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  }
}

Result<StatementHandle> PrepareWrite(sqlite3* db) {
  std::string params;
  for (int i = 1; i <= kFirstTokenColumn + 5; ++i) {
    params += (i == 1 ? "?" : ", ?") + std::to_string(i);
  }
  return Prepare(
      db, "INSERT OR REPLACE INTO probe_summaries (" + ColumnsSql() + ") VALUES (" + params + ")");
}

Status WriteDigest(sqlite3* db, sqlite3_stmt* s, int64_t target_id, int64_t span_ms,
                   int64_t bucket_ms, const ProbeDigest& d) {
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, span_ms);
  sqlite3_bind_int64(s, 3, bucket_ms);
  sqlite3_bind_int64(s, 4, d.probes);
  for (size_t i = 0; i < kOutcomeCount; ++i) {
    sqlite3_bind_int64(s, kFirstOutcomeColumn + 1 + static_cast<int>(i), d.outcomes[i]);
  }
  BindBlobOrNull(s, kFirstTokenColumn + 1, d.first_token.Encode(), d.first_token.Empty());
  BindBlobOrNull(s, kFirstTokenColumn + 2, d.total.Encode(), d.total.Empty());
  sqlite3_bind_double(s, kFirstTokenColumn + 3, d.tokens_per_s_sum);
  sqlite3_bind_int64(s, kFirstTokenColumn + 4, d.tokens_per_s_count);
  BindBlobOrNull(s, kFirstTokenColumn + 5, EncodeMinutes(bucket_ms, d.down_minutes),
                 d.down_minutes.empty());
  if (sqlite3_step(s) != SQLITE_DONE) {
    return Fail(SqliteError(db, "writing probe summaries", Error::Code::kIo));
  }
  return {};
}

void AddToDigest(ProbeDigest& d, const SummaryProbe& p) {
  ++d.probes;
  const auto index = static_cast<size_t>(p.outcome);
  if (index < kOutcomeCount) {
    ++d.outcomes[index];
  }
  if (p.outcome == Outcome::kOk) {
    if (p.ttft_s) {
      d.first_token.Add(*p.ttft_s);
    }
    d.total.Add(p.total_s);
    if (p.tokens_per_s) {
      d.tokens_per_s_sum += *p.tokens_per_s;
      ++d.tokens_per_s_count;
    }
  }
}

}  // namespace

Status UpdateSummaries(sqlite3* db, std::span<const SummaryProbe> probes, SummaryCache* cache) {
  if (probes.empty()) {
    return {};
  }
  // What the batch adds per (target, span, bucket), without minutes.
  std::map<std::tuple<int64_t, int64_t, int64_t>, ProbeDigest> added;
  // Per (target, minute): whether the batch has an ok probe in it.
  std::map<std::pair<int64_t, int64_t>, bool> minutes;
  for (const SummaryProbe& p : probes) {
    for (int64_t span : {kSummaryHourMs, kSummaryDayMs}) {
      AddToDigest(added[{p.target_id, span, FloorTo(p.start_ms, span)}], p);
    }
    bool& ok = minutes[{p.target_id, FloorTo(p.start_ms, kMinuteMs)}];
    ok = ok || p.outcome == Outcome::kOk;
  }
  // A minute without an ok probe in the batch may have had one in an earlier batch (or may get
  // a failure added to earlier ones): its state comes from every stored row of the minute.
  auto minute_rows = Prepare(db,
                             "SELECT outcome FROM probe_rows WHERE target_id = ?1 "
                             "AND start_ms >= ?2 AND start_ms < ?3");
  auto read = Prepare(db, "SELECT " + ColumnsSql() +
                              " FROM probe_summaries WHERE target_id = ?1 AND span_ms = ?2 "
                              "AND bucket_ms = ?3");
  auto write = PrepareWrite(db);
  for (const auto* statement : {&minute_rows, &read, &write}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  // Per (target, minute): nullopt when the minute holds an ok probe, else its outcome mask.
  std::map<std::pair<int64_t, int64_t>, std::optional<OutcomeMask>> minute_state;
  for (const auto& [key, batch_ok] : minutes) {
    if (batch_ok) {
      minute_state[key] = std::nullopt;
      continue;
    }
    sqlite3_stmt* s = minute_rows->get();
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, key.first);
    sqlite3_bind_int64(s, 2, key.second);
    sqlite3_bind_int64(s, 3, key.second + kMinuteMs);
    std::optional<OutcomeMask> mask = OutcomeMask{0};
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const auto outcome = static_cast<Outcome>(sqlite3_column_int(s, 0));
      if (outcome == Outcome::kOk) {
        mask.reset();
        break;
      }
      *mask |= MaskOf(outcome);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return Fail(SqliteError(db, "reading a minute's probes", Error::Code::kIo));
    }
    minute_state[key] = mask;
  }
  for (auto& [key, batch] : added) {
    const auto [target_id, span, bucket] = key;
    ProbeDigest local;
    const bool cached = cache != nullptr && cache->count(key) > 0;
    ProbeDigest& digest = cache != nullptr ? (*cache)[key] : local;
    if (!cached) {
      sqlite3_stmt* s = read->get();
      ScopedReset reset(s);
      sqlite3_bind_int64(s, 1, target_id);
      sqlite3_bind_int64(s, 2, span);
      sqlite3_bind_int64(s, 3, bucket);
      const int rc = sqlite3_step(s);
      if (rc == SQLITE_ROW) {
        auto stored = DigestOfRow(s, span, bucket);
        if (!stored) {
          return Fail(stored.error());
        }
        digest = std::move(*stored);
      } else if (rc != SQLITE_DONE) {
        return Fail(SqliteError(db, "reading probe summaries", Error::Code::kIo));
      }
    }
    digest.Merge(batch);
    for (auto it = minute_state.lower_bound({target_id, bucket});
         it != minute_state.end() && it->first.first == target_id &&
         it->first.second < bucket + span;
         ++it) {
      if (it->second) {
        digest.down_minutes[it->first.second] = *it->second;
      } else {
        digest.down_minutes.erase(it->first.second);
      }
    }
    if (auto status = WriteDigest(db, write->get(), target_id, span, bucket, digest); !status) {
      return status;
    }
  }
  if (cache != nullptr) {
    // Only the newest bucket of each target and span is likely to be written again.
    for (auto it = cache->begin(); it != cache->end();) {
      const auto next = std::next(it);
      const bool superseded = next != cache->end() &&
                              std::get<0>(next->first) == std::get<0>(it->first) &&
                              std::get<1>(next->first) == std::get<1>(it->first);
      it = superseded ? cache->erase(it) : next;
    }
  }
  return {};
}

Status RebuildSummaries(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                        int64_t to_ms) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t from = from_ms == kMin ? kMin : FloorTo(from_ms, kSummaryDayMs);
  const int64_t to =
      to_ms > kMax - kSummaryDayMs ? kMax : FloorTo(to_ms + kSummaryDayMs - 1, kSummaryDayMs);
  auto remove = Prepare(db,
                        "DELETE FROM probe_summaries WHERE target_id BETWEEN ?1 AND ?2 "
                        "AND bucket_ms >= ?3 AND bucket_ms < ?4");
  auto rows = Prepare(db,
                      "SELECT target_id, start_ms, outcome, ttft_s, total_s, tokens_per_s "
                      "FROM probes WHERE target_id BETWEEN ?1 AND ?2 "
                      "AND start_ms >= ?3 AND start_ms < ?4 ORDER BY target_id, start_ms");
  auto write = PrepareWrite(db);
  for (const auto* statement : {&remove, &rows, &write}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  for (sqlite3_stmt* s : {remove->get(), rows->get()}) {
    sqlite3_bind_int64(s, 1, first_target);
    sqlite3_bind_int64(s, 2, last_target);
    sqlite3_bind_int64(s, 3, from);
    sqlite3_bind_int64(s, 4, to);
  }
  if (sqlite3_step(remove->get()) != SQLITE_DONE) {
    return Fail(SqliteError(db, "deleting probe summaries", Error::Code::kIo));
  }
  // One target's current hour is folded row by row; an hour's digest joins its day's when the
  // hour ends, and a day is written when it ends.
  DigestFolder hour;
  ProbeDigest day;
  int64_t target = 0;
  int64_t hour_ms = 0;
  int64_t day_ms = 0;
  bool open = false;
  const auto close_hour = [&]() -> Status {
    ProbeDigest digest = hour.Take();
    day.Merge(digest);
    return WriteDigest(db, write->get(), target, kSummaryHourMs, hour_ms, digest);
  };
  const auto close_day = [&]() -> Status {
    auto status = WriteDigest(db, write->get(), target, kSummaryDayMs, day_ms, day);
    day = ProbeDigest();
    return status;
  };
  sqlite3_stmt* s = rows->get();
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t row_target = sqlite3_column_int64(s, 0);
    const int64_t start = sqlite3_column_int64(s, 1);
    const int64_t row_hour = FloorTo(start, kSummaryHourMs);
    if (open && (row_target != target || row_hour != hour_ms)) {
      if (auto status = close_hour(); !status) {
        return status;
      }
      if (row_target != target || FloorTo(start, kSummaryDayMs) != day_ms) {
        if (auto status = close_day(); !status) {
          return status;
        }
      }
    }
    target = row_target;
    hour_ms = row_hour;
    day_ms = FloorTo(start, kSummaryDayMs);
    open = true;
    hour.Add(start, static_cast<Outcome>(sqlite3_column_int(s, 2)), ColumnOptionalDouble(s, 3),
             sqlite3_column_double(s, 4), ColumnOptionalDouble(s, 5));
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading probes for summaries", Error::Code::kIo));
  }
  if (open) {
    if (auto status = close_hour(); !status) {
      return status;
    }
    return close_day();
  }
  return {};
}

Result<uint64_t> DeleteSummariesBefore(sqlite3* db, int64_t cutoff_ms) {
  auto statement = Prepare(db, "DELETE FROM probe_summaries WHERE bucket_ms + span_ms <= ?1");
  if (!statement) {
    return Fail(statement.error());
  }
  sqlite3_bind_int64(statement->get(), 1, cutoff_ms);
  if (sqlite3_step(statement->get()) != SQLITE_DONE) {
    return Fail(SqliteError(db, "deleting old probe summaries", Error::Code::kIo));
  }
  return static_cast<uint64_t>(sqlite3_changes64(db));
}

Status ReadSummaries(sqlite3* db, int64_t target_id, int64_t span_ms, int64_t from_ms,
                     int64_t to_ms, const std::function<void(int64_t, ProbeDigest&)>& each) {
  if (to_ms - span_ms < from_ms) {
    return {};
  }
  auto statement = Prepare(db, "SELECT " + ColumnsSql() +
                                   " FROM probe_summaries WHERE target_id = ?1 AND span_ms = ?2 "
                                   "AND bucket_ms >= ?3 AND bucket_ms <= ?4 ORDER BY bucket_ms");
  if (!statement) {
    return Fail(statement.error());
  }
  sqlite3_stmt* s = statement->get();
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, span_ms);
  sqlite3_bind_int64(s, 3, from_ms);
  sqlite3_bind_int64(s, 4, to_ms - span_ms);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t bucket = sqlite3_column_int64(s, 2);
    auto digest = DigestOfRow(s, span_ms, bucket);
    if (!digest) {
      return Fail(digest.error());
    }
    each(bucket, *digest);
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading probe summaries", Error::Code::kIo));
  }
  return {};
}

}  // namespace modelpulse::storage
