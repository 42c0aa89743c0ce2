package bench

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bytedance/gopkg/cloud/metainfo"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/taglane/taglane/tagctx"
)

// depth is how many unrelated values sit above the tag in every lookup
// benchmark: a request context after a few middlewares.
const depth = 10

type layerKey int

func layer(ctx context.Context) context.Context {
	for i := range depth {
		ctx = context.WithValue(ctx, layerKey(i), i)
	}
	return ctx
}

// metainfoKey is the key metainfo's HTTP and RPC codecs give header
// rpc-persist-x-tag: upper case, underscores.
const metainfoKey = "X_TAG"

var (
	sinkTag    tagctx.Tag
	sinkString string
	sinkBool   bool
)

// BenchmarkLookup reads the tag of a context that holds it under ten
// unrelated values: taglane's From against metainfo's GetPersistentValue,
// and against context.Value of a plain string, the floor any
// context-carried value pays; then a context with no tag, where taglane's
// Effective falls back to the node tag and metainfo finds nothing.
func BenchmarkLookup(b *testing.B) {
	tagged := layer(tagctx.With(context.Background(), tagctx.MustParse("feature-x")))
	from := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkTag = tagctx.From(tagged)
		}
	}
	vs(b, "metainfo", func(b *testing.B) {
		ctx := layer(metainfo.WithPersistentValue(context.Background(), metainfoKey, "feature-x"))
		b.ReportAllocs()
		for b.Loop() {
			sinkString, sinkBool = metainfo.GetPersistentValue(ctx, metainfoKey)
		}
	}, from)
	vs(b, "context-value", func(b *testing.B) {
		type k struct{}
		ctx := layer(context.WithValue(context.Background(), k{}, "feature-x"))
		b.ReportAllocs()
		for b.Loop() {
			sinkString, sinkBool = ctx.Value(k{}).(string)
		}
	}, from)
	untagged := layer(context.Background())
	vs(b, "metainfo-absent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkString, sinkBool = metainfo.GetPersistentValue(untagged, metainfoKey)
		}
	}, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkTag = tagctx.Effective(untagged)
		}
	})
}

// The headers each side's own injector writes for a call tagged feature-x,
// as they arrive at the next service (canonical keys, as net/http makes
// them), with two more baggage members and the usual request headers.
func taglaneInbound() http.Header {
	return http.Header{
		"Accept":          {"*/*"},
		"User-Agent":      {"Go-http-client/1.1"},
		"Accept-Encoding": {"gzip"},
		"X-Tag":           {"feature-x"},
		"Baggage":         {"userId=alice,x-tag=feature-x,serverNode=DF%2028"},
	}
}

func metainfoInbound() http.Header {
	return http.Header{
		"Accept":            {"*/*"},
		"User-Agent":        {"Go-http-client/1.1"},
		"Accept-Encoding":   {"gzip"},
		"Rpc-Persist-X-Tag": {"feature-x"},
		"Baggage":           {"userId=alice,serverNode=DF%2028"},
	}
}

func otelInbound() http.Header {
	return http.Header{
		"Accept":          {"*/*"},
		"User-Agent":      {"Go-http-client/1.1"},
		"Accept-Encoding": {"gzip"},
		"Baggage":         {"userId=alice,x-tag=feature-x,serverNode=DF%2028"},
	}
}

var sinkHeader http.Header

// BenchmarkHeaderRoundTrip is what a service does with the tag per request
// it serves and forwards: extract it from the inbound headers into the
// request context, then inject it into the fresh headers of an outgoing
// request. taglane's Propagator against metainfo's FromHTTPHeader and
// ToHTTPHeader, each reading the headers its own injector writes.
func BenchmarkHeaderRoundTrip(b *testing.B) {
	vs(b, "metainfo", func(b *testing.B) {
		in := metainfo.HTTPHeader(metainfoInbound())
		b.ReportAllocs()
		for b.Loop() {
			ctx := metainfo.FromHTTPHeader(context.Background(), in)
			out := http.Header{}
			metainfo.ToHTTPHeader(ctx, metainfo.HTTPHeader(out))
			sinkHeader = out
		}
	}, func(b *testing.B) {
		in, p := propagation.HeaderCarrier(taglaneInbound()), tagctx.Propagator{}
		b.ReportAllocs()
		for b.Loop() {
			ctx := p.Extract(context.Background(), in)
			out := http.Header{}
			p.Inject(ctx, propagation.HeaderCarrier(out))
			sinkHeader = out
		}
	})
}

// BenchmarkExtract takes the tag from inbound headers and reads it back
// from the context: taglane's Propagator against OpenTelemetry's baggage
// propagator (which parses every member) on the same baggage header.
func BenchmarkExtract(b *testing.B) {
	vs(b, "otel-baggage", func(b *testing.B) {
		in, p := propagation.HeaderCarrier(otelInbound()), propagation.Baggage{}
		b.ReportAllocs()
		for b.Loop() {
			sinkString = baggage.FromContext(p.Extract(context.Background(), in)).Member("x-tag").Value()
		}
	}, func(b *testing.B) {
		in, p := propagation.HeaderCarrier(taglaneInbound()), tagctx.Propagator{}
		b.ReportAllocs()
		for b.Loop() {
			sinkTag = tagctx.From(p.Extract(context.Background(), in))
		}
	})
}

// BenchmarkInject writes the tag of a tagged context into an outgoing
// request's empty headers: taglane (header and baggage member) against
// OpenTelemetry's baggage propagator holding the same single member
// (vs=otel-baggage, the row of issue 16). With two more baggage members
// (vs=otel-baggage-members) both sides write all three: OpenTelemetry's
// propagator from a baggage of three, taglane as documented, composed
// after it, from a baggage of the other two and the tag in tagctx, so its
// side is OpenTelemetry's work on two members plus the merge.
func BenchmarkInject(b *testing.B) {
	inject := func(ctx context.Context, p propagation.TextMapPropagator) func(*testing.B) {
		return func(b *testing.B) {
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				clear(h)
				p.Inject(ctx, propagation.HeaderCarrier(h))
			}
		}
	}
	vs(b, "otel-baggage",
		inject(otelTagged(b), propagation.Baggage{}),
		inject(taglaneTagged(context.Background()), tagctx.Propagator{}))
	vs(b, "otel-baggage-members",
		inject(otelBaggage(b, otherMembers...), propagation.Baggage{}),
		inject(taglaneTagged(otelBaggage(b, otherMembers[:2]...)), taglaneComposite))
}

// otherMembers are the baggage members of the "members" rows: two besides
// the tag, as in the inbound headers of the other benchmarks, then the tag.
var otherMembers = []string{"userId=alice", "serverNode=DF%2028", "x-tag=feature-x"}

// taglaneComposite is the composition Propagator's documentation asks for
// when the context holds OpenTelemetry baggage too.
var taglaneComposite = propagation.NewCompositeTextMapPropagator(propagation.Baggage{}, tagctx.Propagator{})

func taglaneTagged(parent context.Context) context.Context {
	return tagctx.With(parent, tagctx.MustParse("feature-x"))
}

// otelTagged is a context whose OpenTelemetry baggage holds x-tag=feature-x.
func otelTagged(tb testing.TB) context.Context {
	return otelBaggage(tb, "x-tag=feature-x")
}

// otelBaggage is a context whose OpenTelemetry baggage holds members, each
// key=value with the value percent-encoded as on the wire.
func otelBaggage(tb testing.TB, members ...string) context.Context {
	bag, err := baggage.Parse(strings.Join(members, ","))
	if err != nil {
		tb.Fatal(err)
	}
	return baggage.ContextWithBaggage(context.Background(), bag)
}

// BenchmarkLookupPaired is BenchmarkLookup's taglane and metainfo lines in
// alternating blocks of 4096 lookups: the difference is a few
// nanoseconds, less than this machine's drift between two benchmarks.
func BenchmarkLookupPaired(b *testing.B) {
	const block = 4096
	tl := layer(tagctx.With(context.Background(), tagctx.MustParse("feature-x")))
	mi := layer(metainfo.WithPersistentValue(context.Background(), metainfoKey, "feature-x"))
	type k struct{}
	cv := layer(context.WithValue(context.Background(), k{}, "feature-x"))
	b.ReportAllocs()
	paired(b, block, []side{
		{"metainfo", -1, func() {
			for range block {
				sinkString, sinkBool = metainfo.GetPersistentValue(mi, metainfoKey)
			}
		}},
		{"taglane", 0, func() {
			for range block {
				sinkTag = tagctx.From(tl)
			}
		}},
		{"context-value", 0, func() {
			for range block {
				sinkString, sinkBool = cv.Value(k{}).(string)
			}
		}},
	})
}

// BenchmarkInjectPaired is BenchmarkInject's sides in alternating blocks
// of 1024 injects: the ratio the issue asks about (≥ 3×) moves with the
// machine's drift between two separate benchmarks. taglane is compared
// with otel-baggage, taglane-members with otel-baggage-members.
func BenchmarkInjectPaired(b *testing.B) {
	const block = 1024
	inject := func(ctx context.Context, p propagation.TextMapPropagator) func() {
		h := http.Header{}
		return func() {
			for range block {
				clear(h)
				p.Inject(ctx, propagation.HeaderCarrier(h))
			}
		}
	}
	b.ReportAllocs()
	paired(b, block, []side{
		{"otel-baggage", -1, inject(otelTagged(b), propagation.Baggage{})},
		{"taglane", 0, inject(taglaneTagged(context.Background()), tagctx.Propagator{})},
		{"otel-baggage-members", -1, inject(otelBaggage(b, otherMembers...), propagation.Baggage{})},
		{"taglane-members", 2, inject(taglaneTagged(otelBaggage(b, otherMembers[:2]...)), taglaneComposite)},
	})
}
