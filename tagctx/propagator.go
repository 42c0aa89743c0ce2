package tagctx

import (
	"context"
	"net/http"
	"net/textproto"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Propagator carries the effective tag as a header and as a W3C baggage
// member, so the tag passes through services that only run OpenTelemetry
// propagation. The zero Propagator uses the default keys.
//
// Use it with otelhttp/otelgrpc, after propagation.Baggage in a composite:
// Baggage writes the whole baggage header from the context, and this
// propagator then merges its member into it.
//
//	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
//		propagation.TraceContext{}, propagation.Baggage{}, tagctx.Propagator{}))
type Propagator struct {
	Header     string      // tag header; default DefaultHeader
	BaggageKey string      // baggage member; default DefaultBaggageKey
	OnError    func(error) // reports a tag that was present but not accepted; default otel.Handle
}

var _ propagation.TextMapPropagator = Propagator{}

func (p Propagator) keys() (header, member string) {
	header, member = p.Header, p.BaggageKey
	if header == "" {
		header = DefaultHeader
	}
	if member == "" {
		member = DefaultBaggageKey
	}
	return header, member
}

// Inject writes the effective tag of ctx into carrier. When ctx carries an
// explicit untagged decision (an entry point decided, or WithUntagged), it
// writes the tag header with an empty value, the untagged mark: the next
// hop then takes "untagged" as decided and does not fall back to baggage or
// a host name the caller controlled. On a stable node with no decision it
// writes nothing. Either way it removes a tag member from baggage already
// in the carrier.
//
// An empty value means something only for the tag header. Baggage left
// with no member is deleted from a HeaderCarrier or a MapCarrier; other
// carriers cannot delete, so there the baggage value is overwritten with
// an empty one (which OpenTelemetry and Extract read as no baggage), and
// only when the carrier held baggage to overwrite: a carrier without
// baggage never gets an empty one.
func (p Propagator) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	t, decided := Lookup(ctx)
	if !decided {
		t = Node()
	}
	if hc, ok := carrier.(propagation.HeaderCarrier); ok {
		if p.Header == "" && p.BaggageKey == "" {
			injectHeader(http.Header(hc), DefaultHeader, DefaultBaggageKey, t)
			if decided && t.IsZero() {
				http.Header(hc)[DefaultHeader] = []string{""}
			}
		} else {
			header, member := p.keys()
			header = textproto.CanonicalMIMEHeaderKey(header)
			injectHeader(http.Header(hc), header, member, t)
			if decided && t.IsZero() {
				http.Header(hc)[header] = []string{""}
			}
		}
		return
	}
	header, member := p.keys()
	var existing []string
	if vg, ok := carrier.(propagation.ValuesGetter); ok {
		// Every value: Get returns the first only, and a stale member in
		// a later one would outlive the rewrite.
		existing = vg.Values(BaggageHeader)
	} else if v := carrier.Get(BaggageHeader); v != "" {
		existing = []string{v}
	}
	if t.IsZero() {
		if decided {
			carrier.Set(header, "")
		}
		if staleBaggage(existing, member) {
			setOrDelete(carrier, BaggageHeader, MergeBaggageValues(existing, member, t))
		}
		return
	}
	carrier.Set(header, t.s)
	carrier.Set(BaggageHeader, MergeBaggageValues(existing, member, t))
}

// staleBaggage reports whether baggage values must be rewritten for an
// untagged hop: they hold member key, or are over MaxBaggageBytes (a
// conforming reader ignores them whole, so they are dropped). Either way
// the carrier holds baggage.
func staleBaggage(values []string, key string) bool {
	total := len(values) - 1
	for _, v := range values {
		if hasMember(v, key) {
			return true
		}
		total += len(v)
	}
	return total > MaxBaggageBytes
}

// setOrDelete sets key, or deletes it when v is empty and the carrier can
// delete: an empty baggage entry is not what "no baggage" looks like. A
// carrier with no way to delete gets the empty value, which overwrites
// the stale one; Inject calls it only when the carrier held one.
func setOrDelete(carrier propagation.TextMapCarrier, key, v string) {
	if v == "" {
		if mc, ok := carrier.(propagation.MapCarrier); ok {
			delete(mc, key)
			return
		}
	}
	carrier.Set(key, v)
}

// InjectHeader writes t into h as header and as baggage member key, merged
// into the baggage already in h. The zero Tag writes nothing but removes a
// stale member. It is the lean path behind Propagator.Inject: canonical
// keys index the map directly, and into a header without baggage the two
// values are cut from an array shared with other requests' values, no
// allocation of their own; each value is still the caller's alone to edit.
func InjectHeader(h http.Header, header, key string, t Tag) {
	if header != DefaultHeader {
		header = textproto.CanonicalMIMEHeaderKey(header)
	}
	injectHeader(h, header, key, t)
}

// injectHeader is InjectHeader with header already canonical. The common
// case, a tag and no baggage yet, stays small; the rest is mergeHeader.
func injectHeader(h http.Header, header, key string, t Tag) {
	// An empty map has no baggage to merge: a fresh outgoing request's
	// header usually is, and skipping the lookup saves a third hash.
	var existing []string
	if len(h) > 0 {
		existing = h["Baggage"]
	}
	if len(existing) > 0 || t.IsZero() {
		mergeHeader(h, header, key, t, existing)
		return
	}
	vals := newPair(h)
	vals[0], vals[1] = t.s, member(key, t)
	// Full slice expressions: an Add on either header reallocates rather
	// than writing into the other's element.
	h[header] = vals[0:1:1]
	h["Baggage"] = vals[1:2:2]
}

// mergeHeader is injectHeader where h holds baggage or t is zero.
func mergeHeader(h http.Header, header, key string, t Tag, existing []string) {
	if t.IsZero() {
		if len(existing) > 1 || len(existing) == 1 && (hasMember(existing[0], key) || len(existing[0]) > MaxBaggageBytes) {
			if merged := MergeBaggageValues(existing, key, t); merged != "" {
				h["Baggage"] = []string{merged}
			} else {
				delete(h, "Baggage")
			}
		}
		return
	}
	// A merged value can be up to MaxBaggageBytes: an array of its own,
	// so it never pins a slab or a slab pins it.
	vals := []string{t.s, MergeBaggageValues(existing, key, t)}
	h[header] = vals[0:1:1]
	h["Baggage"] = vals[1:2:2]
}

// Extract returns ctx carrying the tag found in carrier, or marked untagged
// when there is none or it is not accepted (the reason goes to OnError).
func (p Propagator) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	header, member := p.keys()
	var tagValues, bagValues []string
	switch c := carrier.(type) {
	case propagation.HeaderCarrier:
		// Canonical keys index the map directly: no allocation.
		tagValues = http.Header(c)[textproto.CanonicalMIMEHeaderKey(header)]
		bagValues = http.Header(c)["Baggage"]
	case propagation.ValuesGetter:
		tagValues, bagValues = c.Values(header), c.Values(BaggageHeader)
	default:
		if v := carrier.Get(header); v != "" {
			tagValues = []string{v}
		}
		if v := carrier.Get(BaggageHeader); v != "" {
			bagValues = []string{v}
		}
	}
	t, _, err := Extract(tagValues, bagValues, member)
	if err != nil {
		if p.OnError != nil {
			p.OnError(err)
		} else {
			otel.Handle(err)
		}
	}
	return With(ctx, t)
}

// Fields returns the keys Inject sets.
func (p Propagator) Fields() []string {
	header, _ := p.keys()
	return []string{header, BaggageHeader}
}
