package natsbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/choiros/eventbus"
)

// importFailure is a message that cannot be imported: its kind, and the
// event's ID and topic when they are known.
type importFailure struct {
	kind  importKind
	id    ulid.ULID
	topic string
	err   error
}

// error is the failure as reported: an *ImportError, inside an
// *eventbus.EventError when the event's ID is known.
func (f *importFailure) error(subject string) error {
	err := error(&ImportError{Kind: importKinds[f.kind], Subject: subject, Err: f.err})
	if f.id != (ulid.ULID{}) {
		err = &eventbus.EventError{ID: f.id, Topic: f.topic, Err: err}
	}
	return err
}

// decode reads the Event a message carries, with the metadata of its
// headers, and checks it: a valid ID, its topic's subject, a valid event.
func (b *Bridge) decode(subject string, data []byte, hdr nats.Header) (eventbus.Event, *importFailure) {
	var e eventbus.Event
	if len(data) == 0 {
		return e, &importFailure{kind: kindEmpty, err: errors.New("empty body")}
	}
	if !isObject(data) {
		return e, &importFailure{kind: kindNotJSON, err: errors.New("the body is not a JSON object")}
	}
	if err := json.Unmarshal(data, &e); err != nil {
		var probe struct {
			ID json.RawMessage `json:"id"`
		}
		switch {
		case json.Unmarshal(data, &probe) == nil && len(probe.ID) > 0 && !validID(probe.ID):
			return e, &importFailure{kind: kindNoID, err: fmt.Errorf("%w: %s is not a ULID", ErrNoEventID, clip(probe.ID))}
		case errors.Is(err, eventbus.ErrInvalidEventType):
			return e, &importFailure{kind: kindInvalidEvent, err: err}
		}
		return e, &importFailure{kind: kindNotJSON, err: err}
	}
	if e.ID == (ulid.ULID{}) {
		return e, &importFailure{kind: kindNoID, topic: e.Topic, err: fmt.Errorf("%w: missing or zero", ErrNoEventID)}
	}
	fail := func(k importKind, err error) (eventbus.Event, *importFailure) {
		return e, &importFailure{kind: k, id: e.ID, topic: e.Topic, err: err}
	}
	if rest, ok := strings.CutPrefix(subject, b.cfg.prefix+"."); !ok || rest != e.Topic {
		return fail(kindWrongSubject, fmt.Errorf("want subject %q for topic %q", join(b.cfg.prefix, e.Topic), e.Topic))
	}
	md, err := mergeMetadata(e.Metadata, hdr)
	if err != nil {
		return fail(kindMetadata, err)
	}
	e.Metadata = md
	if err := e.Validate(); err != nil {
		return fail(kindInvalidEvent, err)
	}
	return e, nil
}

// validID reports whether raw is a JSON string holding a non-zero ULID.
func validID(raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	id, err := ulid.ParseStrict(s)
	return err == nil && id != (ulid.ULID{})
}

// isObject reports whether data starts as a JSON object.
func isObject(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// clip shortens raw for an error message.
func clip(raw []byte) string {
	if len(raw) > 64 {
		return string(raw[:64]) + "…"
	}
	return string(raw)
}

// Metadata travels twice: exactly, in the Event JSON body, and as one NATS
// header per key, for NATS tools and for publishers that do not write
// metadata into the body. A key gets a header only if the header can carry
// it unchanged; see the package doc (Wire format).

// metadataHeaders adds e's metadata to h, one header per key that a header
// carries unchanged.
func metadataHeaders(h nats.Header, md map[string]string) {
	for k, v := range md {
		if headerSafe(k, v) {
			h[k] = []string{v}
		}
	}
}

// headerSafe reports whether the pair k, v travels as a NATS header
// unchanged and without clashing with the headers of NATS or the bridge:
// k is not OriginHeader or a "Nats-" header (in any case), and v has no
// CR or LF (nats.go would replace them) and no leading or trailing space or
// tab (it would trim them).
func headerSafe(k, v string) bool {
	return !reservedHeader(k) && !strings.ContainsAny(v, "\r\n") && textproto.TrimString(v) == v
}

// reservedHeader reports whether a header belongs to NATS or the bridge
// rather than to the event's metadata.
func reservedHeader(k string) bool {
	return strings.EqualFold(k, OriginHeader) || len(k) >= 5 && strings.EqualFold(k[:5], "Nats-")
}

// mergeMetadata combines the body's metadata with the message's headers:
// a header that is not reserved is a metadata pair; a key in both must have
// the same value in both; a header must have one value. The result follows
// the bus's metadata rules, or the error says why not.
func mergeMetadata(body map[string]string, hdr nats.Header) (map[string]string, error) {
	md := body
	copied := false
	for k, vs := range hdr {
		if reservedHeader(k) {
			continue
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("header %q has %d values, metadata has one", k, len(vs))
		}
		if v, ok := body[k]; ok {
			if v != vs[0] {
				return nil, fmt.Errorf("header %q is %q but the body's metadata has %q", k, clip([]byte(vs[0])), clip([]byte(v)))
			}
			continue
		}
		if !copied {
			md = make(map[string]string, len(body)+len(hdr))
			for bk, bv := range body {
				md[bk] = bv
			}
			copied = true
		}
		md[k] = vs[0]
	}
	if err := eventbus.ValidateMetadata(md); err != nil {
		return nil, err
	}
	return md, nil
}
