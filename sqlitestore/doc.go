// Package sqlitestore provides an [eventbus.Store] in an SQLite file, built
// on modernc.org/sqlite (pure Go, no cgo):
//
//	st, err := sqlitestore.Open("events.db", sqlitestore.WithMaxAge(7*24*time.Hour))
//	if err != nil { … }
//	defer st.Close()
//	bus, err := eventbus.New(eventbus.WithStore(st))
//
// The bus does not close a store given to WithStore: close the bus first,
// then the store. The store passes the conformance suite in
// [github.com/choiros/eventbus/storetest].
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL, and every Append is
// one transaction. When Append returns, its events are in the write-ahead
// log in the operating system's cache: they survive a crash, panic or
// SIGKILL of the process, and the file reopens with every acknowledged
// event and no part of an unacknowledged batch (a test kills a writer
// process to check this). Only a power loss or an operating-system crash
// can lose the last transactions, never corrupt the file; WithFullSync
// (synchronous=FULL) closes that gap with an fsync per Append.
//
// A goroutine of the store copies the log into the main file as it grows
// (checkpoints on a connection of its own, at most every 20 ms), so that
// a commit seldom waits for a checkpoint; the log file grows to about 32
// MiB and then starts again from its beginning. Close checkpoints the log
// into the main file and removes the -wal and -shm files. After a kill they remain, and the next Open recovers from
// them; copy all three files together, or use the sqlite3 shell's .backup.
//
// # Schema
//
// The file is an ordinary SQLite database, readable with the sqlite3 shell
// (sqlite3 -readonly events.db). Schema version 2, recorded in PRAGMA
// user_version, with PRAGMA application_id 0x45425553 ("EBUS"):
//
//	CREATE TABLE events (
//	    seq            INTEGER PRIMARY KEY,  -- Event.Seq
//	    id             TEXT    NOT NULL,     -- Event.ID, a ULID in its 26-character text form
//	    type           TEXT    NOT NULL,     -- Event.Type
//	    topic          TEXT    NOT NULL,     -- Event.Topic
//	    payload        TEXT    NOT NULL,     -- Event.Payload, JSON text
//	    ts             INTEGER NOT NULL,     -- Event.Timestamp, Unix nanoseconds, UTC
//	    source         TEXT    NOT NULL,     -- Event.Source
//	    correlation_id TEXT,                 -- Event.CorrelationID, NULL if empty
//	    metadata       TEXT                  -- Event.Metadata, a JSON object of strings, NULL if empty
//	);
//	CREATE INDEX events_topic ON events (topic);
//	CREATE INDEX events_ts    ON events (ts);
//	CREATE TABLE topic_prefixes (
//	    prefix TEXT    NOT NULL,  -- each proper prefix of the topic: "a" and "a.b" for "a.b.c"
//	    seq    INTEGER NOT NULL,  -- events.seq
//	    PRIMARY KEY (prefix, seq)
//	) WITHOUT ROWID;
//	CREATE TABLE cursors (
//	    name TEXT    PRIMARY KEY,  -- a durable consumer's name
//	    seq  INTEGER NOT NULL      -- its cursor: the consumer has acked everything up to this Seq
//	) WITHOUT ROWID;
//	CREATE TABLE meta (
//	    key   TEXT PRIMARY KEY,
//	    value      NOT NULL   -- 'last_seq': the highest Seq retention has deleted, an integer;
//	                          -- 'epoch': the store's epoch, a ULID made with the file (Store.Epoch)
//	);
//
// For example:
//
//	SELECT seq, topic, json_extract(payload, '$.progress'),
//	       json_extract(metadata, '$.traceparent'),
//	       strftime('%Y-%m-%d %H:%M:%f', ts / 1e9, 'unixepoch')
//	FROM events WHERE topic = 'worker.task.progress' ORDER BY seq DESC LIMIT 10;
//	SELECT name, seq FROM cursors;
//	SELECT value FROM meta WHERE key = 'epoch';
//
// Metadata is written with its keys sorted, and every value byte as it is:
// a value that is not valid UTF-8 comes back exactly (SQLite's JSON
// functions pass such bytes through; strict JSON parsers may not). The
// cursors table holds what SaveCursor and SaveCursors write and LoadCursor
// reads: the position of each durable consumer of the bus
// (eventbus.Durable), kept in the same file as the events it points into.
// The epoch names this file's Seq numbering (see Store.Epoch): it is made
// once, with the file, and a copy of the file keeps it.
//
// LastSeq is the larger of max(events.seq) and meta.last_seq, which the
// pruner raises in the transaction that deletes events, so LastSeq stays
// right after retention has deleted every event (Append does not write
// meta: one page less per transaction). Open creates the schema in a new or
// empty file, upgrades an older schema version in one transaction, and
// refuses a newer version or another
// application's database with ErrSchema, and a file that is not SQLite or
// is damaged with ErrCorrupt, changing nothing in either case. Rows deleted
// by hand should go with their topic_prefixes rows; orphaned prefix rows
// are harmless (queries join them to events) but cost space.
//
// # Upgrading from schema version 1
//
// Open upgrades a version 1 file (written before Event.Metadata existed)
// in place, in one transaction, the first time it opens it for writing: it
// adds the metadata column (NULL for every old event), the cursors table
// and an epoch, and keeps every event, its Seq, ID and Payload bytes, and
// LastSeq. If the upgrade fails, the file is left as it was. A version 1
// file opened read-only (WithReadOnly, or a file without write permission)
// is read as it is: its events have no metadata, LoadCursor returns 0, and
// Epoch returns "", since only a writer can add one.
//
// # Queries and their cost
//
// Every Query reads through an index and walks it in seq order, stopping
// after Limit matching rows, so it costs O(log n + Limit) whatever the size
// of the store, when most rows the index yields match:
//
//   - an exact topic: events_topic, which orders each topic's rows by seq;
//   - "prefix.*": topic_prefixes, which holds one row per proper prefix of
//     each event's topic, so every event strictly below a prefix is one
//     contiguous, seq-ordered range of its primary key. A range scan of
//     events_topic (topic >= 'prefix.' AND topic < 'prefix/') finds the same
//     rows but not in seq order: Newest or AfterSeq queries then read and
//     sort every event under the prefix, hundreds of times slower over a
//     large store (BenchmarkQuery, newest 100 of 500,000 matching events in
//     a store of 1,000,000: ~0.3 ms against 120–300 ms). The price is one
//     extra row per dot in the topic, written by Append in one statement
//     per batch. What it costs is pages: a batch's prefix rows land in as
//     many places of the index as the batch has distinct prefixes, and each
//     changed page is written to the log at commit (BenchmarkPrefixIndex:
//     about 1.7× the time of the same rows without prefix rows). Virtual
//     generated columns for a topic's first one and two segments, with an
//     index each, cost the same to write in the same benchmark and serve
//     only those two depths, so the table stays;
//   - "*" and AfterSeq: the seq primary key;
//   - Since with pattern "*" and no AfterSeq: events_ts, then the rows at or
//     after Since are sorted by seq, so this one costs O(rows after Since).
//     With a pattern or AfterSeq, Since filters the rows that index yields,
//     as does the WithMaxAge cutoff;
//   - other globs ("worker.*.complete", "chat.room?", "*.failed") are
//     narrowed by the literal text before their first wildcard, through
//     topic_prefixes when that text holds a dot and through a range of
//     events_topic otherwise, and the rows are matched with eventbus.Match.
//     A glob with a leading wildcard reads the seq primary key.
//
// Query runs on its own connections and never waits for Append: WAL lets
// readers see the last committed batch while a writer adds the next.
//
// # Retention
//
// WithMaxEvents and WithMaxAge are applied by one background goroutine, at
// Open and then every WithPruneInterval (default 1s), in transactions of at
// most 1,000 events so that Append never waits long. Events past WithMaxAge
// are hidden from Query at once; WithMaxEvents may be exceeded for up to
// one interval. Close stops the goroutine and waits for it: no goroutine
// outlives Close. Deleted space is reused by later events; the file does
// not shrink (run VACUUM from the shell for that).
//
// # Read-only stores
//
// WithReadOnly opens the file with SQLite's mode=ro, so SQLite itself
// refuses every write: Append returns an error wrapping ErrReadOnly and
// nothing is pruned. Use it to read a store another process writes; it
// sees each of that process's batches as it commits. A file with no write
// permission bits is opened this way too, even by root, whom file
// permissions do not stop.
//
// # Concurrency
//
// A Store is safe for concurrent use. Appends, cursor saves and the
// pruner's deletes run one at a time on a single writer connection (BEGIN
// IMMEDIATE, with a busy timeout for other processes' locks,
// WithBusyTimeout); Query, LoadCursor and a read-only store's LastSeq use
// a pool of four reader connections.
//
// One Store writes a given file at a time. A writable Store reads the last
// Seq once, at Open, and then keeps it in memory: Append checks a batch
// against it without reading the file, and LastSeq answers from it. A
// second writer (another process) is serialised by SQLite's lock, but the
// Seqs it stores are unknown to this Store: a batch reusing one fails (the
// seq primary key refuses it), and Seqs may interleave.
//
// # Costs of Append
//
// A batch is one transaction: INSERTs of up to 32 events each, bound
// through the driver connection with reused bindings (no database/sql
// conversion per statement), one statement that writes the batch's
// topic_prefixes rows, and the commit. Statement journals stay in memory
// (temp_store=MEMORY on the writer). What Go allocates per event is the
// boxing of its Seq, ID, Payload and Timestamp for the driver (Type, Topic
// and Source come from a small cache of values bound before); per batch,
// about fifteen more for the transaction and the statements
// (TestAppendAllocs holds these budgets). Most of the time goes to SQLite
// writing the changed pages to the log at commit.
package sqlitestore
