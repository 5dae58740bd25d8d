package natsbridge

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/choiros/eventbus"
)

// jsBatch is how many events the JetStream exporter publishes before it
// waits for their acknowledgements.
const jsBatch = 256

// exportCore publishes each event of the export subscription to core NATS.
// It runs on its own goroutine until the subscription's mailbox is closed.
// nc.PublishMsg does not wait for the server: it buffers (while reconnecting,
// up to nats.go's ReconnectBufSize) and fails fast, so this loop keeps up
// unless the socket itself is backed up.
func (b *Bridge) exportCore(sub *eventbus.Subscription) {
	defer close(b.exportDone)
	// nc.PublishMsg encodes msg before it returns, so one msg serves all
	// events without metadata.
	plain := nats.Header{OriginHeader: []string{b.origin}}
	msg := &nats.Msg{Header: plain}
	for e := range sub.C() {
		if err := b.ctx.Err(); err != nil {
			b.exportFailed(e, err)
			continue
		}
		subject, body, ok := b.prepare(e)
		if !ok {
			continue
		}
		msg.Subject, msg.Data, msg.Header = subject, body, plain
		if len(e.Metadata) > 0 {
			msg.Header = nats.Header{OriginHeader: plain[OriginHeader]}
			metadataHeaders(msg.Header, e.Metadata)
		}
		if err := b.nc.PublishMsg(msg); err != nil {
			b.exportFailed(e, err)
			continue
		}
		b.exported()
	}
}

// pending is an event published to JetStream and waiting for its ack.
type pending struct {
	e   eventbus.Event
	msg *nats.Msg
	ack jetstream.PubAckFuture
	err error
}

// exportJetStream publishes the events of the export subscription into the
// stream, in batches of what is waiting (up to jsBatch): it sends a batch
// asynchronously, then waits for each acknowledgement and retries the
// publishes that failed until they succeed or the bridge shuts down. Each
// message carries the event ID as Nats-Msg-Id, so a retry of a publish the
// stream did store is dropped by JetStream's duplicate window. It runs on its
// own goroutine until the subscription's mailbox is closed.
func (b *Bridge) exportJetStream(sub *eventbus.Subscription) {
	defer close(b.exportDone)
	batch := make([]eventbus.Event, 0, jsBatch)
	waiting := make([]pending, 0, jsBatch)
	for e := range sub.C() {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < jsBatch {
			select {
			case e, ok := <-sub.C():
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		waiting = b.publishBatch(batch, waiting[:0])
		clear(waiting) // drop references to the messages
	}
}

func (b *Bridge) publishBatch(batch []eventbus.Event, waiting []pending) []pending {
	for _, e := range batch {
		if err := b.ctx.Err(); err != nil {
			b.exportFailed(e, err)
			continue
		}
		subject, body, ok := b.prepare(e)
		if !ok {
			continue
		}
		// A new msg each time: the future keeps it for nats.go's own retries.
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
			OriginHeader:          []string{b.origin},
			jetstream.MsgIDHeader: []string{e.ID.String()},
		}}
		metadataHeaders(msg.Header, e.Metadata)
		ack, err := b.js.PublishMsgAsync(msg)
		waiting = append(waiting, pending{e: e, msg: msg, ack: ack, err: err})
	}
	for _, p := range waiting {
		err := p.err
		if err == nil {
			select {
			case <-p.ack.Ok():
				b.exported()
				continue
			case err = <-p.ack.Err():
			case <-b.ctx.Done():
				err = b.ctx.Err()
			}
		}
		b.retry(p, err)
	}
	return waiting
}

// retry publishes p synchronously until the stream acknowledges it, with a
// backoff from 50ms to 1s between attempts, until b.ctx ends, nc is closed,
// or the error is one a retry cannot mend. The first failure of an episode is
// reported.
func (b *Bridge) retry(p pending, err error) {
	wait := 50 * time.Millisecond
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if b.ctx.Err() != nil || b.nc.IsClosed() ||
			errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) {
			b.exportFailed(p.e, err)
			return
		}
		if b.exportFailing.CompareAndSwap(false, true) {
			b.report(exportError(p.e, err))
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-b.ctx.Done():
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.ackTimeout)
		_, err = b.js.PublishMsg(ctx, p.msg)
		cancel()
		if err == nil {
			b.exported()
			return
		}
		wait = min(2*wait, time.Second)
	}
}
