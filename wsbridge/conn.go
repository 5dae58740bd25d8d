package wsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/choiros/eventbus"
)

// conn is one WebSocket connection. Three goroutines serve it: the writer
// (the ServeHTTP goroutine, the only one that writes data messages), the
// reader (control messages) and the supervisor (pings, slow-consumer
// disconnects). end closes the socket once, with the first reason; serve
// then closes the subscription and waits for the other two.
type conn struct {
	h         *handler
	ws        *websocket.Conn
	sub       *eventbus.Subscription
	principal string
	remote    string
	reqDone   <-chan struct{}

	ctx    context.Context // ends when the connection has ended
	cancel context.CancelFunc

	replies chan Message // reader → writer
	wg      sync.WaitGroup

	initial  []string        // the patterns at connect, for the ready message
	start    position        // where the connection starts, for ready, reset and dropped
	patterns map[string]bool // the reader's: the subscription's patterns
	lastDrop uint64          // the writer's: Dropped at the last notice

	writeSince atomic.Int64 // UnixNano when the write in progress began; 0 when idle

	endOnce   sync.Once
	endCode   websocket.StatusCode
	endReason string
}

func newConn(h *handler, ws *websocket.Conn, sub *eventbus.Subscription, principal string, patterns []string, start position, r *http.Request) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		h:         h,
		ws:        ws,
		sub:       sub,
		principal: principal,
		remote:    r.RemoteAddr,
		reqDone:   r.Context().Done(),
		ctx:       ctx,
		cancel:    cancel,
		replies:   make(chan Message, 16),
		patterns:  make(map[string]bool, len(patterns)),
		initial:   patterns,
		start:     start,
	}
	for _, p := range patterns {
		c.patterns[p] = true
	}
	return c
}

// serve runs the connection until it ends; when it returns, the socket is
// closed, the subscription has ended and no goroutine of c is left.
func (c *conn) serve() {
	c.wg.Go(c.readLoop)
	c.wg.Go(c.supervise)
	code, reason := c.writeLoop()
	c.end(code, reason)
	_ = c.sub.Close()
	c.wg.Wait()
	level := slog.LevelDebug
	if c.endCode == websocket.StatusPolicyViolation {
		level = slog.LevelWarn
	}
	st := c.sub.Stats()
	c.h.cfg.logger.Log(context.Background(), level, "wsbridge: connection ended",
		"remote", c.remote, "principal", c.principal, "code", int(c.endCode), "reason", c.endReason,
		"delivered", st.Delivered, "dropped", st.Dropped)
}

// end closes the socket with code and reason, unless it was ended before,
// and then ends c.ctx. Close performs the close handshake (bounded by the
// websocket package to a few seconds) while the reader is still reading, so
// the peer's answer is seen. Every caller returns only after the first
// caller's close is complete.
func (c *conn) end(code websocket.StatusCode, reason string) {
	c.endOnce.Do(func() {
		c.endCode, c.endReason = code, reason
		_ = c.ws.Close(code, reason)
		c.cancel()
	})
}

// abort is end for a peer known to be unresponsive: it closes the socket
// without waiting for a close handshake.
func (c *conn) abort(code websocket.StatusCode, reason string) {
	c.endOnce.Do(func() {
		c.endCode, c.endReason = code, reason
		_ = c.ws.CloseNow()
		c.cancel()
	})
}

// writeLoop sends the ready message (and a reset or a dropped notice about
// the resume), then events, replies and drop notices until the connection
// must end; it returns the close status to end with.
func (c *conn) writeLoop() (websocket.StatusCode, string) {
	if err := c.writeStart(); err != nil {
		return websocket.StatusInternalError, "write failed"
	}
	tick := time.NewTicker(dropNoticeInterval)
	defer tick.Stop()
	events := c.sub.C()
	for {
		select {
		case <-c.ctx.Done():
			return c.endCode, c.endReason
		case <-c.reqDone:
			return websocket.StatusGoingAway, "server closing connection"
		case m := <-c.replies:
			if err := c.writeJSON(m); err != nil {
				return websocket.StatusInternalError, "write failed"
			}
		case <-tick.C:
			if err := c.noticeDrops(); err != nil {
				return websocket.StatusInternalError, "write failed"
			}
		case e, ok := <-events:
			// Send what is waiting, a bounded run at a time, before
			// looking at the other cases again.
			for n := 0; ; n++ {
				if !ok || errors.Is(c.sub.Err(), eventbus.ErrSlowConsumer) {
					// Disconnected: do not send what is left in the mailbox.
					return c.subEnded()
				}
				b, err := c.h.frames.frame(&e)
				if err != nil {
					return websocket.StatusInternalError, "encoding failed"
				}
				if err := c.write(b); err != nil {
					return websocket.StatusInternalError, "write failed"
				}
				if n == eventRun {
					break
				}
				select {
				case e, ok = <-events:
					continue
				default:
				}
				break
			}
		}
	}
}

// eventRun is how many waiting events the writer sends in a row.
const eventRun = 64

// subEnded is the close status for a subscription that ended.
func (c *conn) subEnded() (websocket.StatusCode, string) {
	switch err := c.sub.Err(); {
	case errors.Is(err, eventbus.ErrSlowConsumer):
		return websocket.StatusPolicyViolation, "slow consumer"
	case errors.Is(err, eventbus.ErrClosed):
		return websocket.StatusGoingAway, "event bus shut down"
	default:
		return websocket.StatusInternalError, "subscription ended"
	}
}

// writeStart sends ready, then reset when the client's from was of another
// epoch or beyond the bus's Seqs, or a dropped notice for the Seqs of its
// from that the store no longer holds.
func (c *conn) writeStart() error {
	st := c.start
	if err := c.writeJSON(Message{Type: TypeReady, Patterns: c.initial, Epoch: st.epoch, LastSeq: st.lastSeq}); err != nil {
		return err
	}
	if st.reset {
		return c.writeJSON(Message{Type: TypeReset, Epoch: st.epoch, LastSeq: st.lastSeq})
	}
	if st.notStored > 0 {
		return c.writeJSON(Message{Type: TypeDropped, Count: st.notStored, Total: st.notStored, Reason: ReasonNotStored})
	}
	return nil
}

// noticeDrops sends a dropped notice if events were dropped since the last.
// Its total includes the Seqs a resume could not replay.
func (c *conn) noticeDrops() error {
	dropped := c.sub.Stats().Dropped
	if dropped == c.lastDrop {
		return nil
	}
	n := dropped - c.lastDrop
	c.lastDrop = dropped
	return c.writeJSON(Message{Type: TypeDropped, Count: n, Total: c.start.notStored + dropped})
}

func (c *conn) writeJSON(m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.write(b)
}

// write sends one message. It passes the websocket package a context that
// is never done, which spares a timer per message; a write that blocks is
// ended by the supervisor's watchdog (WithWriteTimeout) or by end closing
// the socket.
func (c *conn) write(b []byte) error {
	c.writeSince.Store(time.Now().UnixNano())
	err := c.ws.Write(context.Background(), websocket.MessageText, b)
	c.writeSince.Store(0)
	return err
}

// supervise pings the client, ends the connection as soon as the bus
// disconnects a slow subscription (even while the writer is stuck in a
// write to that client), and aborts a write that exceeds the write timeout.
func (c *conn) supervise() {
	var ping <-chan time.Time
	if d := c.h.cfg.pingInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		ping = t.C
	}
	wt := c.h.cfg.writeTimeout
	watch := time.NewTicker(min(max(wt/4, 10*time.Millisecond), time.Second))
	defer watch.Stop()
	subDone := c.sub.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-subDone:
			subDone = nil
			if errors.Is(c.sub.Err(), eventbus.ErrSlowConsumer) {
				c.end(websocket.StatusPolicyViolation, "slow consumer")
				return
			}
			// Otherwise the writer sends what is left and ends.
		case <-watch.C:
			if since := c.writeSince.Load(); since != 0 && time.Since(time.Unix(0, since)) > wt {
				c.abort(websocket.StatusPolicyViolation, "write timeout")
				return
			}
		case <-ping:
			ctx, cancel := context.WithTimeout(c.ctx, c.h.cfg.pingInterval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.abort(websocket.StatusGoingAway, "ping timeout")
				return
			}
		}
	}
}

// readLoop reads control messages and hands the replies to the writer.
func (c *conn) readLoop() {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.end(websocket.StatusMessageTooBig, "message too big")
			} else {
				c.end(websocket.StatusNormalClosure, "")
			}
			return
		}
		reply := c.handle(typ, data)
		select {
		case c.replies <- reply:
		case <-c.ctx.Done():
			return
		}
	}
}

// handle carries out one control message and returns the reply.
func (c *conn) handle(typ websocket.MessageType, data []byte) Message {
	if typ != websocket.MessageText {
		return errorReply(request{}, fmt.Errorf("%w: binary messages are not supported", ErrMalformed))
	}
	if !isObject(data) {
		return errorReply(request{}, fmt.Errorf("%w: a control message is a JSON object", ErrMalformed))
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return errorReply(req, fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	var (
		ack Message
		err error
	)
	switch req.Op {
	case OpSubscribe:
		err = c.subscribe(req.Pattern)
		ack = Message{Pattern: req.Pattern}
	case OpUnsubscribe:
		err = c.unsubscribe(req.Pattern)
		ack = Message{Pattern: req.Pattern}
	case OpPublish:
		ack, err = c.publish(req.Event)
	default:
		err = fmt.Errorf("%w %q", ErrUnknownOp, req.Op)
	}
	if err != nil {
		return errorReply(req, err)
	}
	ack.Type, ack.Op, ack.ID = TypeAck, req.Op, req.ID
	return ack
}

func errorReply(req request, err error) Message {
	return Message{Type: TypeError, Op: req.Op, ID: req.ID, Pattern: req.Pattern, Error: err.Error(), Code: codeOf(err)}
}

func (c *conn) subscribe(p string) error {
	if err := eventbus.ValidatePattern(p); err != nil {
		return err
	}
	if c.patterns[p] {
		return nil
	}
	if len(c.patterns) >= c.h.cfg.maxPatterns {
		return fmt.Errorf("%w: at most %d", ErrTooManyPatterns, c.h.cfg.maxPatterns)
	}
	if err := c.sub.Add(p); err != nil {
		return err
	}
	c.patterns[p] = true
	return nil
}

func (c *conn) unsubscribe(p string) error {
	if err := eventbus.ValidatePattern(p); err != nil {
		return err
	}
	if !c.patterns[p] {
		return fmt.Errorf("%w to %q", ErrNotSubscribed, p)
	}
	if err := c.sub.Remove(p); err != nil {
		return err
	}
	delete(c.patterns, p)
	return nil
}

func (c *conn) publish(raw json.RawMessage) (Message, error) {
	if c.h.cfg.publish == nil {
		return Message{}, ErrPublishDisabled
	}
	if !isObject(raw) {
		return Message{}, fmt.Errorf("%w: publish needs an event object", ErrMalformed)
	}
	var pe publishEvent
	if err := json.Unmarshal(raw, &pe); err != nil {
		if errors.Is(err, eventbus.ErrInvalidEventType) {
			return Message{}, err
		}
		return Message{}, fmt.Errorf("%w: event: %v", ErrMalformed, err)
	}
	if !c.h.cfg.publish[pe.Type] {
		return Message{}, fmt.Errorf("%w: %q", ErrTypeNotAllowed, pe.Type)
	}
	var payload any
	if len(pe.Payload) > 0 {
		payload = pe.Payload
	}
	source := c.principal
	if c.h.cfg.trustSource && pe.Source != "" {
		source = pe.Source
	}
	if err := checkClientMetadata(pe.Metadata); err != nil {
		return Message{}, err
	}
	e, err := eventbus.NewEvent(pe.Type, pe.Topic, payload, source)
	if err != nil {
		return Message{}, err
	}
	if pe.CorrelationID != "" {
		e = e.WithCorrelationID(pe.CorrelationID)
	}
	e.Metadata = pe.Metadata
	if err := c.h.bus.Publish(eventbus.WithPrincipal(c.ctx, c.principal), e); err != nil {
		return Message{}, err
	}
	return Message{EventID: e.ID.String(), Topic: e.Topic}, nil
}

// isObject reports whether data, valid JSON or not, starts as an object:
// JSON null, arrays, strings and numbers are not control messages.
func isObject(data []byte) bool {
	for _, b := range data {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b == '{'
	}
	return false
}

// checkClientMetadata checks the metadata of a client's event: the bus's
// rules, and no key of the bus's own ("eventbus-…"), which a client could
// otherwise use to pass for a retry or a dead letter.
func checkClientMetadata(md map[string]string) error {
	if err := eventbus.ValidateMetadata(md); err != nil {
		return err
	}
	for k := range md {
		if strings.HasPrefix(k, reservedMetadataPrefix) {
			return fmt.Errorf("%w: key %q: the %q keys are the bus's own", eventbus.ErrInvalidMetadata, k, reservedMetadataPrefix)
		}
	}
	return nil
}

// reservedMetadataPrefix starts the metadata keys of the bus itself.
const reservedMetadataPrefix = "eventbus-"
