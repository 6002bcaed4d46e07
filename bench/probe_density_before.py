# The pre-migration-8 probes table (schema.cpp migration 1, verbatim columns) filled with the
# distribution of bench/storage_bench.cpp's ProbeFactory in the same round-robin order; prints
# the probes table's bytes per row from dbstat, live and after VACUUM.
import os, random, sqlite3, sys
OLD = """CREATE TABLE probes (target_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, seq INTEGER NOT NULL, label_set_id INTEGER NOT NULL, outcome INTEGER NOT NULL, http_status INTEGER NOT NULL, total_s REAL NOT NULL, dns_s REAL, connect_s REAL, tls_s REAL, first_byte_s REAL, ttft_s REAL, first_answer_s REAL, last_token_s REAL, input_tokens INTEGER, output_tokens INTEGER, itl_s REAL, tokens_per_s REAL, chunk_count INTEGER NOT NULL, req_limit REAL, req_remaining REAL, req_reset_s REAL, tok_limit REAL, tok_remaining REAL, tok_reset_s REAL, retry_after_s REAL, request_id TEXT NOT NULL, error TEXT NOT NULL, PRIMARY KEY (target_id, start_ms, seq)) WITHOUT ROWID"""
rows, targets, interval = int(sys.argv[1]), 200, int(sys.argv[2]) * 1000
u = random.Random(42).random
path = "before.db"
if os.path.exists(path): os.remove(path)
c = sqlite3.connect(path); c.execute("PRAGMA journal_mode=WAL"); c.execute(OLD)
batch = []
for i in range(rows):
    t = i % targets
    start = 1_800_000_000_000 + (i // targets) * interval + t * 97
    dns = 0.001 + 0.004*u(); con = 0.005 + 0.02*u(); tls = 0.01 + 0.03*u()
    fb = 0.1 + 0.3*u(); ttft = fb + 0.05*u(); lt = ttft + 0.2 + 0.3*u(); total = lt + 0.002
    out = 8 + int(u()*8)
    rid = "chatcmpl-" + str(1000000000000000000 + i*7919) + "AbCdEfGhIj"
    outcome, status, retry, err = 0, 200, None, ""
    if i % 50 == 0:
        outcome, status, retry, err = 1, 429, 2.0, "HTTP 429: Rate limit reached for gpt-4o-mini on requests per min"
    batch.append((t+1, start, 0, t+1, outcome, status, total, dns, con, tls, fb, ttft, ttft, lt, 14, out,
                  (lt-ttft)/(out-1), out/(lt-ttft), out+2, 10000.0, float(9990 - i % 10), 0.006,
                  2000000.0, float(1999000 - i % 1000), 0.03*u(), retry, rid, err))
    if len(batch) == 512:
        c.executemany("INSERT INTO probes VALUES (" + ",".join("?"*28) + ")", batch); c.commit(); batch = []
c.executemany("INSERT INTO probes VALUES (" + ",".join("?"*28) + ")", batch); c.commit()
def table(): return c.execute("SELECT SUM(pgsize) FROM dbstat WHERE name='probes'").fetchone()[0] / rows
live = table(); c.execute("VACUUM"); print(f"before: probes table {live:.1f} B/probe live, {table():.1f} after VACUUM ({rows} rows, {interval//1000} s)")
