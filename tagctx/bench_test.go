package tagctx

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
)

type layerKey int

// layered is a tagged context under ten unrelated values, as a request
// context looks after a few middlewares.
func layered() context.Context {
	ctx := With(context.Background(), MustParse("feature-x"))
	for i := range 10 {
		ctx = context.WithValue(ctx, layerKey(i), i)
	}
	return ctx
}

var sinkTag Tag

func BenchmarkFrom(b *testing.B) {
	ctx := layered()
	b.ReportAllocs()
	for b.Loop() {
		sinkTag = From(ctx)
	}
}

// BenchmarkFromStdlibValue is the anchor: the same lookup through
// context.WithValue holding a string.
func BenchmarkFromStdlibValue(b *testing.B) {
	type k struct{}
	ctx := context.WithValue(context.Background(), k{}, "feature-x")
	for i := range 10 {
		ctx = context.WithValue(ctx, layerKey(i), i)
	}
	b.ReportAllocs()
	var s string
	for b.Loop() {
		s, _ = ctx.Value(k{}).(string)
	}
	_ = s
}

func BenchmarkFromUntaggedNode(b *testing.B) {
	withNode(b, MustParse("feature-x"))
	ctx := context.Background()
	for i := range 10 {
		ctx = context.WithValue(ctx, layerKey(i), i)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkTag = Effective(ctx)
	}
}

// The carrier both propagators read: a baggage header with the tag among
// two other members, as it arrives at a service.
func extractCarrier() propagation.HeaderCarrier {
	return propagation.HeaderCarrier(http.Header{"Baggage": {"userId=alice,x-tag=feature-x,serverNode=DF%2028"}})
}

func BenchmarkPropagatorExtract(b *testing.B) {
	b.Run("taglane", func(b *testing.B) {
		c, p := extractCarrier(), Propagator{}
		b.ReportAllocs()
		for b.Loop() {
			sinkTag = From(p.Extract(context.Background(), c))
		}
	})
	b.Run("otel-baggage", func(b *testing.B) {
		c, p := extractCarrier(), propagation.Baggage{}
		b.ReportAllocs()
		for b.Loop() {
			ctx := p.Extract(context.Background(), c)
			sinkTag = Tag{baggage.FromContext(ctx).Member("x-tag").Value()}
		}
	})
}

func BenchmarkPropagatorInject(b *testing.B) {
	b.Run("taglane", func(b *testing.B) {
		ctx, p := With(context.Background(), MustParse("feature-x")), Propagator{}
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			p.Inject(ctx, propagation.HeaderCarrier(h))
		}
	})
	b.Run("otel-baggage", func(b *testing.B) {
		m, _ := baggage.NewMemberRaw("x-tag", "feature-x")
		bag, _ := baggage.New(m)
		ctx, p := baggage.ContextWithBaggage(context.Background(), bag), propagation.Baggage{}
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			p.Inject(ctx, propagation.HeaderCarrier(h))
		}
	})
	b.Run("taglane-stable", func(b *testing.B) {
		ctx, p := context.Background(), Propagator{}
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			p.Inject(ctx, propagation.HeaderCarrier(h))
		}
	})
}

// BenchmarkPropagatorInjectParallel injects from every P at once, each
// goroutine into its own header, as a server's concurrent requests do: the
// slabs Inject takes its values from are shared, and this shows whether
// their counters contend, beside OpenTelemetry's allocation per call.
func BenchmarkPropagatorInjectParallel(b *testing.B) {
	run := func(ctx context.Context, p propagation.TextMapPropagator) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				h := http.Header{}
				for pb.Next() {
					clear(h)
					p.Inject(ctx, propagation.HeaderCarrier(h))
				}
			})
		}
	}
	m, _ := baggage.NewMemberRaw("x-tag", "feature-x")
	bag, _ := baggage.New(m)
	b.Run("taglane", run(With(context.Background(), MustParse("feature-x")), Propagator{}))
	b.Run("otel-baggage", run(baggage.ContextWithBaggage(context.Background(), bag), propagation.Baggage{}))
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkTag, _ = Parse("feature-x")
	}
}
