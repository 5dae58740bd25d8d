package wsbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/wsbridge"
)

// A client connects with a pattern and receives the matching events.
func Example() {
	bus, err := eventbus.New()
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(wsbridge.Handler(bus))
	defer srv.Close()
	defer bus.Close()

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?pattern=worker.*"
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		panic(err)
	}
	defer conn.CloseNow()

	// The subscription exists once Dial returns; the first message is ready.
	var m wsbridge.Message
	_, data, _ := conn.Read(ctx)
	_ = json.Unmarshal(data, &m)
	fmt.Println(m.Type, m.Patterns)

	p := bus.Publisher("worker-7")
	_, _ = p.Emit(ctx, eventbus.WorkerComplete, "worker.task.complete", map[string]int{"items": 3})

	_, data, _ = conn.Read(ctx)
	_ = json.Unmarshal(data, &m)
	fmt.Println(m.Type, m.Event.Type, m.Event.Topic, m.Event.Source, string(m.Event.Payload))
	// Output:
	// ready [worker.*]
	// event worker_complete worker.task.complete worker-7 {"items":3}
}

// A client changes its patterns with control messages, each answered.
func Example_control() {
	bus, err := eventbus.New()
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(wsbridge.Handler(bus))
	defer srv.Close()
	defer bus.Close()

	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/?pattern=worker.*", nil)
	if err != nil {
		panic(err)
	}
	defer conn.CloseNow()
	_, _, _ = conn.Read(ctx) // ready

	for _, msg := range []string{
		`{"op":"subscribe","pattern":"chat.*"}`,
		`{"op":"unsubscribe","pattern":"worker.*"}`,
		`{"op":"subscribe","pattern":"chat..x"}`,
		`{"op":"publish","event":{"event_type":"user_input","topic":"user.x"}}`,
	} {
		_ = conn.Write(ctx, websocket.MessageText, []byte(msg))
		_, reply, _ := conn.Read(ctx)
		fmt.Println(string(reply))
	}
	// Output:
	// {"type":"ack","op":"subscribe","pattern":"chat.*"}
	// {"type":"ack","op":"unsubscribe","pattern":"worker.*"}
	// {"type":"error","op":"subscribe","pattern":"chat..x","error":"eventbus: invalid pattern \"chat..x\": empty segment","code":"invalid_pattern"}
	// {"type":"error","op":"publish","error":"wsbridge: publishing is disabled","code":"publish_disabled"}
}

// New reports bad option values instead of panicking as Handler does.
func ExampleNew() {
	bus, err := eventbus.New()
	if err != nil {
		panic(err)
	}
	defer bus.Close()

	_, err = wsbridge.New(bus, wsbridge.WithOverflow(eventbus.Block))
	fmt.Println(err)

	h, err := wsbridge.New(bus,
		wsbridge.WithMaxConnections(100),
		wsbridge.WithMaxPatterns(4),
		wsbridge.WithOverflow(eventbus.CatchUp), // the bus has its default store
		wsbridge.WithClientPublish(eventbus.UserCommand),
	)
	fmt.Println(h != nil, err)
	// Output:
	// wsbridge: invalid option: WithOverflow(block): a client must never block the bus
	// true <nil>
}

// A client resumes with the Seq after the last event it saw and that Seq's
// epoch. After a restart on a memory store the epoch is new, and the client
// is told its Seqs mean nothing here: a reset, then the events after the
// bus's last Seq.
func Example_resume() {
	old, err := eventbus.New()
	if err != nil {
		panic(err)
	}
	oldEpoch := old.Epoch()
	_ = old.Close()

	bus, err := eventbus.New() // the restarted server, numbering from 1
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(wsbridge.Handler(bus))
	defer srv.Close()
	defer bus.Close()
	ctx := context.Background()
	_, _ = bus.Publisher("demo").Emit(ctx, eventbus.WorkerSpawned, "worker.a.spawned", nil)

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?pattern=worker.*&from=143&epoch=" + oldEpoch
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		panic(err)
	}
	defer conn.CloseNow()

	var m wsbridge.Message
	for range 2 {
		_, data, _ := conn.Read(ctx)
		_ = json.Unmarshal(data, &m)
		fmt.Println(m.Type, m.Epoch == bus.Epoch(), m.LastSeq)
	}
	_, _ = bus.Publisher("demo").Emit(ctx, eventbus.WorkerSpawned, "worker.b.spawned", nil)
	_, data, _ := conn.Read(ctx)
	_ = json.Unmarshal(data, &m)
	fmt.Println(m.Type, m.Event.Seq, m.Event.Topic)
	// Output:
	// ready true 1
	// reset true 1
	// event 2 worker.b.spawned
}
