#include "storage/internal/rollup.h"

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>

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

namespace {

void AppendVarint(std::string& out, uint64_t u) {
  while (u >= 0x80) {
    out.push_back(static_cast<char>((u & 0x7f) | 0x80));
    u >>= 7;
  }
  out.push_back(static_cast<char>(u));
}

// Stored times and rates are whole thousandths (probe_codec.h: milliseconds, tokens per
// kilosecond, divided by 1e3 as the probes view divides them), so most values are an integer k
// whose k / 1e3 gives back the same double.
constexpr double kThousandths = 1e3;
constexpr double kMaxThousandths = 9.0e15;  // |k| where int64_t and double agree exactly

}  // namespace

void AppendEncodedValue(std::string& out, double v) {
  // A varint per value: zigzag(k) << 1 for a value k / 1e3, else 1 and the double's 8 bytes.
  // 2 or 3 bytes for a latency or a rate, so an hour of probes every 15 s (240 values) fits in
  // the rollup's row without overflow pages.
  if (std::isfinite(v) && std::abs(v * kThousandths) < kMaxThousandths) {
    const auto k = static_cast<int64_t>(std::llround(v * kThousandths));
    if (std::bit_cast<uint64_t>(static_cast<double>(k) / kThousandths) ==
        std::bit_cast<uint64_t>(v)) {
      const uint64_t zigzag = (static_cast<uint64_t>(k) << 1) ^ static_cast<uint64_t>(k >> 63);
      AppendVarint(out, zigzag << 1);
      return;
    }
  }
  AppendVarint(out, 1);
  const auto bits = std::bit_cast<uint64_t>(v);
  for (int byte = 0; byte < 8; ++byte) {
    out.push_back(static_cast<char>((bits >> (8 * byte)) & 0xff));
  }
}

std::optional<std::vector<double>> DecodeValues(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* end = p + bytes;
  std::vector<double> out;
  while (p < end) {
    uint64_t u = 0;
    int shift = 0;
    for (;;) {
      if (p == end || shift > 63) {
        return std::nullopt;
      }
      const unsigned char byte = *p++;
      u |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) {
        break;
      }
    }
    if ((u & 1) == 0) {
      const uint64_t zigzag = u >> 1;
      const auto k = static_cast<int64_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
      out.push_back(static_cast<double>(k) / kThousandths);
    } else {
      if (u != 1 || end - p < 8) {
        return std::nullopt;
      }
      uint64_t bits = 0;
      for (int byte = 0; byte < 8; ++byte) {
        bits |= static_cast<uint64_t>(p[byte]) << (8 * byte);
      }
      p += 8;
      out.push_back(std::bit_cast<double>(bits));
    }
  }
  return out;
}

void RollupCell::Add(int64_t t_ms, double v) {
  if (count == 0) {
    min = v;
    max = v;
    first_ms = t_ms;
    last_ms = t_ms;
    first_value = v;
    second_ms = INT64_MAX;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
    if (t_ms < first_ms) {
      second_ms = first_ms;
      first_ms = t_ms;
      first_value = v;
    } else if (t_ms < second_ms) {
      second_ms = t_ms;  // t_ms == first_ms too: a tie, which no first value answers
    }
    last_ms = std::max(last_ms, t_ms);
  }
  sum += v;
  ++count;
  if (keeps_values) {
    AppendEncodedValue(values, v);
  }
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
      RollupCell& cell = cells[{target_id, f, bucket, label_set_id}];
      cell.keeps_values = KeepsValues(field);
      cell.Add(start_ms, *value);
    }
  }
}

namespace {

// A rollup's key as parameters 1-4 of `s`.
void BindKey(sqlite3_stmt* s, const std::tuple<int64_t, int, int64_t, int64_t>& key) {
  sqlite3_bind_int64(s, 1, std::get<0>(key));
  sqlite3_bind_int(s, 2, std::get<1>(key));
  sqlite3_bind_int64(s, 3, std::get<2>(key));
  sqlite3_bind_int64(s, 4, std::get<3>(key));
}

// A cell's first_ms, last_ms, first_value and second_ms as parameters `first` to `first` + 3 of
// `s`: no first value where two rows share the first instant (which is first is not kept).
void BindRowTimes(sqlite3_stmt* s, int first, const RollupCell& cell) {
  sqlite3_bind_int64(s, first, cell.first_ms);
  sqlite3_bind_int64(s, first + 1, cell.last_ms);
  if (cell.second_ms == cell.first_ms) {
    sqlite3_bind_null(s, first + 2);
  } else {
    sqlite3_bind_double(s, first + 2, cell.first_value);
  }
  sqlite3_bind_int64(s, first + 3, cell.second_ms);
}

// Binds a rollup's key and its encoded values to `s` (an insert into rollup_values) and runs it.
Status InsertValues(sqlite3* db, sqlite3_stmt* s,
                    const std::tuple<int64_t, int, int64_t, int64_t>& key,
                    const std::string& values) {
  ScopedReset reset(s);
  BindKey(s, key);
  sqlite3_bind_blob64(s, 5, values.data(), values.size(), SQLITE_STATIC);
  if (sqlite3_step(s) != SQLITE_DONE) {
    return Fail(SqliteError(db, "updating rollup values", Error::Code::kIo));
  }
  return {};
}

}  // namespace

Status UpsertRollups(sqlite3* db, const RollupCells& cells, RollupColumns schema) {
  if (cells.empty()) {
    return {};
  }
  // min()/max() of two arguments are SQLite's scalar functions; either is NULL when an argument
  // is, so first_ms and last_ms stay unknown in a bucket whose earlier rows left them unknown.
  // The SET expressions all read the row as it was: the first value is the earlier batch's,
  // unknown (NULL) when both start at the same instant, whose second row time is that instant.
  // || appends the bytes of two values (typed TEXT, read back as bytes) and is NULL when either
  // is: a field that keeps no values stays NULL.
  auto statement = Prepare(db, schema == RollupColumns::kSchema3 ? R"sql(
INSERT INTO rollups (target_id, field, bucket_ms, label_set_id, count, sum, min, max)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (target_id, field, bucket_ms, label_set_id) DO UPDATE SET
  count = count + excluded.count, sum = sum + excluded.sum,
  min = min(min, excluded.min), max = max(max, excluded.max))sql"
                                                                 : R"sql(
INSERT INTO rollups (target_id, field, bucket_ms, label_set_id, count, sum, min, max, first_ms,
  last_ms, first_value, second_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (target_id, field, bucket_ms, label_set_id) DO UPDATE SET
  count = count + excluded.count, sum = sum + excluded.sum,
  min = min(min, excluded.min), max = max(max, excluded.max),
  first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms),
  first_value = CASE WHEN excluded.first_ms < first_ms THEN excluded.first_value
                     WHEN excluded.first_ms > first_ms THEN first_value END,
  second_ms = CASE WHEN excluded.first_ms < first_ms THEN min(excluded.second_ms, first_ms)
                   WHEN excluded.first_ms > first_ms THEN min(second_ms, excluded.first_ms)
                   WHEN excluded.first_ms = first_ms THEN first_ms END)sql");
  if (!statement) {
    return Fail(statement.error());
  }
  // || appends the bytes of two values (typed TEXT, read back as bytes): runs of values append.
  Result<StatementHandle> values;
  if (schema == RollupColumns::kCurrent) {
    values = Prepare(db, R"sql(
INSERT INTO rollup_values (target_id, field, bucket_ms, label_set_id, vals)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (target_id, field, bucket_ms, label_set_id) DO UPDATE SET
  vals = vals || excluded.vals)sql");
    if (!values) {
      return Fail(values.error());
    }
  }
  sqlite3_stmt* s = statement->get();
  for (const auto& [key, cell] : cells) {
    ScopedReset reset(s);
    BindKey(s, key);
    sqlite3_bind_int64(s, 5, cell.count);
    sqlite3_bind_double(s, 6, cell.sum);
    sqlite3_bind_double(s, 7, cell.min);
    sqlite3_bind_double(s, 8, cell.max);
    if (schema == RollupColumns::kCurrent) {
      BindRowTimes(s, 9, cell);
    }
    if (sqlite3_step(s) != SQLITE_DONE) {
      return Fail(SqliteError(db, "updating rollups", Error::Code::kIo));
    }
    if (schema == RollupColumns::kCurrent && cell.keeps_values) {
      if (auto status = InsertValues(db, values->get(), key, cell.values); !status) {
        return status;
      }
    }
  }
  return {};
}

namespace {

// Targets [first_target, last_target] and times [from_ms, to_ms) as parameters 1-4 of `s`.
void BindSpan(sqlite3_stmt* s, int64_t first_target, int64_t last_target, int64_t from_ms,
              int64_t to_ms) {
  sqlite3_bind_int64(s, 1, first_target);
  sqlite3_bind_int64(s, 2, last_target);
  sqlite3_bind_int64(s, 3, from_ms);
  sqlite3_bind_int64(s, 4, to_ms);
}

// Deletes the rollups of targets [first_target, last_target] whose bucket_ms is in [from_ms,
// to_ms), and their kept values where the schema has them.
Status DeleteBuckets(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                     int64_t to_ms, RollupColumns schema) {
  for (std::string_view table : {"rollups", "rollup_values"}) {
    if (table == "rollup_values" && schema == RollupColumns::kSchema3) {
      break;
    }
    auto remove = Prepare(db, "DELETE FROM " + std::string(table) +
                                  " WHERE target_id BETWEEN ?1 AND ?2 AND bucket_ms >= ?3 AND "
                                  "bucket_ms < ?4");
    if (!remove) {
      return Fail(remove.error());
    }
    BindSpan(remove->get(), first_target, last_target, from_ms, to_ms);
    if (sqlite3_step(remove->get()) != SQLITE_DONE) {
      return Fail(SqliteError(db, "deleting from " + std::string(table), Error::Code::kIo));
    }
  }
  return {};
}

}  // namespace

Status RebuildRollups(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                      int64_t to_ms, RollupColumns schema) {
  if (auto status = DeleteBuckets(db, first_target, last_target, from_ms, to_ms, schema); !status) {
    return status;
  }
  auto rows = Prepare(db, "SELECT target_id, start_ms, label_set_id" + SelectColumnsSql() +
                              " FROM probes WHERE target_id BETWEEN ?1 AND ?2 "
                              "AND start_ms >= ?3 AND start_ms < ?4 ORDER BY target_id, start_ms");
  if (!rows) {
    return Fail(rows.error());
  }
  BindSpan(rows->get(), first_target, last_target, from_ms, to_ms);
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
      if (auto status = UpsertRollups(db, cells, schema); !status) {
        return status;
      }
      cells.clear();
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading probes for rollups", Error::Code::kIo));
  }
  return UpsertRollups(db, cells, schema);
}

Status FillSchema14Rollups(sqlite3* db) {
  // Every field of every row, as AddRow folds them: the row times of all rollups, the values of
  // the fields that keep them.
  auto rows = Prepare(db, "SELECT target_id, start_ms, label_set_id" + SelectColumnsSql() +
                              " FROM probes ORDER BY target_id, start_ms");
  auto insert = Prepare(db,
                        "INSERT INTO rollup_values (target_id, field, bucket_ms, label_set_id, "
                        "vals) VALUES (?1, ?2, ?3, ?4, ?5)");
  // Migration 13's row times bound the rows of any field; a first value needs its field's own.
  auto times = Prepare(db,
                       "UPDATE rollups SET first_ms = ?5, last_ms = ?6, first_value = ?7, "
                       "second_ms = ?8 WHERE target_id = ?1 AND field = ?2 AND bucket_ms = ?3 "
                       "AND label_set_id = ?4");
  for (const auto* statement : {&rows, &insert, &times}) {
    if (!*statement) {
      return Fail(statement->error());
    }
  }
  RollupCells cells;
  auto flush = [&]() -> Status {
    sqlite3_stmt* t = times->get();
    for (const auto& [key, cell] : cells) {
      ScopedReset reset(t);
      BindKey(t, key);
      BindRowTimes(t, 5, cell);
      if (sqlite3_step(t) != SQLITE_DONE) {
        return Fail(SqliteError(db, "filling rollup row times", Error::Code::kIo));
      }
      if (cell.keeps_values) {
        if (auto status = InsertValues(db, insert->get(), key, cell.values); !status) {
          return status;
        }
      }
    }
    cells.clear();
    return {};
  };
  ColumnValues columns;
  sqlite3_stmt* s = rows->get();
  int rc = SQLITE_ROW;
  std::pair<int64_t, int64_t> last_hour{0, 0};  // (target, bucket) of the previous row
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t target_id = sqlite3_column_int64(s, 0);
    const int64_t start_ms = sqlite3_column_int64(s, 1);
    // Rows come by target and time, so every cell is complete once the hour moves on: written
    // out then (a few thousand at a time), and never updated with part of an hour.
    const std::pair<int64_t, int64_t> hour{target_id, BucketOf(start_ms)};
    if (hour != last_hour && cells.size() >= kFlushCells / 16) {
      if (auto status = flush(); !status) {
        return status;
      }
    }
    last_hour = hour;
    for (size_t i = 0; i < columns.size(); ++i) {
      columns[i] = ColumnOptionalDouble(s, static_cast<int>(i) + 3);
    }
    AddRow(cells, target_id, start_ms, sqlite3_column_int64(s, 2), columns);
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "reading probes for rollup values", Error::Code::kIo));
  }
  return flush();
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
  if (auto status = DeleteBuckets(db, target_id, target_id, std::numeric_limits<int64_t>::min(),
                                  keep_from, RollupColumns::kCurrent);
      !status) {
    return status;
  }
  if (!first) {
    return {};
  }
  return RebuildRollups(db, target_id, target_id, keep_from, keep_from + kRollupBucketMs);
}

}  // namespace modelpulse::storage
