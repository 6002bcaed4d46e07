#include "storage/archive.h"

#include <sqlite3.h>

#include <cmath>
#include <limits>
#include <string>

#include "storage/internal/label_codec.h"
#include "storage/internal/sqlite.h"
#include "storage/internal/summary.h"

namespace modelpulse::storage {
namespace {

int64_t CeilTo(int64_t t_ms, int64_t span_ms) {
  return t_ms > std::numeric_limits<int64_t>::max() - span_ms
             ? FloorTo(t_ms, span_ms)
             : FloorTo(t_ms + span_ms - 1, span_ms);
}

class ArchiveImpl final : public Archive {
 public:
  ArchiveImpl(DbHandle db, bool has_summaries)
      : db_(std::move(db)), has_summaries_(has_summaries) {}

  Result<std::vector<StoredTarget>> ListTargets() const override {
    auto statement = Prepare(db_.get(), "SELECT id, name, labels FROM targets ORDER BY name");
    if (!statement) {
      return Fail(statement.error());
    }
    std::vector<StoredTarget> out;
    sqlite3_stmt* s = statement->get();
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      StoredTarget target;
      target.id = sqlite3_column_int64(s, 0);
      target.name = ColumnText(s, 1);
      auto labels = DecodeLabels(ColumnText(s, 2));
      if (!labels) {
        return Fail(labels.error());
      }
      target.labels = std::move(*labels);
      out.push_back(std::move(target));
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "listing targets", Error::Code::kIo));
    }
    return out;
  }

  Status ScanProbes(int64_t target_id, int64_t from_ms, int64_t to_ms,
                    const std::function<void(const ProbeSummary&)>& each) const override {
    // The evidence columns are read only for failures (outcome 0 is ok): the text columns of
    // millions of successful probes are never copied.
    auto statement =
        Prepare(db_.get(),
                "SELECT start_ms, outcome, total_s, ttft_s, tokens_per_s, "
                "CASE WHEN outcome != 0 THEN request_id END, "
                "CASE WHEN outcome != 0 THEN error END "
                "FROM probes WHERE target_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 "
                "ORDER BY start_ms, seq");
    if (!statement) {
      return Fail(statement.error());
    }
    sqlite3_stmt* s = statement->get();
    sqlite3_bind_int64(s, 1, target_id);
    sqlite3_bind_int64(s, 2, from_ms);
    sqlite3_bind_int64(s, 3, to_ms);
    ProbeSummary probe;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      probe.start_ms = sqlite3_column_int64(s, 0);
      probe.outcome = static_cast<Outcome>(sqlite3_column_int(s, 1));
      probe.total_s = sqlite3_column_double(s, 2);
      probe.ttft_s = ColumnOptionalDouble(s, 3);
      probe.tokens_per_s = ColumnOptionalDouble(s, 4);
      if (probe.outcome != Outcome::kOk) {
        probe.request_id = ColumnText(s, 5);
        probe.error = ColumnText(s, 6);
      } else {
        probe.request_id.clear();
        probe.error.clear();
      }
      each(probe);
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "reading probes", Error::Code::kIo));
    }
    return {};
  }

  Result<std::vector<StoredAlertEvent>> AlertEvents(int64_t from_ms, int64_t to_ms) const override {
    // alert_history (schema 7) keeps every firing interval; a database the daemon has not
    // migrated yet has only the outbox's queue, which the notifier empties as it sends.
    auto has_history =
        QueryInt(db_.get(), "SELECT count(*) FROM sqlite_master WHERE name = 'alert_history'");
    if (!has_history) {
      return Fail(has_history.error());
    }
    auto statement = *has_history > 0
                         ? Prepare(db_.get(),
                                   "SELECT 0, updated_ms, body FROM alert_history "
                                   "WHERE (ends_ms >= ?1 OR resolved = 0) AND starts_ms < ?2 "
                                   "ORDER BY starts_ms, labels")
                         : Prepare(db_.get(),
                                   "SELECT id, created_ms, body FROM alert_events "
                                   "WHERE created_ms >= ?1 AND created_ms < ?2 ORDER BY id");
    if (!statement) {
      return Fail(statement.error());
    }
    sqlite3_stmt* s = statement->get();
    sqlite3_bind_int64(s, 1, from_ms);
    sqlite3_bind_int64(s, 2, to_ms);
    std::vector<StoredAlertEvent> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      StoredAlertEvent event;
      event.id = sqlite3_column_int64(s, 0);
      event.created_ms = sqlite3_column_int64(s, 1);
      const auto* data = static_cast<const char*>(sqlite3_column_blob(s, 2));
      event.body.assign(data == nullptr ? "" : data,
                        static_cast<size_t>(sqlite3_column_bytes(s, 2)));
      out.push_back(std::move(event));
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "reading alert events", Error::Code::kIo));
    }
    return out;
  }

  Result<std::vector<DayDigest>> DigestDays(int64_t target_id, int64_t from_ms,
                                            int64_t to_ms) const override {
    std::map<int64_t, ProbeDigest> days;
    const auto add = [&](int64_t bucket_ms, ProbeDigest& digest) {
      days[FloorTo(bucket_ms, kSummaryDayMs)].Merge(digest);
    };
    // [x, y) from whole hours' summaries and the rows of the partial hours at its ends.
    const auto edge = [&](int64_t x, int64_t y) -> Status {
      const int64_t hour_a = CeilTo(x, kSummaryHourMs);
      const int64_t hour_b = FloorTo(y, kSummaryHourMs);
      if (hour_a >= hour_b) {
        return FoldRows(target_id, x, y, days);
      }
      if (auto status = ReadSummaries(db_.get(), target_id, kSummaryHourMs, hour_a, hour_b, add);
          !status) {
        return status;
      }
      if (auto status = FoldRows(target_id, x, hour_a, days); !status) {
        return status;
      }
      return FoldRows(target_id, hour_b, y, days);
    };
    Status status;
    if (!has_summaries_) {
      status = FoldRows(target_id, from_ms, to_ms, days);
    } else {
      const int64_t day_a = CeilTo(from_ms, kSummaryDayMs);
      const int64_t day_b = FloorTo(to_ms, kSummaryDayMs);
      if (day_a >= day_b) {
        status = edge(from_ms, to_ms);
      } else {
        status = ReadSummaries(db_.get(), target_id, kSummaryDayMs, day_a, day_b, add);
        if (status) {
          status = edge(from_ms, day_a);
        }
        if (status) {
          status = edge(day_b, to_ms);
        }
      }
    }
    if (!status) {
      return Fail(status.error());
    }
    std::vector<DayDigest> out;
    out.reserve(days.size());
    for (auto& [day, digest] : days) {
      out.push_back({day, std::move(digest)});
    }
    return out;
  }

  Result<std::map<int64_t, std::vector<DayCounts>>> DailyCounts(
      const std::vector<int64_t>& target_ids, int64_t from_ms, int64_t to_ms) const override {
    std::map<int64_t, std::vector<DayCounts>> out;
    if (target_ids.empty()) {
      return out;
    }
    if (has_summaries_) {
      return SummaryDailyCounts(target_ids, from_ms, to_ms);
    }
    // The ids inline (integers, so nothing to escape): SQLite walks the primary key (target_id,
    // field, bucket_ms) once per id and field, in one prepared statement.
    std::string ids;
    for (int64_t id : target_ids) {
      ids += (ids.empty() ? "" : ",") + std::to_string(id);
    }
    auto statement =
        Prepare(db_.get(),
                "SELECT target_id, bucket_ms / 86400000, field, sum(count), sum(sum) "
                "FROM rollups WHERE target_id IN (" +
                    ids +
                    ") AND field IN (?3, ?4, ?5, ?6, ?7) AND bucket_ms >= ?1 AND bucket_ms < ?2 "
                    "GROUP BY 1, 2, 3 ORDER BY 1, 2");
    if (!statement) {
      return Fail(statement.error());
    }
    sqlite3_stmt* s = statement->get();
    sqlite3_bind_int64(s, 1, from_ms);
    sqlite3_bind_int64(s, 2, to_ms);
    int index = 3;
    for (ProbeField field : {ProbeField::kSuccess, ProbeField::kThrottled, ProbeField::kOverloaded,
                             ProbeField::kQuotaExhausted, ProbeField::kAuthFailed}) {
      sqlite3_bind_int(s, index++, static_cast<int>(field));
    }
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::vector<DayCounts>& days = out[sqlite3_column_int64(s, 0)];
      const int64_t day_ms = sqlite3_column_int64(s, 1) * 86'400'000;
      if (days.empty() || days.back().day_ms != day_ms) {
        days.push_back({day_ms});
      }
      DayCounts& day = days.back();
      const auto field = static_cast<ProbeField>(sqlite3_column_int(s, 2));
      // The outcome fields are 0 or 1 per probe, so their sums are counts.
      const auto sum = static_cast<int64_t>(std::llround(sqlite3_column_double(s, 4)));
      switch (field) {
        case ProbeField::kSuccess:
          day.probes = sqlite3_column_int64(s, 3);
          day.ok = sum;
          break;
        case ProbeField::kThrottled:
          day.throttled = sum;
          break;
        case ProbeField::kOverloaded:
          day.overloaded = sum;
          break;
        case ProbeField::kAuthFailed:
          day.auth = sum;
          break;
        default:
          day.quota_exhausted = sum;
      }
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "reading rollups", Error::Code::kIo));
    }
    return out;
  }

 private:
  // Folds the rows of [from_ms, to_ms) into `days`, one folder per UTC day.
  Status FoldRows(int64_t target_id, int64_t from_ms, int64_t to_ms,
                  std::map<int64_t, ProbeDigest>& days) const {
    if (from_ms >= to_ms) {
      return {};
    }
    auto statement =
        Prepare(db_.get(),
                "SELECT start_ms, outcome, ttft_s, total_s, tokens_per_s FROM probes "
                "WHERE target_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 ORDER BY start_ms, seq");
    if (!statement) {
      return Fail(statement.error());
    }
    sqlite3_stmt* s = statement->get();
    sqlite3_bind_int64(s, 1, target_id);
    sqlite3_bind_int64(s, 2, from_ms);
    sqlite3_bind_int64(s, 3, to_ms);
    DigestFolder folder;
    int64_t day = 0;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const int64_t start = sqlite3_column_int64(s, 0);
      const int64_t this_day = FloorTo(start, kSummaryDayMs);
      if (!folder.Empty() && this_day != day) {
        days[day].Merge(folder.Take());
      }
      day = this_day;
      folder.Add(start, static_cast<Outcome>(sqlite3_column_int(s, 1)), ColumnOptionalDouble(s, 2),
                 sqlite3_column_double(s, 3), ColumnOptionalDouble(s, 4));
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "reading probes", Error::Code::kIo));
    }
    if (!folder.Empty()) {
      days[day].Merge(folder.Take());
    }
    return {};
  }

  Result<std::map<int64_t, std::vector<DayCounts>>> SummaryDailyCounts(
      const std::vector<int64_t>& target_ids, int64_t from_ms, int64_t to_ms) const {
    std::string ids;
    for (int64_t id : target_ids) {
      ids += (ids.empty() ? "" : ",") + std::to_string(id);
    }
    // The ids inline (integers, so nothing to escape): one seek per id into the primary key.
    auto statement = Prepare(
        db_.get(),
        "SELECT target_id, bucket_ms, probes, ok, throttled, overloaded, quota_exhausted, auth "
        "FROM probe_summaries WHERE target_id IN (" +
            ids + ") AND span_ms = 86400000 AND bucket_ms >= ?1 AND bucket_ms < ?2 ORDER BY 1, 2");
    if (!statement) {
      return Fail(statement.error());
    }
    sqlite3_stmt* s = statement->get();
    sqlite3_bind_int64(s, 1, from_ms);
    sqlite3_bind_int64(s, 2, to_ms);
    std::map<int64_t, std::vector<DayCounts>> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      DayCounts day;
      day.day_ms = sqlite3_column_int64(s, 1);
      day.probes = sqlite3_column_int64(s, 2);
      day.ok = sqlite3_column_int64(s, 3);
      day.throttled = sqlite3_column_int64(s, 4);
      day.overloaded = sqlite3_column_int64(s, 5);
      day.quota_exhausted = sqlite3_column_int64(s, 6);
      day.auth = sqlite3_column_int64(s, 7);
      out[sqlite3_column_int64(s, 0)].push_back(day);
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db_.get(), "reading probe summaries", Error::Code::kIo));
    }
    return out;
  }

  DbHandle db_;
  bool has_summaries_;
};

}  // namespace

Result<std::unique_ptr<Archive>> Archive::OpenReadOnly(const std::string& path) {
  // Opened NOMUTEX: a connection is used by one thread at a time (the report gives each worker
  // its own), and SQLite's per-call mutex was a fifth of a month's scan.
  auto db = OpenDatabaseReadOnly(path);
  if (!db) {
    return Fail(db.error());
  }
  // A file that is not a modelpulse database (or a corrupt one) fails here, not mid-report.
  auto version = QueryInt(db->get(), "PRAGMA user_version");
  if (!version) {
    return Fail(version.error());
  }
  if (*version < 5) {
    return Fail(Error::Io("database " + path +
                          " is not a modelpulse database of schema 5 or later "
                          "(run the daemon once to migrate it)"));
  }
  // Schema 9 has the probe summaries; an older file (a daemon not yet upgraded) is read row by
  // row.
  return std::unique_ptr<Archive>(new ArchiveImpl(std::move(*db), *version >= 9));
}

}  // namespace modelpulse::storage
