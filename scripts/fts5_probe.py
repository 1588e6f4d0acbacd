#!/usr/bin/env python3
"""The FTS5 measurements behind docs/decisions/0005-sqlite-keyword-index.md.

Builds the bench's kind of data (eight Zipf-drawn words over a 5,000-word vocabulary per item)
in a temporary SQLite file with Python's sqlite3 module. It then prints:
- how many items two mid-frequency query words match, and what counting them costs against
  ranking them with bm25();
- insert rates of the items table with its indexes, without and with FTS5 triggers.

    python3 scripts/fts5_probe.py [ITEMS]
"""

import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
VOCABULARY = 5000

SCHEMA = """
CREATE TABLE items(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, namespace TEXT NOT NULL,
  content TEXT NOT NULL, user_id TEXT, session_id TEXT, created_at INT, deleted INT DEFAULT 0,
  expires_at INT, superseded_by TEXT);
CREATE INDEX items_ns_created ON items (namespace, created_at, id);
CREATE INDEX items_live_user ON items (namespace, user_id, created_at) WHERE deleted = 0;
CREATE INDEX items_live_session ON items (namespace, session_id, created_at) WHERE deleted = 0;
CREATE INDEX items_expiring ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX items_superseded ON items (namespace, superseded_by) WHERE superseded_by IS NOT NULL;
"""

FTS = """
CREATE VIRTUAL TABLE items_fts USING fts5(content, content='items', content_rowid='rowid',
  tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
  INSERT INTO items_fts (rowid, content) VALUES (new.rowid, new.content); END;
"""


def zipf(rng, n):
    return min(max(int(n ** rng.random()) - 1, 0), n - 1)


def rows(n):
    rng = random.Random(1)
    return [
        ("i%07d" % i, "ns", " ".join("w%d" % zipf(rng, VOCABULARY) for _ in range(8)),
         "rare" if i % 100 == 7 else "common", i)
        for i in range(n)
    ]


def ingest(path, with_fts, data):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA + (FTS if with_fts else ""))
    start = time.perf_counter()
    for b in range(0, len(data), 1000):
        db.executemany(
            "INSERT INTO items(id, namespace, content, user_id, created_at) VALUES (?,?,?,?,?)",
            data[b:b + 1000])
        db.commit()
    rate = len(data) / (time.perf_counter() - start)
    return db, rate


def p50_ms(db, sql, queries):
    times = []
    for q in queries:
        start = time.perf_counter()
        db.execute(sql, (q,)).fetchall()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    data = rows(N)
    with tempfile.TemporaryDirectory() as tmp:
        _, plain = ingest(os.path.join(tmp, "plain.db"), False, data)
        db, fts = ingest(os.path.join(tmp, "fts.db"), True, data)
        print(f"{N} items, batches of 1,000: {plain:.0f} rows/s without FTS5, {fts:.0f} with")
        rng = random.Random(2)
        queries = ['"w%d" OR "w%d"' % (20 + zipf(rng, 400), 20 + zipf(rng, 400))
                   for _ in range(200)]
        counts = sorted(db.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH ?",
                                   (q,)).fetchone()[0] for q in queries)
        count = p50_ms(db, "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", queries)
        ranked = p50_ms(db, "SELECT rowid, bm25(items_fts) AS s FROM items_fts "
                            "WHERE items_fts MATCH ? ORDER BY s LIMIT 10", queries)
        median = counts[len(counts) // 2]
        print(f"two mid-frequency words match {median} items (median of 200 queries)")
        print(f"p50: count {count:.2f} ms, bm25 top 10 {ranked:.2f} ms "
              f"({(ranked - count) / median * 1e3:.1f} us per match)")


if __name__ == "__main__":
    main()
