package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Epoch returns the store's epoch: a ULID string made when the file was
// created (or upgraded from schema version 1) and kept in its meta table,
// so it stays the same across Close and Open for as long as the file keeps
// its events and Seqs, and a new file gets a new one. It implements
// eventbus.EpochStore, which the bus uses to tell resuming clients whether
// their Seqs still mean anything. A version 1 file opened read-only has no
// epoch yet: Epoch returns "" (a bus then makes its own). After Close it
// returns an error wrapping eventbus.ErrClosed.
func (s *Store) Epoch(context.Context) (string, error) {
	if err := s.enter("epoch"); err != nil {
		return "", err
	}
	defer s.mu.RUnlock()
	return s.epoch, nil
}

// SaveCursor records seq as the cursor of the durable consumer name: the
// Seq up to which it has acked every event. It replaces the name's previous
// cursor, whatever it was, in a transaction of its own, and returns once
// that is committed (durable as Append is). Seqs above math.MaxInt64 are
// an error. It shares the writer with Append, so it waits for an Append in
// progress; batch cursors with SaveCursors. On a read-only store it returns
// an error wrapping ErrReadOnly, after Close one wrapping
// eventbus.ErrClosed.
func (s *Store) SaveCursor(ctx context.Context, name string, seq uint64) error {
	return s.SaveCursors(ctx, map[string]uint64{name: seq})
}

// SaveCursors records several cursors, as SaveCursor does, in one
// transaction: all of them or, if it returns an error, none.
func (s *Store) SaveCursors(ctx context.Context, cursors map[string]uint64) error {
	if err := s.enter("save cursor"); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if s.cfg.readOnly {
		return fmt.Errorf("%w: cannot save cursors in %s", ErrReadOnly, s.path)
	}
	if len(cursors) == 0 {
		return nil
	}
	for name, seq := range cursors {
		if seq > math.MaxInt64 {
			return fmt.Errorf("sqlitestore: save cursor %q: Seq %d above the largest storable, %d", name, seq, int64(math.MaxInt64))
		}
	}
	if err := s.saveCursors(ctx, cursors); err != nil {
		return s.opError("save cursor", err)
	}
	return nil
}

func (s *Store) saveCursors(ctx context.Context, cursors map[string]uint64) error {
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	tx, err := s.wc.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	save := tx.StmtContext(ctx, s.saveCursor)
	// In name order, so the same map always writes the same way.
	for _, name := range slices.Sorted(maps.Keys(cursors)) {
		if _, err := save.ExecContext(ctx, name, int64(cursors[name])); err != nil {
			return fmt.Errorf("cursor %q: %w", name, err)
		}
	}
	return tx.Commit()
}

// LoadCursor returns the cursor SaveCursor last recorded for the durable
// consumer name, or 0 if there is none. It reads through the reader pool
// and never waits for Append. After Close it returns an error wrapping
// eventbus.ErrClosed.
func (s *Store) LoadCursor(ctx context.Context, name string) (uint64, error) {
	if err := s.enter("load cursor"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	if s.loadCursor == nil {
		return 0, nil // a version 1 file, read-only: no cursors
	}
	var seq int64
	switch err := s.loadCursor.QueryRowContext(ctx, name).Scan(&seq); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, s.opError("load cursor", err)
	}
	return uint64(seq), nil
}
