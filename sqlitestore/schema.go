package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/oklog/ulid/v2"
)

// applicationID marks the file as an eventbus store (PRAGMA application_id,
// "EBUS"), so Open can refuse other applications' databases.
const applicationID = 0x45425553

// schemaVersion is the PRAGMA user_version this package writes and reads.
// A later release that changes the schema appends a step to migrations and
// bumps it; Open upgrades older files in one transaction and refuses newer
// ones.
const schemaVersion = 2

// migrations[i] upgrades a file from user_version i to i+1.
var migrations = []string{
	0: `
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY,  -- Event.Seq
    id             TEXT    NOT NULL,     -- Event.ID, a ULID in its 26-character text form
    type           TEXT    NOT NULL,     -- Event.Type
    topic          TEXT    NOT NULL,     -- Event.Topic
    payload        TEXT    NOT NULL,     -- Event.Payload, JSON text
    ts             INTEGER NOT NULL,     -- Event.Timestamp, Unix nanoseconds, UTC
    source         TEXT    NOT NULL,     -- Event.Source
    correlation_id TEXT                  -- Event.CorrelationID, NULL if empty
);
CREATE INDEX events_topic ON events (topic);  -- exact topics, and topic ranges, in seq order per topic
CREATE INDEX events_ts    ON events (ts);     -- Query.Since, WithMaxAge
CREATE TABLE topic_prefixes (
    prefix TEXT    NOT NULL,  -- each proper prefix of the topic: "a" and "a.b" for "a.b.c"
    seq    INTEGER NOT NULL,  -- events.seq
    PRIMARY KEY (prefix, seq)
) WITHOUT ROWID;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('last_seq', 0);
`,
	// Version 2: Event.Metadata, durable consumers' cursors, and a meta
	// table whose values may be text (the epoch). The epoch row is added by
	// migrate, which makes a new one.
	1: `
ALTER TABLE events ADD COLUMN metadata TEXT;  -- Event.Metadata, a JSON object of strings, NULL if empty
CREATE TABLE cursors (
    name TEXT    PRIMARY KEY,  -- a durable consumer's name
    seq  INTEGER NOT NULL      -- its cursor: the consumer has acked everything up to this Seq
) WITHOUT ROWID;
CREATE TABLE meta_v2 (
    key   TEXT PRIMARY KEY,
    value      NOT NULL  -- no declared type: integers stay integers, text stays text
);
INSERT INTO meta_v2 (key, value) SELECT key, value FROM meta;
DROP TABLE meta;
ALTER TABLE meta_v2 RENAME TO meta;
`,
}

// migrate checks that the database on the writer connection is an eventbus
// store (or empty), brings its schema up to schemaVersion, gives it an
// epoch if it has none, all in one transaction, and returns the epoch.
func migrate(ctx context.Context, db *sql.DB) (epoch string, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	version, err := checkSchema(ctx, tx)
	if err != nil {
		return "", err
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return "", fmt.Errorf("upgrading schema from version %d: %w", v, err)
		}
	}
	if version < schemaVersion {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, schemaVersion)); err != nil {
			return "", err
		}
	}
	// A new epoch for a new file, or an upgraded one; an existing row is
	// kept (INSERT OR IGNORE changes no page then).
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)`, ulid.Make().String()); err != nil {
		return "", err
	}
	if epoch, err = readEpoch(ctx, tx); err != nil {
		return "", err
	}
	return epoch, tx.Commit()
}

// readEpoch returns the epoch kept in meta.
func readEpoch(ctx context.Context, q schemaQuerier) (string, error) {
	var epoch string
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'epoch'`).Scan(&epoch); err != nil {
		return "", fmt.Errorf("reading the epoch: %w", err)
	}
	return epoch, nil
}

// schemaQuerier is a *sql.Tx or *sql.DB.
type schemaQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkSchema returns the schema version of the database, 0 for an empty
// one, or a *schemaError if it is not an eventbus store this package can
// read.
func checkSchema(ctx context.Context, q schemaQuerier) (int, error) {
	var appID, version, tables int
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, err
	}
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, err
	}
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return 0, err
	}
	switch {
	case appID == 0 && version == 0 && tables == 0:
		return 0, nil // a new, empty database
	case appID != applicationID:
		return 0, &schemaError{fmt.Sprintf("not an eventbus store (application_id %#x, user_version %d, %d schema objects)", appID, version, tables)}
	case version > schemaVersion:
		return 0, &schemaError{fmt.Sprintf("schema version %d is newer than this package's %d", version, schemaVersion)}
	case version < 1:
		return 0, &schemaError{fmt.Sprintf("schema version %d", version)}
	}
	return version, nil
}
