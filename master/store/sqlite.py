"""The embedded store backend: etcd semantics on SQLite, after k3s's kine.

One append-only table `kv` whose row id is the revision: every create,
update and delete inserts a row; a key's live value is its newest row unless
that row is a deletion. Lists pick each name's max id under the prefix (at or
below a revision for historical reads), walking the (name, id) index. Compaction is two DELETEs: rows
superseded at or before the compact revision, and tombstones at or before it.
The `meta` table records the compact revision.

Durability: WAL with synchronous=FULL, so an acknowledged write survives power
loss (one fsync per commit). One connection (check_same_thread=False) behind
an RLock serves the API server's loop thread and a background compactor.
Neighbours: the contract and errors in `master.store`; the API server's watch
cache subscribes to the events this module emits.
"""
from __future__ import annotations

import builtins
import logging
import os
import sqlite3
import threading
from collections.abc import Callable

from master.store import (
    Compacted,
    Conflict,
    Event,
    KeyExists,
    KeyNotFound,
    KeyValue,
)

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB,
    old_value BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_COLS = "kv.id, kv.name, kv.created, kv.deleted, kv.create_revision, kv.value, kv.old_value"


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string with the prefix, or
    None when there is none (empty prefix). SQLite's BINARY collation orders
    UTF-8 bytes, which is code point order, as Python compares strings."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1 if last + 1 != 0xD800 else 0xE000)
        prefix = prefix[:-1]
    return None


def _range(prefix: str, start_after: str = "") -> tuple[str, list[object]]:
    """WHERE clause (on `name`) and parameters for keys with the prefix after start_after."""
    clauses: list[str] = ["name >= ?"]
    params: list[object] = [prefix]
    end = prefix_end(prefix)
    if end is not None:
        clauses.append("name < ?")
        params.append(end)
    if start_after:
        clauses.append("name > ?")
        params.append(start_after)
    return " AND ".join(clauses), params


def _event(row: tuple) -> Event:
    rev, name, created, deleted, _crev, value, old = row
    if deleted:
        return Event("DELETED", name, None, old, rev)
    if created:
        return Event("ADDED", name, value, None, rev)
    return Event("MODIFIED", name, value, old, rev)


class SQLiteStore:
    """The `Store` protocol on one SQLite file (or `:memory:`). Thread-safe."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        self._subscribers: list[Callable[[Event], None]] = []
        self._closed = False
        self._rev = self._read_revision()
        self._compact_rev = self._read_compact()

    # --- reads ---------------------------------------------------------

    def _read_revision(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
        return int(row[0]) if row else 0

    def _read_compact(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'compact_revision'").fetchone()
        return int(row[0]) if row else 0

    def current_revision(self) -> int:
        return self._rev

    def compact_revision(self) -> int:
        return self._compact_rev

    def _latest(self, key: str) -> tuple | None:
        return self._db.execute(
            f"SELECT {_COLS} FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)
        ).fetchone()

    def get(self, key: str) -> KeyValue | None:
        with self._lock:
            row = self._latest(key)
        if row is None or row[3]:
            return None
        return KeyValue(row[1], row[5], row[4], row[0])

    def _check_revision(self, what: str, revision: int) -> None:
        if revision and revision < self._compact_rev:
            raise Compacted(what, revision, self._compact_rev)

    def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> tuple[list[KeyValue], int, bool]:
        where, params = _range(prefix, start_after)
        with self._lock:
            self._check_revision(prefix, revision)
            at = revision or self._rev
            # Walks the (name, id) index in key order with a covering max-id
            # lookup per row: no sort, so a LIMIT page stops early.
            upto = ""
            if revision:
                upto = " AND k2.id <= ?"
                params.append(revision)
            sql = (
                f"SELECT id, name, create_revision, value FROM kv WHERE {where} AND id = "
                f"(SELECT MAX(k2.id) FROM kv AS k2 WHERE k2.name = kv.name{upto})"
                f" AND deleted = 0 ORDER BY name"
            )
            if limit > 0:
                sql += " LIMIT ?"
                params.append(limit + 1)
            rows = self._db.execute(sql, params).fetchall()
        more = limit > 0 and len(rows) > limit
        if more:
            rows = rows[:limit]
        return [KeyValue(name, value, crev, rev) for rev, name, crev, value in rows], at, more

    def count(self, prefix: str) -> int:
        where, params = _range(prefix)
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*) FROM kv JOIN "
                f"(SELECT MAX(id) AS mid FROM kv WHERE {where} GROUP BY name) AS m "
                f"ON kv.id = m.mid WHERE kv.deleted = 0",
                params,
            ).fetchone()
        return int(row[0])

    def events_since(self, revision: int, prefix: str = "", limit: int = 0) -> builtins.list[Event]:
        where, params = _range(prefix)
        sql = f"SELECT {_COLS} FROM kv WHERE id > ? AND {where} ORDER BY id"
        if limit > 0:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            if revision < self._compact_rev:
                raise Compacted(prefix, revision, self._compact_rev)
            rows = self._db.execute(sql, [revision, *params]).fetchall()
        return [_event(r) for r in rows]

    # --- writes --------------------------------------------------------

    def _write(self, key: str, check: Callable[[tuple | None], None], deleted: bool,
               value: bytes | None) -> tuple[int, tuple | None]:
        """One transaction: read key's latest row, check, insert the next
        revision's row; then notify subscribers. Returns (revision, prev row)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                prev = self._latest(key)
                check(prev)
                rev = self._read_revision() + 1
                live = prev is not None and not prev[3]
                created = not live
                crev = rev if created else prev[4]  # type: ignore[index]
                old = prev[5] if live else None  # type: ignore[index]
                self._db.execute(
                    "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision,"
                    " value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (rev, key, int(created and not deleted), int(deleted), crev,
                     prev[0] if prev else 0, value, old),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._rev = rev
            if deleted:
                event = Event("DELETED", key, None, old, rev)
            elif created:
                event = Event("ADDED", key, value, None, rev)
            else:
                event = Event("MODIFIED", key, value, old, rev)
            for callback in list(self._subscribers):
                try:
                    callback(event)
                except Exception:  # a committed write stands; the subscriber is at fault
                    log.exception("store subscriber failed on %s rev %d", key, rev)
            return rev, prev

    @staticmethod
    def _kv(row: tuple) -> KeyValue:
        return KeyValue(row[1], row[5], row[4], row[0])

    def create(self, key: str, value: bytes) -> int:
        def check(prev: tuple | None) -> None:
            if prev is not None and not prev[3]:
                raise KeyExists(key)

        return self._write(key, check, False, value)[0]

    def _expect(self, key: str, expected_revision: int) -> Callable[[tuple | None], None]:
        def check(prev: tuple | None) -> None:
            if prev is None or prev[3]:
                raise KeyNotFound(key)
            if expected_revision and prev[0] != expected_revision:
                raise Conflict(key, expected_revision, self._kv(prev))

        return check

    def update(self, key: str, value: bytes, expected_revision: int = 0) -> int:
        return self._write(key, self._expect(key, expected_revision), False, value)[0]

    def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        rev, prev = self._write(key, self._expect(key, expected_revision), True, None)
        assert prev is not None
        return rev, self._kv(prev)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def compact(self, revision: int) -> int:
        """Drop rows superseded at or before revision and tombstones at or
        before it; afterwards reads at revisions >= revision stay exact and
        older ones raise Compacted. A revision already compacted is a no-op;
        one beyond the current revision is a ValueError."""
        with self._lock:
            if revision > self._rev:
                raise ValueError(f"compact revision {revision} is beyond current {self._rev}")
            if revision <= self._compact_rev:
                return 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._db.execute(
                    "DELETE FROM kv WHERE id IN (SELECT prev_revision FROM kv"
                    " WHERE id > ? AND id <= ? AND prev_revision != 0)",
                    (self._compact_rev, revision),
                ).rowcount
                removed += self._db.execute(
                    "DELETE FROM kv WHERE deleted = 1 AND id > ? AND id <= ?",
                    (self._compact_rev, revision),
                ).rowcount
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('compact_revision', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (revision,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._compact_rev = revision
            return removed

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._subscribers.clear()
            self._db.close()
