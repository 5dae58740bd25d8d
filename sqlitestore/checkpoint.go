package sqlitestore

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints copy what the write-ahead log holds into the database file.
// SQLite runs them in the writer, after a commit, whenever the log holds
// wal_autocheckpoint pages: then the transaction that comes next (an
// acknowledged Publish waiting for it) waits for the copy and for two
// fsyncs. Instead, a checkpointer goroutine on a connection of its own
// keeps the log copied (PASSIVE checkpoints, which never block the writer)
// while the writer goes on. It cannot end the log's growth, though: a log
// starts again from its beginning only at a write transaction that finds
// it copied to the end, which under a steady stream of commits the
// checkpointer never sees. So the writer keeps its own checkpoint at a
// higher threshold, walLimit pages, which then finds little left to copy.

// walLimit is the writer's wal_autocheckpoint: the log restarts about
// every walLimit pages (4 KiB each).
const walLimit = 8192

// checkpointGap is the least time between two checkpoints of the
// checkpointer.
const checkpointGap = 20 * time.Millisecond

// checkpointLoop is the checkpointer goroutine: after commits (ckWake) it
// checkpoints, at most once per checkpointGap, until Close.
func (s *Store) checkpointLoop() {
	var gap *time.Timer
	defer func() {
		if gap != nil {
			gap.Stop()
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-s.ckWake:
		}
		s.checkpoint()
		if gap == nil {
			gap = time.NewTimer(checkpointGap)
		} else {
			gap.Reset(checkpointGap) // it fired and was received
		}
		select {
		case <-s.stop:
			return
		case <-gap.C:
		}
	}
}

// checkpoint runs one PASSIVE checkpoint. A failure is logged once per
// episode.
func (s *Store) checkpoint() {
	_, err := s.ck.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
	s.ckFailing.note(s, err, "checkpointing")
}

// committed wakes the checkpointer after a write transaction. The writer
// lock must be held.
func (s *Store) committed() {
	select {
	case s.ckWake <- struct{}{}:
	default:
	}
}

// openCheckpointer opens the checkpointer's connection, with the writer's
// settings; Open starts checkpointLoop once the store is open.
func (s *Store) openCheckpointer(dsn string) error {
	var err error
	if s.ck, err = sql.Open(driverName, dsn); err != nil {
		return err
	}
	s.ck.SetMaxOpenConns(1)
	s.ck.SetMaxIdleConns(1)
	return nil
}
