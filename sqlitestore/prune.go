package sqlitestore

import (
	"context"
	"database/sql"
	"time"
)

// pruneLoop applies retention once at start and then every prune interval
// until Close. It is one of the store's two goroutines, with the
// checkpointer (checkpoint.go).
func (s *Store) pruneLoop() {
	tick := time.NewTicker(s.cfg.pruneInterval)
	defer tick.Stop()
	for {
		s.prune(time.Now())
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// prune deletes what WithMaxAge and WithMaxEvents say must go, at most
// pruneBatch events per transaction, stopping early if Close is called.
// Failures are logged once per episode.
func (s *Store) prune(now time.Time) {
	err := s.pruneAge(now)
	if err == nil {
		err = s.pruneCount()
	}
	s.pruneFailing.note(s, err, "pruning")
	if s.cfg.afterPrune != nil {
		s.cfg.afterPrune()
	}
}

// stopping reports whether Close has been called.
func (s *Store) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

func (s *Store) pruneAge(now time.Time) error {
	if s.cfg.maxAge <= 0 {
		return nil
	}
	cut := now.Add(-s.cfg.maxAge).UnixNano()
	for !s.stopping() {
		n, err := s.deleteBatch(`DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? LIMIT ?) RETURNING seq, topic`, cut, pruneBatch)
		if err != nil || n < pruneBatch {
			return err
		}
	}
	return nil
}

func (s *Store) pruneCount() error {
	if s.cfg.maxEvents <= 0 {
		return nil
	}
	for !s.stopping() {
		excess := s.count.Load() - int64(s.cfg.maxEvents)
		if excess <= 0 {
			return nil
		}
		want := min(excess, pruneBatch)
		n, err := s.deleteBatch(`DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?) RETURNING seq, topic`, want)
		if err != nil {
			return err
		}
		if int64(n) < want {
			// Fewer events than counted (someone else deleted some): recount.
			if err := s.recount(); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteBatch runs one DELETE … RETURNING seq, topic in a transaction,
// deletes the topic_prefixes rows of the deleted events, and returns how
// many events it deleted.
func (s *Store) deleteBatch(query string, args ...any) (int, error) {
	ctx := context.Background()
	if err := s.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer s.unlockWriter()
	tx, err := s.wc.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit

	type deleted struct {
		seq   int64
		topic string
	}
	var gone []deleted
	err = func() error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d deleted
			if err := rows.Scan(&d.seq, &d.topic); err != nil {
				return err
			}
			gone = append(gone, d)
		}
		return rows.Err()
	}()
	if err != nil || len(gone) == 0 {
		return 0, err
	}
	// Keep the high-water mark: LastSeq must not fall when the newest
	// events go.
	var top int64
	for _, d := range gone {
		top = max(top, d.seq)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ?1 WHERE key = 'last_seq' AND value < ?1`, top); err != nil {
		return 0, err
	}
	del, err := tx.PrepareContext(ctx, `DELETE FROM topic_prefixes WHERE prefix = ? AND seq = ?`)
	if err != nil {
		return 0, err
	}
	defer del.Close()
	for _, d := range gone {
		if err := deletePrefixes(ctx, del, d.seq, d.topic); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.count.Add(-int64(len(gone)))
	return len(gone), nil
}

func deletePrefixes(ctx context.Context, del *sql.Stmt, seq int64, topic string) error {
	for j := 1; j < len(topic); j++ {
		if topic[j] == '.' {
			if _, err := del.ExecContext(ctx, topic[:j], seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// recount sets count to the number of stored events.
func (s *Store) recount() error {
	ctx := context.Background()
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	var total int64
	if err := s.wc.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		return err
	}
	s.count.Store(total)
	return nil
}
