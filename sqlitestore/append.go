package sqlitestore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/choiros/eventbus"
)

// rowsPerInsert is how many events one INSERT statement writes at most. A
// batch is written by INSERTs of this many rows and one of the rest, so
// the cost of running a statement (binding, database/sql, the driver) is
// paid once per rowsPerInsert events, not once per event.
const rowsPerInsert = 32

// eventColumns is the number of columns an INSERT binds per event.
const eventColumns = 9

// insertSQL returns the INSERT of n events. IDs, Payloads and Metadata are
// bound as bytes, without a copy into a string, and stored as TEXT.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (seq, id, type, topic, payload, ts, source, correlation_id, metadata) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`(?, CAST(? AS TEXT), ?, ?, CAST(? AS TEXT), ?, ?, ?, CAST(? AS TEXT))`)
	}
	return b.String()
}

// prefixSQL writes the topic_prefixes rows of the events with Seq in
// [?1, ?2]: one per proper prefix of each topic ("a" and "a.b" for
// "a.b.c"), found by SQLite itself, so a batch's prefixes cost one
// statement. instr, substr and length count characters, consistently, and
// a '.' is never part of another character in UTF-8, so the prefixes are
// the same bytes as the topic's text before each dot.
const prefixSQL = `INSERT INTO topic_prefixes (prefix, seq)
WITH RECURSIVE dots(seq, topic, n) AS (
    SELECT seq, topic, instr(topic, '.') - 1 FROM events WHERE seq BETWEEN ?1 AND ?2 AND instr(topic, '.') > 1
    UNION ALL
    SELECT seq, topic, n + instr(substr(topic, n + 2), '.') FROM dots WHERE instr(substr(topic, n + 2), '.') > 0
)
SELECT substr(topic, 1, n), seq FROM dots`

// nullPayload is what a nil Payload is stored as.
var nullPayload any = []byte("null")

// writer is the state of the write path, used only by the holder of the
// store's writer lock (Store.lockWriter), and its driver statements only
// inside Store.wc.Raw, on the one connection they were prepared on.
type writer struct {
	// last is the highest Seq ever appended: read once at Open, then kept
	// here, since one Store writes a file at a time.
	last uint64

	ins      [rowsPerInsert + 1]driver.Stmt // ins[n] inserts n events; prepared on first use
	prefixes driver.Stmt

	args   []driver.NamedValue // bindings, reused
	ids    []byte              // the batch's IDs in text form, 26 bytes each
	md     []byte              // the batch's Metadata as JSON text
	mdKeys []string            // scratch for sorting metadata keys
	boxes  map[string]any      // see box
}

// maxBoxes bounds writer.boxes: a bus uses a few types, sources and
// topics again and again, and a flood of distinct ones only empties the
// cache now and then.
const maxBoxes = 1024

// box returns str as an interface value for binding, from a cache of the
// strings bound before: putting a string in an interface allocates, and
// the Type, Topic and Source of an event are mostly ones seen before, so
// the cache saves three allocations per event.
func (w *writer) box(str string) any {
	if v, ok := w.boxes[str]; ok {
		return v
	}
	if w.boxes == nil {
		w.boxes = make(map[string]any)
	} else if len(w.boxes) >= maxBoxes {
		clear(w.boxes)
	}
	v := any(str)
	w.boxes[str] = v
	return v
}

// lockWriter takes the writer lock, waiting at most until ctx ends.
func (s *Store) lockWriter(ctx context.Context) error {
	select {
	case s.wsem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWriter() { <-s.wsem }

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
//
// Append does not read back what it already knows: the Store keeps the
// last Seq it stored in memory (one Store writes a file at a time), so a
// batch costs its INSERTs, one statement for its topic prefixes, and the
// commit.
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
	if err := s.lockWriter(ctx); err != nil {
		return s.opError("append", err)
	}
	defer s.unlockWriter()
	w := &s.wr
	if first := events[0].Seq; first <= w.last {
		return fmt.Errorf("sqlitestore: append: first Seq %d not above the last stored, %d", first, w.last)
	}
	if err := s.wc.Raw(func(dc any) error { return w.append(ctx, dc, events) }); err != nil {
		return s.opError("append", err)
	}
	w.last = events[len(events)-1].Seq
	s.last.Store(w.last)
	s.count.Add(int64(len(events)))
	s.committed()
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

// append writes events in one transaction on the driver connection dc,
// the writer's; Store.Append calls it through Raw.
func (w *writer) append(ctx context.Context, dc any, events []eventbus.Event) (err error) {
	tx, err := dc.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	for first := 0; first < len(events); first += rowsPerInsert {
		chunk := events[first:min(first+rowsPerInsert, len(events))]
		if err := w.insert(ctx, dc, chunk); err != nil {
			if len(chunk) == 1 {
				return fmt.Errorf("event Seq %d: %w", chunk[0].Seq, err)
			}
			return fmt.Errorf("events Seq %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	if w.prefixes == nil {
		if w.prefixes, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, prefixSQL); err != nil {
			return err
		}
	}
	w.args = append(w.args[:0],
		driver.NamedValue{Ordinal: 1, Value: int64(events[0].Seq)},
		driver.NamedValue{Ordinal: 2, Value: int64(events[len(events)-1].Seq)})
	if _, err := w.prefixes.(driver.StmtExecContext).ExecContext(ctx, w.args); err != nil {
		return fmt.Errorf("topic prefixes: %w", err)
	}
	return tx.Commit()
}

// insert runs the INSERT of chunk, at most rowsPerInsert events.
func (w *writer) insert(ctx context.Context, dc any, chunk []eventbus.Event) error {
	n := len(chunk)
	if w.ins[n] == nil {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, insertSQL(n))
		if err != nil {
			return err
		}
		w.ins[n] = st
	}
	if w.ids == nil {
		w.ids = make([]byte, 26*rowsPerInsert)
	}
	w.md = w.md[:0]
	w.args = w.args[:0]
	for i := range chunk {
		e := &chunk[i]
		id := w.ids[26*i : 26*i+26 : 26*i+26]
		if err := e.ID.MarshalTextTo(id); err != nil {
			return err
		}
		payload := nullPayload
		if e.Payload != nil {
			payload = []byte(e.Payload)
		}
		var corr, md any
		if e.CorrelationID != "" {
			corr = e.CorrelationID
		}
		if len(e.Metadata) > 0 {
			start := len(w.md)
			w.md, w.mdKeys = appendMetadata(w.md, e.Metadata, w.mdKeys)
			md = w.md[start:len(w.md):len(w.md)]
		}
		w.args = append(w.args,
			driver.NamedValue{Value: int64(e.Seq)},
			driver.NamedValue{Value: id},
			driver.NamedValue{Value: w.box(string(e.Type))},
			driver.NamedValue{Value: w.box(e.Topic)},
			driver.NamedValue{Value: payload},
			driver.NamedValue{Value: e.Timestamp.UnixNano()},
			driver.NamedValue{Value: w.box(e.Source)},
			driver.NamedValue{Value: corr},
			driver.NamedValue{Value: md},
		)
	}
	for i := range w.args {
		w.args[i].Ordinal = i + 1
	}
	_, err := w.ins[n].(driver.StmtExecContext).ExecContext(ctx, w.args)
	return err
}

// close closes the driver statements; Store.closeDBs calls it through Raw.
func (w *writer) close(any) error {
	var errs []error
	for i, st := range w.ins {
		if st != nil {
			errs = append(errs, st.Close())
			w.ins[i] = nil
		}
	}
	if w.prefixes != nil {
		errs = append(errs, w.prefixes.Close())
		w.prefixes = nil
	}
	return errors.Join(errs...)
}

// LastSeq returns the highest Seq ever appended, or 0 for an empty store.
// It stays correct after retention has deleted events, even all of them:
// the pruner keeps the high-water mark in the meta table. A writable store
// answers from memory; a read-only one reads the file, so it sees what
// another process appends. After Close it returns an error wrapping
// eventbus.ErrClosed.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	if err := s.enter("last seq"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if !s.cfg.readOnly {
		return s.last.Load(), nil
	}
	var last int64
	if err := s.lastSeq.QueryRowContext(ctx).Scan(&last); err != nil {
		return 0, s.opError("last seq", err)
	}
	return uint64(last), nil
}
