package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/choiros/eventbus"
)

// Sentinel errors. Errors returned by this package wrap one of these, or
// eventbus.ErrClosed, eventbus.ErrInvalidOption or eventbus.ErrInvalidQuery,
// with detail and the driver's own error; match them with errors.Is.
var (
	// ErrCorrupt reports a file that is not an SQLite database, or one that
	// SQLite found damaged. The driver's error is wrapped beside it.
	ErrCorrupt = errors.New("sqlitestore: corrupt or not an SQLite database")

	// ErrSchema reports an SQLite database that is not an eventbus store, or
	// one written by a newer version of this package.
	ErrSchema = errors.New("sqlitestore: incompatible schema")

	// ErrReadOnly is returned by Append on a store opened read-only, either
	// with WithReadOnly or because the file has no write permission.
	ErrReadOnly = errors.New("sqlitestore: read-only store")
)

// driverName is the database/sql driver modernc.org/sqlite registers.
const driverName = "sqlite"

// sqliteHeaderLen is the length of the header at the start of every SQLite
// database file.
const sqliteHeaderLen = 100

// readers is how many connections serve Query and LastSeq at once.
const readers = 4

// pruneBatch is how many events one retention transaction deletes at most,
// so that pruning a large backlog never holds the write lock for long.
const pruneBatch = 1000

// Timestamps are stored as int64 Unix nanoseconds, which cover these years.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Store is an eventbus.Store in an SQLite file. It is safe for concurrent
// use. Append and the background pruner write through one connection, one
// transaction at a time; Query and LastSeq read through a small pool of
// connections and, thanks to WAL, never wait for a writer.
//
// One Store per file should write at a time: a second writer on the same
// file (another process) is serialised by SQLite's lock, but both would
// assign Seqs. Any number of stores opened WithReadOnly may read it.
type Store struct {
	cfg  config
	path string

	w *sql.DB // writer, one connection; nil when read-only
	r *sql.DB // readers

	// version is the file's schema version: schemaVersion, or 1 for a
	// version 1 file opened read-only (no metadata, cursors or epoch).
	version int
	epoch   string // see Epoch; "" for a read-only version 1 file

	// Prepared statements; the first four run on w, the others on r.
	insEvent, insPrefix, getLast, saveCursor *sql.Stmt
	lastSeq, loadCursor                      *sql.Stmt

	// wmu is held by every write transaction (Append, SaveCursors, the
	// pruner's deletes), so they run one at a time, and guards what only
	// they use: the metadata scratch space below.
	wmu sync.Mutex

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // Query statements on r, by SQL text

	// mu is held shared by every call and exclusively by Close, so Close
	// waits for calls in flight before it closes the connections.
	mu     sync.RWMutex
	closed bool

	// count is the number of stored events, kept when maxEvents is set.
	count atomic.Int64

	stop      chan struct{} // closed by Close to stop the pruner
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	pruneFailing bool // pruner goroutine only

	// Scratch space for encoding metadata, used by Append under wmu.
	mdBuf  []byte
	mdKeys []string
}

var (
	_ eventbus.Store      = (*Store)(nil)
	_ eventbus.EpochStore = (*Store)(nil)
)

// Open opens the store in the SQLite file at path, creating the file and
// its schema if the file does not exist or is empty, and upgrading the
// schema of a file written by an older version of this package.
//
// A file that is not an SQLite database, or is damaged, is an error
// wrapping ErrCorrupt; an SQLite database that is not an eventbus store, or
// was written by a newer version, is an error wrapping ErrSchema. A file
// with no write permission bits is opened read-only, even by root (who
// could write it anyway), as WithReadOnly does. Invalid options are errors
// wrapping eventbus.ErrInvalidOption.
//
// Open starts the background pruner when WithMaxEvents or WithMaxAge is
// set; Close stops it.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	exists := err == nil && fi.Size() > 0
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("sqlitestore: open %s: is a directory", path)
	case err == nil && fi.Size() > 0 && fi.Size() < sqliteHeaderLen:
		// SQLite rejects most files that are not databases, but may write
		// a new database over one shorter than its header: refuse first.
		return nil, fmt.Errorf("%w: %s: %d bytes, shorter than an SQLite header", ErrCorrupt, path, fi.Size())
	case err == nil && fi.Mode().Perm()&0o222 == 0:
		cfg.readOnly = true
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}

	s := &Store{
		cfg:   cfg,
		path:  path,
		stmts: make(map[string]*sql.Stmt),
		stop:  make(chan struct{}),
	}
	if err := s.open(context.Background(), abs, exists); err != nil {
		_ = s.closeDBs()
		var schema *schemaError
		switch {
		case errors.As(err, &schema):
			return nil, fmt.Errorf("%w: %s: %s", ErrSchema, path, schema.detail)
		case isCode(err, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if s.pruning() {
		s.wg.Go(s.pruneLoop)
	}
	return s, nil
}

// dsn returns the driver's data source name for the file at abs, for the
// writer connection or for readers.
func (s *Store) dsn(abs string, writer bool) string {
	v := url.Values{}
	v.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", s.cfg.busyTimeout.Milliseconds()))
	switch {
	case s.cfg.readOnly:
		v.Set("mode", "ro") // SQLite itself refuses every write, whoever runs the process
	case writer:
		v.Add("_pragma", "journal_mode(WAL)")
		if s.cfg.fullSync {
			v.Add("_pragma", "synchronous(FULL)")
		} else {
			v.Add("_pragma", "synchronous(NORMAL)")
		}
		v.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
	default:
		v.Add("_pragma", "query_only(1)")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: v.Encode()}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // Windows: file:///C:/…
	}
	return u.String()
}

// open opens the connections, checks and upgrades the schema, and prepares
// the statements. exists says whether the file has content: then its
// schema is checked through a reader first, so that a file Open refuses is
// left exactly as it was (the writer's journal_mode=WAL would change it).
func (s *Store) open(ctx context.Context, abs string, exists bool) error {
	var err error
	if s.r, err = sql.Open(driverName, s.dsn(abs, false)); err != nil {
		return err
	}
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	if exists || s.cfg.readOnly {
		version, err := checkSchema(ctx, s.r)
		if err != nil {
			return err
		}
		if s.cfg.readOnly && version < 1 {
			return &schemaError{fmt.Sprintf("schema version %d needs an upgrade, which a read-only store cannot do", version)}
		}
		s.version = version
	}
	if s.cfg.readOnly {
		// A version 1 file is read as it is: without metadata, cursors or
		// an epoch, which only a writer can add.
		if s.version >= 2 {
			if s.epoch, err = readEpoch(ctx, s.r); err != nil {
				return err
			}
		}
	} else {
		if s.w, err = sql.Open(driverName, s.dsn(abs, true)); err != nil {
			return err
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		if s.epoch, err = migrate(ctx, s.w); err != nil {
			return err
		}
		s.version = schemaVersion
	}

	prepare := func(db *sql.DB, dst **sql.Stmt, query string) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, query)
		}
	}
	if !s.cfg.readOnly {
		prepare(s.w, &s.insEvent, `INSERT INTO events (seq, id, type, topic, payload, ts, source, correlation_id, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		prepare(s.w, &s.insPrefix, `INSERT INTO topic_prefixes (prefix, seq) VALUES (?, ?)`)
		prepare(s.w, &s.getLast, lastSeqSQL)
		prepare(s.w, &s.saveCursor, `INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`)
	}
	prepare(s.r, &s.lastSeq, lastSeqSQL)
	if s.version >= 2 {
		prepare(s.r, &s.loadCursor, `SELECT seq FROM cursors WHERE name = ?`)
	}
	if err != nil {
		return err
	}
	if s.pruning() && s.cfg.maxEvents > 0 {
		var n int64
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			return err
		}
		s.count.Store(n)
	}
	return nil
}

// lastSeqSQL reads the highest Seq ever appended: the largest stored, or
// the high-water mark in meta, which the pruner raises before it deletes.
// Append does not write meta, which saves a page write per batch.
const lastSeqSQL = `SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0), coalesce((SELECT max(seq) FROM events), 0))`

// pruning reports whether the store runs the background pruner.
func (s *Store) pruning() bool {
	return !s.cfg.readOnly && (s.cfg.maxEvents > 0 || s.cfg.maxAge > 0)
}

// schemaError is a schema problem found by Open, reported under ErrSchema.
type schemaError struct{ detail string }

func (e *schemaError) Error() string { return e.detail }

// isCode reports whether err is an SQLite error with one of the given
// primary result codes.
func isCode(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code()&0xff == c {
			return true
		}
	}
	return false
}

// opError wraps an error from operation op of an open store.
func (s *Store) opError(op string, err error) error {
	switch {
	case isCode(err, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
		return fmt.Errorf("%w: %s: %s: %w", ErrCorrupt, s.path, op, err)
	case isCode(err, sqlite3.SQLITE_READONLY):
		return fmt.Errorf("%w: %s: %s: %w", ErrReadOnly, s.path, op, err)
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// enter takes the shared lock for one call, or reports that the store is
// closed. The caller releases it with s.mu.RUnlock.
func (s *Store) enter(op string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("sqlitestore: %s: %w", op, eventbus.ErrClosed)
	}
	return nil
}

// Append stores events in one transaction: all of them, or none if it
// returns an error. Seqs must be strictly increasing and above LastSeq, at
// most math.MaxInt64, and Timestamps between the years 1678 and 2262 (the
// range of int64 Unix nanoseconds); otherwise nothing is stored and the
// error says why. A nil Payload is stored as null.
//
// Append returns once the transaction is committed: in WAL mode with
// synchronous=NORMAL the events then survive a crash or kill of the process
// (see the package documentation for power loss). ctx bounds the wait for
// the write lock and the writing; if ctx ends first the transaction is
// rolled back. On a read-only store it returns an error wrapping
// ErrReadOnly, after Close one wrapping eventbus.ErrClosed.
func (s *Store) Append(ctx context.Context, events []eventbus.Event) error {
	if err := s.enter("append"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if s.cfg.readOnly {
		return fmt.Errorf("%w: cannot append to %s", ErrReadOnly, s.path)
	}
	if len(events) == 0 {
		return nil
	}
	if err := checkBatch(events); err != nil {
		return err
	}
	if err := s.append(ctx, events); err != nil {
		return s.opError("append", err)
	}
	s.count.Add(int64(len(events)))
	return nil
}

// checkBatch reports why events cannot be stored, or nil.
func checkBatch(events []eventbus.Event) error {
	var prev uint64
	for i := range events {
		e := &events[i]
		switch {
		case i > 0 && e.Seq <= prev:
			return fmt.Errorf("sqlitestore: append: Seq %d not above %d", e.Seq, prev)
		case e.Seq > math.MaxInt64:
			return fmt.Errorf("sqlitestore: append: Seq %d above the largest storable, %d", e.Seq, int64(math.MaxInt64))
		case e.Timestamp.Before(minTime) || e.Timestamp.After(maxTime):
			return fmt.Errorf("sqlitestore: append: event Seq %d: Timestamp %v outside the years 1678–2262", e.Seq, e.Timestamp)
		}
		prev = e.Seq
	}
	return nil
}

func (s *Store) append(ctx context.Context, events []eventbus.Event) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit

	var last int64
	if err := tx.StmtContext(ctx, s.getLast).QueryRowContext(ctx).Scan(&last); err != nil {
		return err
	}
	if first := events[0].Seq; first <= uint64(last) {
		return fmt.Errorf("first Seq %d not above the last stored, %d", first, last)
	}
	ins := tx.StmtContext(ctx, s.insEvent)
	pre := tx.StmtContext(ctx, s.insPrefix)
	for i := range events {
		e := &events[i]
		seq := int64(e.Seq)
		payload := "null"
		if e.Payload != nil {
			payload = string(e.Payload)
		}
		var corr, md any
		if e.CorrelationID != "" {
			corr = e.CorrelationID
		}
		if len(e.Metadata) > 0 {
			s.mdBuf, s.mdKeys = appendMetadata(s.mdBuf[:0], e.Metadata, s.mdKeys)
			md = string(s.mdBuf)
		}
		if _, err := ins.ExecContext(ctx, seq, e.ID.String(), string(e.Type), e.Topic, payload,
			e.Timestamp.UnixNano(), e.Source, corr, md); err != nil {
			return fmt.Errorf("event Seq %d: %w", e.Seq, err)
		}
		for j := 1; j < len(e.Topic); j++ {
			if e.Topic[j] == '.' {
				if _, err := pre.ExecContext(ctx, e.Topic[:j], seq); err != nil {
					return fmt.Errorf("event Seq %d: %w", e.Seq, err)
				}
			}
		}
	}
	return tx.Commit()
}

// LastSeq returns the highest Seq ever appended, or 0 for an empty store.
// It stays correct after retention has deleted events, even all of them:
// the pruner keeps the high-water mark in the meta table. After Close it returns an
// error wrapping eventbus.ErrClosed.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	if err := s.enter("last seq"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var last int64
	if err := s.lastSeq.QueryRowContext(ctx).Scan(&last); err != nil {
		return 0, s.opError("last seq", err)
	}
	return uint64(last), nil
}

// Close stops the pruner, waits for calls in flight, and closes the
// database, which checkpoints the write-ahead log into the main file.
// Later calls return errors wrapping eventbus.ErrClosed; Close itself may
// be called again and returns what the first call returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		if err := s.closeDBs(); err != nil {
			s.closeErr = fmt.Errorf("sqlitestore: close: %w", err)
		}
	})
	return s.closeErr
}

// closeDBs closes the statements and then the connections, readers first,
// so the writer, closing last, checkpoints and removes the WAL file.
func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	clear(s.stmts)
	for _, st := range []*sql.Stmt{s.lastSeq, s.loadCursor, s.insEvent, s.insPrefix, s.getLast, s.saveCursor} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}
