package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/sqlitestore"
)

// A bus persisting to SQLite: its history survives a restart, and Seq
// numbering continues where it stopped.
func Example() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.db")
	ctx := context.Background()

	// First run: publish three events.
	st, err := sqlitestore.Open(path, sqlitestore.WithMaxAge(7*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	bus, err := eventbus.New(eventbus.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}
	w := bus.Publisher("worker-7")
	for _, step := range []struct {
		typ     eventbus.EventType
		topic   string
		payload any
	}{
		{eventbus.WorkerSpawned, "worker.resize.spawned", map[string]string{"file": "cat.png"}},
		{eventbus.WorkerProgress, "worker.resize.progress", map[string]int{"percent": 50}},
		{eventbus.WorkerComplete, "worker.resize.complete", map[string]string{"output": "cat-small.png"}},
	} {
		if _, err := w.Emit(ctx, step.typ, step.topic, step.payload); err != nil {
			log.Fatal(err)
		}
	}
	_ = bus.Close() // the bus does not close a store it was given
	_ = st.Close()

	// Second run: the history is still there.
	st, err = sqlitestore.Open(path, sqlitestore.WithMaxAge(7*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	bus, err = eventbus.New(eventbus.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	if _, err := bus.Publisher("monitor").Emit(ctx, eventbus.SystemHeartbeat, "system.heartbeat", nil); err != nil {
		log.Fatal(err)
	}
	events, err := bus.Query(ctx, eventbus.Query{Pattern: "worker.*", Newest: true, Limit: 2})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Type, e.Topic, string(e.Payload))
	}
	last, err := st.LastSeq(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("last seq:", last)
	// Output:
	// 2 worker_progress worker.resize.progress {"percent":50}
	// 3 worker_complete worker.resize.complete {"output":"cat-small.png"}
	// last seq: 4
}

// A second process, such as a dashboard, can read the file while the bus
// that owns it keeps writing.
func ExampleWithReadOnly() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.db")
	ctx := context.Background()

	st, err := sqlitestore.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	bus, err := eventbus.New(eventbus.WithStore(st))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	viewer, err := sqlitestore.Open(path, sqlitestore.WithReadOnly())
	if err != nil {
		log.Fatal(err)
	}
	defer viewer.Close()

	if _, err := bus.Publisher("user-1").Emit(ctx, eventbus.ChatMessage, "chat.general", "hello"); err != nil {
		log.Fatal(err)
	}
	events, err := viewer.Query(ctx, eventbus.Query{Pattern: "chat.*"})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Topic, e.Source, string(e.Payload))
	}
	err = viewer.Append(ctx, events)
	fmt.Println(errors.Is(err, sqlitestore.ErrReadOnly))
	// Output:
	// 1 chat.general user-1 "hello"
	// true
}

// A durable consumer's cursor, and the store's epoch, survive a restart:
// both are kept in the file beside the events.
func ExampleStore_SaveCursor() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.db")
	ctx := context.Background()

	st, err := sqlitestore.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	epoch, err := st.Epoch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := st.SaveCursor(ctx, "thumbnailer", 42); err != nil {
		log.Fatal(err)
	}
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}

	st, err = sqlitestore.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	seq, err := st.LoadCursor(ctx, "thumbnailer")
	if err != nil {
		log.Fatal(err)
	}
	unknown, err := st.LoadCursor(ctx, "mailer")
	if err != nil {
		log.Fatal(err)
	}
	again, err := st.Epoch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("thumbnailer resumes after", seq)
	fmt.Println("mailer starts after", unknown)
	fmt.Println("same epoch:", again == epoch)
	// Output:
	// thumbnailer resumes after 42
	// mailer starts after 0
	// same epoch: true
}
