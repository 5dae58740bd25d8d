package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/choiros/eventbus"
	"github.com/choiros/eventbus/monitor"
)

// Mount the monitor under /monitor/ and read its snapshot.
func ExampleHandler() {
	bus, err := eventbus.New()
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	if _, err := bus.Subscribe(context.Background(), "orders.*", eventbus.WithName("audit")); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/monitor/", http.StripPrefix("/monitor", monitor.Handler(bus)))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/monitor/snapshot", nil))
	var snap monitor.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil {
		log.Fatal(err)
	}
	s := snap.Subscriptions[0]
	fmt.Println(snap.Bus.Subscriptions, s.Name, s.Patterns, s.Buffer, s.Slow)
	// Output: 1 audit [orders.*] 1000 false
}
