package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/choiros/eventbus"
)

// startDemo starts goroutines, owned by wg and stopped by ctx, that publish
// the events of a small simulated "automatic computer": workers running
// tasks, findings, chat, file changes, user commands and system health.
// At speed 1 they publish about 15 events a second, in bursts.
func startDemo(ctx context.Context, wg *sync.WaitGroup, bus *eventbus.Bus, speed float64) {
	if speed <= 0 {
		speed = 1
	}
	d := &demo{bus: bus, speed: speed, start: time.Now()}
	for _, name := range []string{"indexer", "crawler", "summarizer", "planner", "tester", "linter"} {
		wg.Go(func() { d.worker(ctx, name) })
	}
	wg.Go(func() { d.chat(ctx) })
	wg.Go(func() { d.files(ctx) })
	wg.Go(func() { d.system(ctx) })
	wg.Go(func() { d.users(ctx) })
	d.slowArchiver(ctx)
}

// slowArchiver subscribes a deliberately slow handler to every worker
// event, for the Subscribers view to find: it takes about 1.5s per event
// (scaled by speed), so its small mailbox fills and it drops. When ctx
// ends it stops sleeping, so it drains at once and Shutdown is not held
// up. It ends with the bus.
func (d *demo) slowArchiver(ctx context.Context) {
	_, _ = d.bus.Handle(context.Background(), "worker.*", func(context.Context, eventbus.Event) error {
		t := time.NewTimer(time.Duration(1.5 * float64(time.Second) / d.speed))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	}, eventbus.WithName("slow-archiver"), eventbus.WithBuffer(16), eventbus.WithOverflow(eventbus.DropOldest))
}

type demo struct {
	bus   *eventbus.Bus
	speed float64
	start time.Time
}

// pause waits about d (scaled by speed and jittered) or until ctx ends.
func (d *demo) pause(ctx context.Context, dur time.Duration) bool {
	jitter := 0.5 + rand.Float64()
	t := time.NewTimer(time.Duration(float64(dur) * jitter / d.speed))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// emit publishes and reports whether to go on.
func (d *demo) emit(ctx context.Context, p *eventbus.Publisher, t eventbus.EventType, topic string, payload any) bool {
	_, err := p.Emit(ctx, t, topic, payload)
	return err == nil
}

var tasks = []string{
	"index docs/architecture.md", "crawl https://example.org/changelog", "summarize meeting notes",
	"plan release 1.4", "run integration tests", "lint internal/bus", "embed 1,204 chunks",
	"refresh search index", "diff schema v12 → v13", "triage 7 new issues",
}

func (d *demo) worker(ctx context.Context, name string) {
	for n := 1; ; n++ {
		id := fmt.Sprintf("%s-%d", name, n)
		p := d.bus.Publisher(name).WithCorrelationID(id)
		task := tasks[rand.IntN(len(tasks))]
		base := "worker." + name
		if !d.emit(ctx, p, eventbus.WorkerSpawned, base+".spawned", map[string]any{"task": task, "run": id}) {
			return
		}
		steps := 3 + rand.IntN(6)
		began := time.Now()
		outcome := rand.IntN(20)
		for s := 1; s <= steps; s++ {
			if !d.pause(ctx, 450*time.Millisecond) {
				return
			}
			if outcome == 0 && s == steps/2+1 {
				break // cancelled midway
			}
			pct := 100 * s / (steps + 1)
			if !d.emit(ctx, p, eventbus.WorkerProgress, base+".progress", map[string]any{"run": id, "pct": pct, "step": s, "of": steps}) {
				return
			}
			if rand.IntN(12) == 0 {
				sev := []string{"low", "medium", "high"}[rand.IntN(3)]
				if !d.emit(ctx, p, eventbus.FindingNew, "finding."+sev+".new", map[string]any{"run": id, "title": "possible issue in step " + fmt.Sprint(s), "severity": sev}) {
					return
				}
			}
		}
		took := time.Since(began).Round(time.Millisecond).String()
		var ok bool
		switch {
		case outcome == 0:
			ok = d.emit(ctx, p, eventbus.WorkerCancelled, base+".cancelled", map[string]any{"run": id, "by": "planner"})
		case outcome <= 2:
			ok = d.emit(ctx, p, eventbus.WorkerFailed, base+".failed", map[string]any{"run": id, "error": "context deadline exceeded", "after": took})
		default:
			ok = d.emit(ctx, p, eventbus.WorkerComplete, base+".complete", map[string]any{"run": id, "items": rand.IntN(500), "took": took})
		}
		if !ok || !d.pause(ctx, 1200*time.Millisecond) {
			return
		}
	}
}

var chatLines = []struct{ user, text string }{
	{"alice", "deploy looks good on staging"}, {"bob", "who owns the crawler alerts?"},
	{"carol", "pushed a fix for the flaky test"}, {"alice", "summarizer is at 80%"},
	{"dave", "lunch?"}, {"bob", "rolling back linter config"}, {"carol", "new finding looks legit"},
	{"erin", "can someone review #482"}, {"dave", "index rebuild done"},
}

func (d *demo) chat(ctx context.Context) {
	rooms := []string{"general", "ops", "research"}
	for {
		line := chatLines[rand.IntN(len(chatLines))]
		room := rooms[rand.IntN(len(rooms))]
		p := d.bus.Publisher(line.user)
		if !d.emit(ctx, p, eventbus.ChatTyping, "chat."+room+".typing", map[string]any{"user": line.user}) ||
			!d.pause(ctx, 600*time.Millisecond) ||
			!d.emit(ctx, p, eventbus.ChatMessage, "chat."+room+".message", map[string]any{"user": line.user, "text": line.text}) ||
			!d.pause(ctx, 1500*time.Millisecond) {
			return
		}
	}
}

func (d *demo) files(ctx context.Context) {
	paths := []string{"src/bus.go", "src/topic.go", "docs/README.md", "web/app.js", "tests/load_test.go", "config/prod.yaml"}
	p := d.bus.Publisher("fs-watcher")
	for {
		path := paths[rand.IntN(len(paths))]
		area, _, _ := strings.Cut(path, "/")
		var ok bool
		switch r := rand.IntN(10); {
		case r == 0:
			ok = d.emit(ctx, p, eventbus.FileCreated, "file."+area+".created", map[string]any{"path": path, "bytes": rand.IntN(9000)})
		case r == 1:
			ok = d.emit(ctx, p, eventbus.FileDeleted, "file."+area+".deleted", map[string]any{"path": path})
		default:
			ok = d.emit(ctx, p, eventbus.FileChanged, "file."+area+".changed", map[string]any{"path": path, "bytes": rand.IntN(9000), "lines": rand.IntN(40) + 1})
		}
		if !ok || !d.pause(ctx, 700*time.Millisecond) {
			return
		}
	}
}

func (d *demo) system(ctx context.Context) {
	p := d.bus.Publisher("system")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		st := d.bus.Stats()
		if !d.emit(ctx, p, eventbus.SystemHeartbeat, "system.heartbeat", map[string]any{
			"uptime_s": int(time.Since(d.start).Seconds()), "goroutines": runtime.NumGoroutine(),
			"heap_mb": ms.HeapInuse >> 20, "published": st.Published, "subscriptions": st.Subscriptions,
		}) {
			return
		}
		if rand.IntN(15) == 0 {
			comp := []string{"store", "crawler", "gpu-pool"}[rand.IntN(3)]
			if !d.emit(ctx, p, eventbus.SystemError, "system."+comp+".error", map[string]any{"component": comp, "error": "timeout after 5s; retrying"}) {
				return
			}
		}
	}
}

func (d *demo) users(ctx context.Context) {
	cmds := []string{"pause indexer", "status", "retry failed", "open finding", "search \"deadline\""}
	for {
		if !d.pause(ctx, 4*time.Second) {
			return
		}
		user := []string{"alice", "bob"}[rand.IntN(2)]
		p := d.bus.Publisher(user)
		cmd := cmds[rand.IntN(len(cmds))]
		if !d.emit(ctx, p, eventbus.UserInput, "user."+user+".input", map[string]any{"text": "/" + cmd}) ||
			!d.emit(ctx, p, eventbus.UserCommand, "user."+user+".command", map[string]any{"cmd": cmd}) {
			return
		}
	}
}
