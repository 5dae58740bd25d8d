// Command cluster shows two event buses sharing worker events through NATS
// with natsbridge.
//
//	go run ./examples/cluster
//
// starts a NATS server inside the process (127.0.0.1, a random port) and two
// buses, alpha and beta, each bridged to it on its own connection with
// natsbridge.WithPatterns("worker.*"). Workers publish on alpha; a monitor
// on beta prints what arrives. It prints a summary, then every counter of
// both bridges (natsbridge.Stats), and exits by itself.
//
//	go run ./examples/cluster -node alpha -nats nats://127.0.0.1:4222
//	go run ./examples/cluster -node beta  -nats nats://127.0.0.1:4222
//
// runs one node per process against a NATS server of your own (for example
// `nats-server` with no arguments): each node runs a worker now and then and
// prints the worker events of the other nodes, until interrupted; then it
// prints its bridge's counters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/natsbridge"
)

func main() {
	name := flag.String("node", "", "run a single node with this name against -nats, until interrupted")
	url := flag.String("nats", "", "URL of the NATS server for -node (e.g. nats://127.0.0.1:4222)")
	workers := flag.Int("workers", 3, "in-process mode: how many workers alpha runs")
	every := flag.Duration("every", 2*time.Second, "-node mode: how often the node starts a worker")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case *name == "" && *url == "":
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = run(ctx, os.Stdout, *workers)
	case *name != "" && *url != "":
		err = runNode(ctx, os.Stdout, *name, *url, *every)
	default:
		err = errors.New("-node and -nats go together")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// node is a bus bridged to NATS on a connection of its own.
type node struct {
	bus *eventbus.Bus
	nc  *nats.Conn
	br  *natsbridge.Bridge
}

// startNode connects to url and bridges a new bus on worker events.
func startNode(name, url string, natsOpts ...nats.Option) (*node, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name)}, natsOpts...)...)
	if err != nil {
		return nil, err
	}
	bus, err := eventbus.New()
	if err != nil {
		nc.Close()
		return nil, err
	}
	br, err := natsbridge.New(bus, nc, natsbridge.WithPatterns("worker.*"))
	if err != nil {
		bus.Close()
		nc.Close()
		return nil, err
	}
	return &node{bus: bus, nc: nc, br: br}, nil
}

// close stops the bridge, then the bus, then the connection.
func (n *node) close() error {
	err := errors.Join(n.br.Close(), n.bus.Close())
	n.nc.Close()
	return err
}

// work runs one worker: it is spawned, makes progress, and completes, or
// fails when fail is set.
func work(ctx context.Context, p *eventbus.Publisher, id string, fail bool) error {
	steps := []struct {
		t       eventbus.EventType
		what    string
		payload any
	}{
		{eventbus.WorkerSpawned, "spawned", map[string]string{"task": "index " + id}},
		{eventbus.WorkerProgress, "progress", map[string]int{"percent": 50}},
		{eventbus.WorkerComplete, "complete", map[string]int{"files": 12}},
	}
	if fail {
		steps[2].t, steps[2].what, steps[2].payload = eventbus.WorkerFailed, "failed", map[string]string{"error": "disk full"}
	}
	for _, s := range steps {
		if _, err := p.Emit(ctx, s.t, "worker."+id+"."+s.what, s.payload); err != nil {
			return err
		}
	}
	return nil
}

// newOutput returns the writer for lines printed from several goroutines:
// a log.Logger with no prefix or flags writes each line whole.
func newOutput(w io.Writer) *log.Logger { return log.New(w, "", 0) }

// run is the in-process demonstration: an embedded NATS server, buses alpha
// and beta bridged through it, workers publishing on alpha and a monitor on
// beta. It returns once beta has every worker event, or with an error when
// ctx ends first.
func run(ctx context.Context, w io.Writer, workers int) (err error) {
	out := newOutput(w)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(5 * time.Second) {
		return errors.New("nats-server did not start")
	}
	out.Printf("nats-server listening at %s\n", srv.ClientURL())

	alpha, err := startNode("alpha", srv.ClientURL())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, alpha.close()) }()
	beta, err := startNode("beta", srv.ClientURL())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, beta.close()) }()
	out.Printf("buses alpha and beta bridged on worker.* (origins %s, %s)\n", alpha.br.Origin(), beta.br.Origin())

	// The monitor on beta: prints each worker event and counts it by type.
	want := 3 * workers
	var mu sync.Mutex
	byType := map[eventbus.EventType]int{}
	got := 0
	all := make(chan struct{})
	_, err = beta.bus.Handle(ctx, "worker.*", func(_ context.Context, e eventbus.Event) error {
		out.Printf("beta monitor <- %-20s %-16s from %s\n", e.Topic, e.Type, e.Source)
		mu.Lock()
		defer mu.Unlock()
		byType[e.Type]++
		if got++; got == want {
			close(all)
		}
		return nil
	}, eventbus.WithName("monitor"))
	if err != nil {
		return err
	}

	// The workers on alpha, concurrently; the last one fails.
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		id := fmt.Sprint(i + 1)
		p := alpha.bus.Publisher("alpha/worker-" + id)
		wg.Go(func() { errs[i] = work(ctx, p, id, i == workers-1) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	select {
	case <-all:
	case <-ctx.Done():
		return fmt.Errorf("waiting for beta's monitor: %w", ctx.Err())
	}
	// Closing the bridges first makes their counters final.
	if err := errors.Join(beta.close(), alpha.close()); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	out.Printf("beta received %d worker events from alpha: %d spawned, %d progress, %d complete, %d failed\n",
		got, byType[eventbus.WorkerSpawned], byType[eventbus.WorkerProgress],
		byType[eventbus.WorkerComplete], byType[eventbus.WorkerFailed])
	as, bs := alpha.br.Stats(), beta.br.Stats()
	out.Printf("alpha exported %d, imported %d; beta imported %d, exported %d (%d not sent back: loop prevention)\n",
		as.Exported, as.Imported, bs.Imported, bs.Exported, bs.Looped)
	printStats(out, "alpha", as)
	printStats(out, "beta", bs)
	return nil
}

// printStats prints every counter of a bridge: what it relayed, and what it
// held back or could not relay, with the import errors by kind.
func printStats(out *log.Logger, name string, st natsbridge.Stats) {
	out.Printf("%s bridge: export: %d exported, %d looped, %d errors, %d dropped; "+
		"import: %d imported, %d echoes, %d duplicates, %d filtered, %d errors%s, %d dropped\n",
		name, st.Exported, st.Looped, st.ExportErrors, st.ExportDropped,
		st.Imported, st.Echoes, st.Duplicates, st.Filtered, st.ImportErrors, byKind(st.ImportErrorsByKind), st.ImportDropped)
}

// byKind formats import error counts by kind, " (no_id 2, not_json 1)",
// or "" when there are none.
func byKind(m map[natsbridge.ImportErrorKind]uint64) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}

// runNode runs one node against the NATS server at url until ctx ends: every
// interval it runs a worker, and it prints the worker events that arrive from
// other nodes. nats.go reconnects for ever if the server goes away.
func runNode(ctx context.Context, w io.Writer, name, url string, every time.Duration) error {
	if strings.ContainsAny(name, " \t./*?>") {
		return fmt.Errorf("node name %q: use letters, digits, '-' or '_'", name)
	}
	out := newOutput(w)
	n, err := startNode(name, url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	out.Printf("%s: bridged to %s on worker.*\n", name, url)

	_, err = n.bus.Handle(ctx, "worker.*", func(_ context.Context, e eventbus.Event) error {
		if !strings.HasPrefix(e.Source, name+"/") {
			out.Printf("%s <- %-24s %-16s from %s\n", name, e.Topic, e.Type, e.Source)
		}
		return nil
	}, eventbus.WithName("monitor"))
	if err == nil {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 1; err == nil; i++ {
			id := fmt.Sprintf("%s-%d", name, i)
			if err = work(ctx, n.bus.Publisher(name+"/worker-"+fmt.Sprint(i)), id, i%5 == 0); err == nil {
				out.Printf("%s -> worker %s done\n", name, id)
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	// Closing the bridge first makes its counters final.
	err = errors.Join(err, n.close())
	st := n.br.Stats()
	out.Printf("%s: exported %d, imported %d\n", name, st.Exported, st.Imported)
	printStats(out, name, st)
	return err
}
