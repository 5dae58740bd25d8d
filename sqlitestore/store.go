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
// One Store per file should write at a time: it keeps the file's last Seq
// in memory from Open on (see the package documentation, Concurrency). Any
// number of stores opened WithReadOnly may read it.
type Store struct {
	cfg  config
	path string

	w  *sql.DB   // writer pool of one connection, nil when read-only; after Open, use wc
	wc *sql.Conn // w's one connection, held from Open to Close
	r  *sql.DB   // readers
	ck *sql.DB   // the checkpointer's connection, nil when read-only (checkpoint.go)

	ckWake    chan struct{} // a commit for the checkpointer, capacity 1
	ckFailing episode       // checkpointer goroutine only

	// version is the file's schema version: schemaVersion, or 1 for a
	// version 1 file opened read-only (no metadata, cursors or epoch).
	version int
	epoch   string // see Epoch; "" for a read-only version 1 file

	// Prepared statements: saveCursor on wc, the others on r.
	saveCursor          *sql.Stmt
	lastSeq, loadCursor *sql.Stmt

	// wsem is held (a token in it) by every write transaction: Append,
	// SaveCursors and the pruner's deletes run one at a time, and a wait
	// for it ends with the caller's ctx. It guards w (the writer state
	// below); see lockWriter.
	wsem chan struct{}
	wr   writer

	// last is the highest Seq ever appended, for LastSeq on a writable
	// store: wr.last, published after each commit.
	last atomic.Uint64

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

	pruneFailing episode // pruner goroutine only
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
		cfg:    cfg,
		path:   path,
		stmts:  make(map[string]*sql.Stmt),
		stop:   make(chan struct{}),
		wsem:   make(chan struct{}, 1),
		ckWake: make(chan struct{}, 1),
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
	if s.ck != nil {
		s.wg.Go(s.checkpointLoop)
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
		v.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walLimit)) // see checkpoint.go
		if s.cfg.fullSync {
			v.Add("_pragma", "synchronous(FULL)")
		} else {
			v.Add("_pragma", "synchronous(NORMAL)")
		}
		// Keep statement journals in memory: a multi-row INSERT inside a
		// transaction journals the pages it changes so that it can be
		// undone alone, which otherwise spills to a temporary file (a
		// quarter of Append's time, in BenchmarkAppend's profile).
		v.Add("_pragma", "temp_store(MEMORY)")
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
		if s.wc, err = s.w.Conn(ctx); err != nil {
			return err
		}
		if err := s.openCheckpointer(s.dsn(abs, true)); err != nil {
			return err
		}
	}

	prepare := func(db *sql.DB, dst **sql.Stmt, query string) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, query)
		}
	}
	if !s.cfg.readOnly {
		if s.saveCursor, err = s.wc.PrepareContext(ctx, `INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`); err != nil {
			return err
		}
		var last int64
		if err := s.wc.QueryRowContext(ctx, lastSeqSQL).Scan(&last); err != nil {
			return err
		}
		s.wr.last = uint64(last)
		s.last.Store(uint64(last))
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
		if err := s.wc.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			return err
		}
		s.count.Store(n)
	}
	return nil
}

// lastSeqSQL reads the highest Seq ever appended: the largest stored, or
// the high-water mark in meta, which the pruner raises before it deletes.
// Append does not write meta, which saves a page write per batch. A
// writable store reads it once, at Open, and then knows it (one writer per
// file); a read-only store reads it for every LastSeq.
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
	for _, st := range []*sql.Stmt{s.lastSeq, s.loadCursor, s.saveCursor} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.wc != nil {
		errs = append(errs, s.wc.Raw(s.wr.close), s.wc.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.ck != nil {
		errs = append(errs, s.ck.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// episode is a background task's failure state, so that a failure is
// logged once, and its end once, rather than at every retry.
type episode struct{ failing bool }

// note logs err, the outcome of the task named what, if it starts or ends
// a failure episode.
func (e *episode) note(s *Store, err error, what string) {
	switch {
	case err != nil && !e.failing:
		e.failing = true
		s.cfg.logger.Warn("sqlitestore: "+what+" failed; will retry", "path", s.path, "err", err)
	case err == nil && e.failing:
		e.failing = false
		s.cfg.logger.Info("sqlitestore: "+what+" works again", "path", s.path)
	}
}
