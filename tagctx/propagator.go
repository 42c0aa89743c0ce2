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

// Inject writes the effective tag of ctx into carrier. On a stable node
// with untagged traffic it writes nothing, except that it removes a tag
// member from baggage already in the carrier: this hop decided "stable".
func (p Propagator) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	header, member := p.keys()
	t := Effective(ctx)
	existing := carrier.Get(BaggageHeader)
	if t.IsZero() {
		if hasMember(existing, member) {
			carrier.Set(BaggageHeader, MergeBaggage(existing, member, t))
		}
		return
	}
	carrier.Set(header, t.s)
	carrier.Set(BaggageHeader, MergeBaggage(existing, member, t))
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
