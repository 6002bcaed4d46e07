#include "storage/internal/rollup.h"

#include <cmath>
#include <limits>
#include <string>

#include "storage/internal/sqlite.h"

namespace modelpulse::storage {
namespace {

// Cells are written out once this many are pending, so a backfill of millions of rows holds a
// bounded map.
constexpr size_t kFlushCells = 50'000;

std::string SelectColumnsSql() {
  std::string sql;
  for (std::string_view name : kFieldColumnNames) {
    sql += ", ";
    sql += name;
  }
  return sql;
}

}  // namespace

FieldColumns ColumnsOf(ProbeField field) {
  const ProbeSeries& series = ProbeSeriesOf(field);
  return {static_cast<int>(series.input),
          series.kind == ProbeSeries::Kind::kRatio ? static_cast<int>(series.divisor) : -1};
}

std::optional<double> FieldFromColumns(ProbeField field, std::optional<double> a,
                                       std::optional<double> b) {
  std::optional<double> value = ProbeSeriesValue(ProbeSeriesOf(field), a, b);
  if (value && std::isnan(*value)) {
    return std::nullopt;
  }
  return value;
}

ColumnValues ColumnsOfProbe(const ProbeResult& p) {
  ColumnValues c = ProbeNumbersOf(p);
  // What SQLite gives back: NaN is stored as NULL.
  for (auto& v : c) {
    if (v && std::isnan(*v)) {
      v.reset();
    }
  }
  return c;
}

std::optional<double> ProbeFieldValue(const ProbeResult& probe, ProbeField field) {
  const ColumnValues columns = ColumnsOfProbe(probe);
  const FieldColumns which = ColumnsOf(field);
  return FieldFromColumns(field, columns[static_cast<size_t>(which.a)],
                          which.b < 0 ? std::nullopt : columns[static_cast<size_t>(which.b)]);
}

void RollupCell::Add(int64_t t_ms, double v) {
  if (count == 0) {
    min = v;
    max = v;
    first_ms = t_ms;
    last_ms = t_ms;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
    first_ms = std::min(first_ms, t_ms);
    last_ms = std::max(last_ms, t_ms);
  }
  sum += v;
  ++count;
}

void AddRow(RollupCells& cells, int64_t target_id, int64_t start_ms, int64_t label_set_id,
            const ColumnValues& columns) {
  const int64_t bucket = BucketOf(start_ms);
  for (int f = 0; f < kProbeFieldCount; ++f) {
    const auto field = static_cast<ProbeField>(f);
    const FieldColumns which = ColumnsOf(field);
    const std::optional<double> value =
        FieldFromColumns(field, columns[static_cast<size_t>(which.a)],
                         which.b < 0 ? std::nullopt : columns[static_cast<size_t>(which.b)]);
    if (value) {
      cells[{target_id, f, bucket, label_set_id}].Add(start_ms, *value);
    }
  }
}

Status UpsertRollups(sqlite3* db, const RollupCells& cells) {
  if (cells.empty()) {
    return {};
  }
  // Migrations 3 and 8 rebuild the rollups before migration 13 gives them their first and last
  // row times; migration 13 fills those in.
  auto with_times =
      QueryInt(db, "SELECT count(*) FROM pragma_table_info('rollups') WHERE name = 'first_ms'");
  if (!with_times) {
    return Fail(with_times.error());
  }
  // min()/max() of two arguments are SQLite's scalar functions; either is NULL when an argument
  // is, so first_ms and last_ms stay unknown in a bucket whose earlier rows left them unknown.
  auto statement = Prepare(db, *with_times == 0 ? R"sql(
INSERT INTO rollups (target_id, field, bucket_ms, label_set_id, count, sum, min, max)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (target_id, field, bucket_ms, label_set_id) DO UPDATE SET
  count = count + excluded.count, sum = sum + excluded.sum,
  min = min(min, excluded.min), max = max(max, excluded.max))sql"
                                                : R"sql(
INSERT INTO rollups (target_id, field, bucket_ms, label_set_id, count, sum, min, max, first_ms,
  last_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (target_id, field, bucket_ms, label_set_id) DO UPDATE SET
  count = count + excluded.count, sum = sum + excluded.sum,
  min = min(min, excluded.min), max = max(max, excluded.max),
  first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms))sql");
  if (!statement) {
    return Fail(statement.error());
  }
  sqlite3_stmt* s = statement->get();
  for (const auto& [key, cell] : cells) {
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, std::get<0>(key));
    sqlite3_bind_int(s, 2, std::get<1>(key));
    sqlite3_bind_int64(s, 3, std::get<2>(key));
    sqlite3_bind_int64(s, 4, std::get<3>(key));
    sqlite3_bind_int64(s, 5, cell.count);
    sqlite3_bind_double(s, 6, cell.sum);
    sqlite3_bind_double(s, 7, cell.min);
    sqlite3_bind_double(s, 8, cell.max);
    if (*with_times != 0) {
      sqlite3_bind_int64(s, 9, cell.first_ms);
      sqlite3_bind_int64(s, 10, cell.last_ms);
    }
    if (sqlite3_step(s) != SQLITE_DONE) {
      return Fail(SqliteError(db, "updating rollups", Error::Code::kIo));
    }
  }
  return {};
}

Status RebuildRollups(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                      int64_t to_ms) {
  auto remove = Prepare(db,
                        "DELETE FROM rollups WHERE target_id BETWEEN ?1 AND ?2 "
                        "AND bucket_ms >= ?3 AND bucket_ms < ?4");
  auto rows = Prepare(db, "SELECT target_id, start_ms, label_set_id" + SelectColumnsSql() +
                              " FROM probes WHERE target_id BETWEEN ?1 AND ?2 "
                              "AND start_ms >= ?3 AND start_ms < ?4 ORDER BY target_id, start_ms");
  for (const auto* statement : {&remove, &rows}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  for (sqlite3_stmt* s : {remove->get(), rows->get()}) {
    sqlite3_bind_int64(s, 1, first_target);
    sqlite3_bind_int64(s, 2, last_target);
    sqlite3_bind_int64(s, 3, from_ms);
    sqlite3_bind_int64(s, 4, to_ms);
  }
  if (sqlite3_step(remove->get()) != SQLITE_DONE) {
    return Fail(SqliteError(db, "deleting rollups", Error::Code::kIo));
  }
  RollupCells cells;
  ColumnValues columns;
  sqlite3_stmt* s = rows->get();
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    for (size_t i = 0; i < columns.size(); ++i) {
      columns[i] = ColumnOptionalDouble(s, static_cast<int>(i) + 3);
    }
    AddRow(cells, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
           sqlite3_column_int64(s, 2), columns);
    if (cells.size() >= kFlushCells) {
      if (auto status = UpsertRollups(db, cells); !status) {
        return status;
      }
      cells.clear();
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading probes for rollups", Error::Code::kIo));
  }
  return UpsertRollups(db, cells);
}

Status TrimRollups(sqlite3* db, int64_t target_id) {
  auto oldest = Prepare(db, "SELECT MIN(start_ms) FROM probe_rows WHERE target_id = ?1");
  if (!oldest) {
    return Fail(oldest.error());
  }
  sqlite3_bind_int64(oldest->get(), 1, target_id);
  if (sqlite3_step(oldest->get()) != SQLITE_ROW) {
    return Fail(SqliteError(db, "finding the oldest probe", Error::Code::kIo));
  }
  const std::optional<int64_t> first = ColumnOptionalInt(oldest->get(), 0);
  const int64_t keep_from = first ? BucketOf(*first) : std::numeric_limits<int64_t>::max();
  auto remove = Prepare(db, "DELETE FROM rollups WHERE target_id = ?1 AND bucket_ms < ?2");
  if (!remove) {
    return Fail(remove.error());
  }
  sqlite3_bind_int64(remove->get(), 1, target_id);
  sqlite3_bind_int64(remove->get(), 2, keep_from);
  if (sqlite3_step(remove->get()) != SQLITE_DONE) {
    return Fail(SqliteError(db, "trimming rollups", Error::Code::kIo));
  }
  if (!first) {
    return {};
  }
  return RebuildRollups(db, target_id, target_id, keep_from, keep_from + kRollupBucketMs);
}

}  // namespace modelpulse::storage
