#include "storage/internal/first_seen.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

namespace modelpulse::storage {
namespace {

constexpr int64_t kMinMs = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max();

struct Groups {
  std::vector<CounterGroup> groups;
  std::vector<size_t> of_slot;  // slot -> its group
  std::unordered_map<std::string, size_t> by_name;
};

const Groups& AllGroups() {
  static const Groups kGroups = [] {
    Groups g;
    const auto families = ProbeCounterFamilies();
    const auto& slots = ProbeCounterSlots();
    g.of_slot.resize(slots.size());
    for (size_t slot = 0; slot < slots.size(); ++slot) {
      const ProbeCounterFamily& family = families[slots[slot].family];
      // An outcome's counter is a group of its own; a histogram's series are created together.
      const bool same_group = family.type == ProbeCounterFamily::Type::kHistogram && slot > 0 &&
                              slots[slot - 1].family == slots[slot].family;
      if (same_group) {
        g.groups.back().last_slot = slot + 1;
      } else {
        std::string name = family.name;
        if (family.type == ProbeCounterFamily::Type::kCounterByOutcome) {
          name += fmt::format("{{{}=\"{}\"}}", slots[slot].label_name, slots[slot].label_value);
        }
        g.groups.push_back({std::move(name), slot, slot + 1});
      }
      g.of_slot[slot] = g.groups.size() - 1;
    }
    for (size_t i = 0; i < g.groups.size(); ++i) {
      g.by_name.emplace(g.groups[i].name, i);
    }
    return g;
  }();
  return kGroups;
}

Error StepError(sqlite3* db, std::string_view what) {
  return SqliteError(db, what, Error::Code::kIo);
}

}  // namespace

const std::vector<CounterGroup>& CounterGroups() { return AllGroups().groups; }

void ForEachCounterGroup(const ProbeNumbers& numbers, const std::function<void(size_t)>& each) {
  const Groups& g = AllGroups();
  // Every group's first slot is moved whenever the group is (a histogram's first bucket counts
  // each observation, 0 or 1), so this calls each group once.
  ForEachProbeIncrement(numbers, [&](size_t slot, double) {
    const size_t group = g.of_slot[slot];
    if (g.groups[group].first_slot == slot) {
      each(group);
    }
  });
}

Result<CounterInputsStatement> CounterInputsStatement::Prepare(sqlite3* db) {
  CounterInputsStatement out;
  // The outcome and every histogram's input column, named by the one table.
  out.inputs_ = {ProbeNumber::kOutcome};
  for (const ProbeCounterFamily& family : ProbeCounterFamilies()) {
    if (std::find(out.inputs_.begin(), out.inputs_.end(), family.input) == out.inputs_.end()) {
      out.inputs_.push_back(family.input);
    }
  }
  // probe_rows itself, not the view: a 30-day counter reads every row of every target, and the
  // view's arithmetic per column cost a third more (rules_bench). NumberFromColumns does the
  // same arithmetic. No counter input is a shape column today, so SQLite drops the join.
  std::string sql = "SELECT r.start_ms, r.label_set_id";
  for (const ProbeNumber number : out.inputs_) {
    const StoredNumber stored = StoredNumberOf(number);
    out.stored_.push_back(stored);
    sql += ", ";
    sql += stored.column;
    sql += ", ";
    sql += stored.base.empty() ? std::string_view("NULL") : stored.base;
  }
  sql += " FROM ";
  sql += kStoredNumbersFrom;
  sql +=
      " WHERE r.target_id = ?1 AND r.start_ms >= ?2 AND r.start_ms < ?3 ORDER BY r.start_ms, "
      "r.seq";
  auto prepared = storage::Prepare(db, sql);
  if (!prepared) {
    return Fail(prepared.error());
  }
  out.statement_ = std::move(*prepared);
  return out;
}

Status CounterInputsStatement::Scan(sqlite3* db, int64_t target_id, int64_t from_ms, int64_t to_ms,
                                    const std::function<bool(const CounterPoint&)>& each) const {
  if (from_ms >= to_ms) {
    return {};
  }
  sqlite3_stmt* s = statement_.get();
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, from_ms);
  sqlite3_bind_int64(s, 3, to_ms);
  int rc = SQLITE_ROW;
  CounterPoint point;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    point.t_ms = sqlite3_column_int64(s, 0);
    point.label_set_id = sqlite3_column_int64(s, 1);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      point.numbers[static_cast<size_t>(inputs_[i])] =
          NumberFromColumns(s, static_cast<int>(2 * i) + 2, stored_[i]);
    }
    if (!each(point)) {
      return {};
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db, "reading probe counts"));
  }
  return {};
}

void AddFirstSeen(FirstSeenCells& cells, int64_t target_id, int64_t label_set_id,
                  const ProbeNumbers& numbers, int64_t start_ms) {
  ForEachCounterGroup(numbers, [&](size_t group) {
    auto [it, inserted] = cells.try_emplace({target_id, label_set_id, group}, start_ms);
    if (!inserted) {
      it->second = std::min(it->second, start_ms);
    }
  });
}

Result<FirstSeenWriter> FirstSeenWriter::Create(sqlite3* db) {
  FirstSeenWriter out;
  auto upsert = Prepare(db, R"sql(
INSERT INTO counter_first_seen (target_id, label_set_id, series, first_ms) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (target_id, label_set_id, series) DO UPDATE SET first_ms = excluded.first_ms
WHERE excluded.first_ms < first_ms)sql");
  if (!upsert) {
    return Fail(upsert.error());
  }
  out.upsert_ = std::move(*upsert);
  return out;
}

Status FirstSeenWriter::Upsert(sqlite3* db, const FirstSeenCells& cells) {
  const auto& groups = CounterGroups();
  sqlite3_stmt* s = upsert_.get();
  for (const auto& [key, first_ms] : cells) {
    // Nearly every batch only moves series that are stored already: no statement at all.
    auto [it, inserted] = stored_.try_emplace(key, first_ms);
    if (!inserted) {
      if (it->second <= first_ms) {
        continue;
      }
      it->second = first_ms;
    }
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, std::get<0>(key));
    sqlite3_bind_int64(s, 2, std::get<1>(key));
    BindText(s, 3, groups[std::get<2>(key)].name);
    sqlite3_bind_int64(s, 4, first_ms);
    if (sqlite3_step(s) != SQLITE_DONE) {
      return Fail(StepError(db, "recording counter first-seen times"));
    }
  }
  return {};
}

Status RebuildFirstSeen(sqlite3* db) {
  if (auto status = Exec(db, "DELETE FROM counter_first_seen"); !status) {
    return status;
  }
  auto targets = Prepare(db, "SELECT id FROM targets ORDER BY id");
  auto inputs = CounterInputsStatement::Prepare(db);
  auto writer = FirstSeenWriter::Create(db);
  if (!targets || !inputs || !writer) {
    return Fail(!targets ? targets.error() : !inputs ? inputs.error() : writer.error());
  }
  // The list is read whole before the scans start.
  std::vector<int64_t> ids;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(targets->get())) == SQLITE_ROW) {
    ids.push_back(sqlite3_column_int64(targets->get(), 0));
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db, "listing targets"));
  }
  for (const int64_t id : ids) {
    FirstSeenCells cells;
    if (auto status = inputs->Scan(db, id, kMinMs, kMaxMs,
                                   [&cells, id](const CounterPoint& p) {
                                     AddFirstSeen(cells, id, p.label_set_id, p.numbers, p.t_ms);
                                     return true;
                                   });
        !status) {
      return status;
    }
    if (auto status = writer->Upsert(db, cells); !status) {
      return status;
    }
  }
  return {};
}

Result<bool> TrimFirstSeen(sqlite3* db, int64_t target_id) {
  auto oldest_statement = Prepare(db, "SELECT MIN(start_ms) FROM probe_rows WHERE target_id = ?1");
  if (!oldest_statement) {
    return Fail(oldest_statement.error());
  }
  sqlite3_bind_int64(oldest_statement->get(), 1, target_id);
  if (sqlite3_step(oldest_statement->get()) != SQLITE_ROW) {
    return Fail(StepError(db, "finding a target's oldest probe"));
  }
  const std::optional<int64_t> oldest = ColumnOptionalInt(oldest_statement->get(), 0);
  oldest_statement->reset();  // finalized: no statement stays open across the scan below
  if (!oldest) {
    auto deleted = Prepare(db, "DELETE FROM counter_first_seen WHERE target_id = ?1");
    if (!deleted) {
      return Fail(deleted.error());
    }
    sqlite3_bind_int64(deleted->get(), 1, target_id);
    if (sqlite3_step(deleted->get()) != SQLITE_DONE) {
      return Fail(StepError(db, "deleting counter first-seen times"));
    }
    return sqlite3_changes(db) > 0;
  }
  // Deletes take the oldest rows first, so a row whose probe is later than the oldest remaining
  // one still stands; one at that very millisecond may have lost its probe (a millisecond's rows
  // can be split between two deletes) and is looked up again like the earlier ones.
  auto stale_statement = Prepare(db, R"sql(
SELECT label_set_id, series FROM counter_first_seen WHERE target_id = ?1 AND first_ms <= ?2)sql");
  if (!stale_statement) {
    return Fail(stale_statement.error());
  }
  sqlite3_stmt* s = stale_statement->get();
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, *oldest);
  // (label set, group) -> the oldest remaining probe's time, once found.
  std::map<std::pair<int64_t, size_t>, std::optional<int64_t>> stale;
  std::vector<std::pair<int64_t, std::string>> unknown;  // names this binary has no group for
  const auto& by_name = AllGroups().by_name;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t set = sqlite3_column_int64(s, 0);
    std::string name = ColumnText(s, 1);
    if (auto it = by_name.find(name); it != by_name.end()) {
      stale.emplace(std::make_pair(set, it->second), std::nullopt);
    } else {
      unknown.emplace_back(set, std::move(name));
    }
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db, "reading counter first-seen times"));
  }
  stale_statement->reset();
  if (stale.empty() && unknown.empty()) {
    return false;
  }
  size_t missing = stale.size();
  if (missing > 0) {
    auto inputs = CounterInputsStatement::Prepare(db);
    if (!inputs) {
      return Fail(inputs.error());
    }
    // Until every stale group has turned up again: usually the next probe (an ok one), further
    // for a rare outcome, to the end only for a group with no probe left.
    if (auto status = inputs->Scan(db, target_id, *oldest, kMaxMs,
                                   [&](const CounterPoint& p) {
                                     ForEachCounterGroup(p.numbers, [&](size_t group) {
                                       auto it = stale.find({p.label_set_id, group});
                                       if (it != stale.end() && !it->second) {
                                         it->second = p.t_ms;
                                         --missing;
                                       }
                                     });
                                     return missing > 0;
                                   });
        !status) {
      return Fail(status.error());
    }
  }
  auto update = Prepare(db, R"sql(
UPDATE counter_first_seen SET first_ms = ?4
WHERE target_id = ?1 AND label_set_id = ?2 AND series = ?3)sql");
  auto remove = Prepare(db, R"sql(
DELETE FROM counter_first_seen WHERE target_id = ?1 AND label_set_id = ?2 AND series = ?3)sql");
  if (!update || !remove) {
    return Fail(!update ? update.error() : remove.error());
  }
  auto apply = [&](int64_t set, std::string_view name, std::optional<int64_t> first) -> Status {
    sqlite3_stmt* statement = first ? update->get() : remove->get();
    ScopedReset reset(statement);
    sqlite3_bind_int64(statement, 1, target_id);
    sqlite3_bind_int64(statement, 2, set);
    BindText(statement, 3, name);
    if (first) {
      sqlite3_bind_int64(statement, 4, *first);
    }
    if (sqlite3_step(statement) != SQLITE_DONE) {
      return Fail(StepError(db, "repairing counter first-seen times"));
    }
    return {};
  };
  const auto& groups = CounterGroups();
  for (const auto& [key, first] : stale) {
    if (auto status = apply(key.first, groups[key.second].name, first); !status) {
      return Fail(status.error());
    }
  }
  // A group this binary does not know is no longer derived from the rows by anyone: it goes.
  for (const auto& [set, name] : unknown) {
    if (auto status = apply(set, name, std::nullopt); !status) {
      return Fail(status.error());
    }
  }
  return true;
}

Result<std::vector<CounterFirstSeen>> ReadFirstSeen(sqlite3* db, int64_t target_id) {
  std::vector<CounterFirstSeen> out;
  auto statement = Prepare(db, R"sql(
SELECT label_set_id, series, first_ms FROM counter_first_seen WHERE target_id = ?1)sql");
  if (!statement) {
    return Fail(statement.error());
  }
  sqlite3_stmt* s = statement->get();
  sqlite3_bind_int64(s, 1, target_id);
  const Groups& g = AllGroups();
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto it = g.by_name.find(ColumnText(s, 1));
    if (it == g.by_name.end()) {
      continue;  // a family this binary does not derive
    }
    const CounterGroup& group = g.groups[it->second];
    out.push_back({sqlite3_column_int64(s, 0), group.first_slot, group.last_slot,
                   sqlite3_column_int64(s, 2)});
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db, "reading counter first-seen times"));
  }
  return out;
}

}  // namespace modelpulse::storage
