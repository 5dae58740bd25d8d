package natsbridge

import (
	"sync"
	"time"
)

// summarizer reports an ImportSummary every WithSummaryInterval when
// messages failed to import in the interval. Its goroutine is started by
// New (start) and stopped by Shutdown (stop), which reports what the last
// interval counted.
type summarizer struct {
	b     *Bridge
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	last  [numKinds]uint64 // the counters at the previous summary
	lastN uint64           // the imported counter at the previous summary
	at    time.Time        // when the previous summary was made
}

func (s *summarizer) start(b *Bridge) {
	s.b, s.quit, s.done, s.at = b, make(chan struct{}), make(chan struct{}), time.Now()
	go s.run(b.cfg.summaryEvery)
}

func (s *summarizer) run(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.report()
		case <-s.quit:
			s.report()
			return
		}
	}
}

// stop ends the goroutine after its final summary; it is a no-op if the
// summarizer was never started, and may be called more than once.
func (s *summarizer) stop() {
	if s.quit == nil {
		return
	}
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

// report sends a summary if messages failed to import since the last one.
func (s *summarizer) report() {
	now := time.Now()
	sum := &ImportSummary{Interval: now.Sub(s.at)}
	for k := range numKinds {
		n := s.b.n.byKind[k].Load()
		if d := n - s.last[k]; d > 0 {
			if sum.Failed == nil {
				sum.Failed = make(map[ImportErrorKind]uint64)
			}
			sum.Failed[importKinds[k]] = d
		}
		s.last[k] = n
	}
	imported := s.b.n.imported.Load()
	sum.Imported, s.lastN, s.at = imported-s.lastN, imported, now
	if sum.Failed != nil {
		s.b.report(sum)
	}
}
