package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/choiros/eventbus"
)

// Query returns the stored events matching q, oldest first; see
// eventbus.Store for the meaning of each field. Events older than
// WithMaxAge are never returned, even before the pruner deletes them.
//
// Every pattern shape reads through an index (the package documentation
// lists which): an exact topic through events_topic, "prefix.*" through
// topic_prefixes, "*" through the seq primary key, or through events_ts
// when q.Since is set and q.AfterSeq is not. Other globs are narrowed by
// the literal text before their first wildcard the same way and matched
// with eventbus.Match. Query sees each Append whole or not at all, and
// never waits for a writer. An invalid q is an error wrapping
// eventbus.ErrInvalidQuery; after Close it returns one wrapping
// eventbus.ErrClosed.
func (s *Store) Query(ctx context.Context, q eventbus.Query) ([]eventbus.Event, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: query: %w", err)
	}
	if err := s.enter("query"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	p, ok := s.plan(q, time.Now())
	if !ok {
		return nil, nil
	}
	out, err := s.run(ctx, p, q)
	if err != nil {
		return nil, s.opError("query", err)
	}
	return out, nil
}

func (s *Store) run(ctx context.Context, p plan, q eventbus.Query) ([]eventbus.Event, error) {
	stmt, err := s.stmt(ctx, p.sql)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, p.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []eventbus.Event
	sc := newScanner()
	for rows.Next() {
		e, err := sc.scan(rows)
		if err != nil {
			return nil, err
		}
		if p.glob && !eventbus.Match(q.Pattern, e.Topic) {
			continue
		}
		if out == nil {
			out = make([]eventbus.Event, 0, min(q.Limit, 256))
		}
		out = append(out, e)
		if len(out) == q.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if q.Newest {
		slices.Reverse(out)
	}
	return out, nil
}

// stmt returns the prepared reader statement for query, preparing it the
// first time. There are a few dozen query shapes at most.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// scanner reads events from rows into one set of destinations, made once
// per query rather than once per row. The ID and Metadata are read as
// sql.RawBytes, parsed at once, and never copied.
type scanner struct {
	seq, ts            int64
	id, mdText         sql.RawBytes
	typ, topic, source string
	payload            []byte
	corr               sql.NullString
	dest               [9]any
}

// crockford marks the characters of a ULID's text form, either case.
var crockford = func() (t [256]bool) {
	for _, c := range "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz" {
		t[c] = true
	}
	return t
}()

// parseID parses a ULID's text form as strictly as ulid.ParseStrict,
// without making a string of it.
func parseID(id *ulid.ULID, text []byte) error {
	for _, c := range text {
		if !crockford[c] {
			return ulid.ErrInvalidCharacters
		}
	}
	return id.UnmarshalText(text)
}

func newScanner() *scanner {
	sc := &scanner{}
	sc.dest = [9]any{&sc.seq, &sc.id, &sc.typ, &sc.topic, &sc.payload, &sc.ts, &sc.source, &sc.corr, &sc.mdText}
	return sc
}

func (sc *scanner) scan(rows *sql.Rows) (eventbus.Event, error) {
	sc.payload = nil // Scan copies into a non-nil slice's array: give each event its own
	if err := rows.Scan(sc.dest[:]...); err != nil {
		return eventbus.Event{}, err
	}
	var uid ulid.ULID
	if err := parseID(&uid, sc.id); err != nil {
		return eventbus.Event{}, fmt.Errorf("event Seq %d: id %q: %w", sc.seq, sc.id, err)
	}
	md, err := parseMetadata(sc.mdText)
	if err != nil {
		return eventbus.Event{}, fmt.Errorf("event Seq %d: %w", sc.seq, err)
	}
	return eventbus.Event{
		ID:            uid,
		Seq:           uint64(sc.seq),
		Type:          eventbus.EventType(sc.typ),
		Topic:         sc.topic,
		Payload:       json.RawMessage(sc.payload),
		Timestamp:     time.Unix(0, sc.ts).UTC(),
		Source:        sc.source,
		CorrelationID: sc.corr.String,
		Metadata:      md,
	}, nil
}

// plan is one Query as SQL.
type plan struct {
	sql  string
	args []any
	glob bool // rows are a superset: filter them with eventbus.Match
}

// Pattern shapes, by the index that serves them.
type shape uint8

const (
	shapeAll    shape = iota // every topic: the seq primary key (or events_ts)
	shapeExact               // one topic: events_topic
	shapePrefix              // topics below key: topic_prefixes
	shapeRange               // topics in [key, upper): events_topic
)

// classify returns the shape that finds the topics matching a valid
// pattern, its key, and whether the shape only narrows (a glob).
func classify(pattern string) (sh shape, key string, glob bool) {
	wild := strings.IndexAny(pattern, "*?")
	switch {
	case pattern == "*":
		return shapeAll, "", false
	case wild < 0:
		return shapeExact, pattern, false
	case wild == len(pattern)-1 && strings.HasSuffix(pattern, ".*"):
		return shapePrefix, pattern[:len(pattern)-2], false
	}
	// A glob: every topic it matches starts with the literal text before
	// the first wildcard, so it lies below that text's last whole segment.
	lit := pattern[:wild]
	if dot := strings.LastIndexByte(lit, '.'); dot > 0 {
		return shapePrefix, lit[:dot], true
	}
	if lit != "" {
		return shapeRange, lit, true
	}
	return shapeAll, "", true
}

// upper returns the smallest string above every string starting with lit:
// lit with its last byte incremented. Valid patterns hold no 0xFF byte.
func upper(lit string) string {
	b := []byte(lit)
	b[len(b)-1]++
	return string(b)
}

// selectEvents is the start of every Query's SQL, by schema version: a
// version 1 file, read-only, has no metadata column.
var selectEvents = [...]string{
	1: `SELECT e.seq, e.id, e.type, e.topic, e.payload, e.ts, e.source, e.correlation_id, NULL FROM `,
	2: `SELECT e.seq, e.id, e.type, e.topic, e.payload, e.ts, e.source, e.correlation_id, e.metadata FROM `,
}

// plan returns the SQL for a normalized q at time now, or false if nothing
// can match.
//
// Terms written "+col" are filters that must not pick the index: the
// pattern's index drives the query, in seq order, and stops after Limit
// rows, so a query costs O(log n + Limit) when most rows the index yields
// match. Since is the one exception: with pattern "*" and no AfterSeq,
// events_ts drives, and the rows at or after Since are sorted by seq.
func (s *Store) plan(q eventbus.Query, now time.Time) (plan, bool) {
	if q.AfterSeq >= math.MaxInt64 {
		return plan{}, false
	}
	after := int64(q.AfterSeq)

	var since int64
	hasSince, userSince := false, false
	if !q.Since.IsZero() && q.Since.After(minTime) {
		if q.Since.After(maxTime) {
			return plan{}, false
		}
		since, hasSince, userSince = q.Since.UnixNano(), true, true
	}
	if s.cfg.maxAge > 0 {
		if cut := now.Add(-s.cfg.maxAge).UnixNano(); !hasSince || cut > since {
			since, hasSince = cut, true
		}
	}

	sh, key, glob := classify(q.Pattern)
	var b strings.Builder
	b.WriteString(selectEvents[s.version])
	args := make([]any, 0, 5)
	seqCol := "e.seq"
	switch sh {
	case shapeAll:
		if userSince && after == 0 {
			// Append never stores Seq 0, so "seq > 0" can be left out.
			b.WriteString("events e INDEXED BY events_ts WHERE e.ts >= ?")
			args = append(args, since)
			hasSince = false
		} else {
			b.WriteString("events e WHERE e.seq > ?")
			args = append(args, after)
		}
	case shapeExact:
		b.WriteString("events e WHERE e.topic = ? AND e.seq > ?")
		args = append(args, key, after)
	case shapePrefix:
		b.WriteString("topic_prefixes p CROSS JOIN events e ON e.seq = p.seq WHERE p.prefix = ? AND p.seq > ?")
		args = append(args, key, after)
		seqCol = "p.seq"
	case shapeRange:
		b.WriteString("events e WHERE e.topic >= ? AND e.topic < ? AND +e.seq > ?")
		args = append(args, key, upper(key), after)
	}
	if hasSince {
		b.WriteString(" AND +e.ts >= ?")
		args = append(args, since)
	}
	b.WriteString(" ORDER BY ")
	b.WriteString(seqCol)
	if q.Newest {
		b.WriteString(" DESC")
	}
	if !glob {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	return plan{sql: b.String(), args: args, glob: glob}, true
}
