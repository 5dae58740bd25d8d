// Command genv1 wrote sqlitestore/testdata/v1.db, a schema version 1 store,
// with the code of commit f8f2fce (the last with schema version 1):
//
//	git worktree add /tmp/v1 f8f2fce
//	cp -r sqlitestore/testdata/genv1 /tmp/v1/sqlitestore/
//	cd /tmp/v1 && go run ./sqlitestore/genv1 v1.db
//
// Run with today's code it would write the current schema instead. The Go
// tool ignores testdata, so this file is documentation, kept beside the
// file it made; TestMigrateV1 checks v1.db against the same events.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

func main() {
	path := os.Args[1]
	st, err := sqlitestore.Open(path)
	if err != nil {
		panic(err)
	}
	base := time.Date(2026, 11, 29, 12, 0, 0, 123456789, time.UTC)
	topics := []string{"worker.task.spawned", "worker.task.complete", "chat.room1", "file.changed", "system.heartbeat", "worker.pool.progress", "user.input"}
	var events []eventbus.Event
	seq := uint64(0)
	for i := range 12 {
		seq++
		if i == 7 {
			seq += 3 // a gap: events published without persistence
		}
		id := ulid.MustNew(ulid.Timestamp(base)+uint64(i), nil)
		payload := json.RawMessage(fmt.Sprintf("{\"i\": %d,  \"s\":\"h\u00e9llo\\n\"}", i))
		if i == 4 {
			payload = nil // stored as null
		}
		e := eventbus.Event{ID: id, Seq: seq, Type: eventbus.WorkerProgress, Topic: topics[i%len(topics)],
			Payload: payload, Timestamp: base.Add(time.Duration(i) * time.Second), Source: fmt.Sprintf("src-%d", i%3)}
		if i%4 == 1 {
			e.CorrelationID = fmt.Sprintf("corr-%d", i)
		}
		events = append(events, e)
	}
	ctx := context.Background()
	if err := st.Append(ctx, events[:5]); err != nil {
		panic(err)
	}
	if err := st.Append(ctx, events[5:]); err != nil {
		panic(err)
	}
	if err := st.Close(); err != nil {
		panic(err)
	}
}
