package eventbus

import "context"

// Publisher publishes events with a fixed Source, and optionally a fixed
// CorrelationID. It is a small value: make one per worker or actor. It is
// safe for concurrent use.
type Publisher struct {
	b           *Bus
	source      string
	correlation string
}

// Publisher returns a Publisher that stamps source on what it emits.
func (b *Bus) Publisher(source string) *Publisher {
	return &Publisher{b: b, source: source}
}

// WithCorrelationID returns a copy of p that also stamps id as the
// CorrelationID of what it emits.
func (p *Publisher) WithCorrelationID(id string) *Publisher {
	c := *p
	c.correlation = id
	return &c
}

// Source returns the source p stamps.
func (p *Publisher) Source() string { return p.source }

// Emit builds an event as NewEvent does, with p's source (and correlation
// ID), publishes it synchronously as Bus.Publish does, and returns it with
// the ID, Timestamp and Seq the bus gave it. Errors are those of NewEvent
// and Bus.Publish.
func (p *Publisher) Emit(ctx context.Context, t EventType, topic string, payload any) (Event, error) {
	e, err := NewEvent(t, topic, payload, p.source)
	if err != nil {
		return Event{}, err
	}
	e.CorrelationID = p.correlation
	seq, err := p.b.publish(ctx, &e, nil, pubAck|pubChecked)
	if err != nil {
		return Event{}, err
	}
	e.Seq = seq
	return e, nil
}
