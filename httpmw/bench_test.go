package httpmw_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// Every benchmark runs three things side by side: the bare handler or
// base (the floor), httpmw, and the same job done with OpenTelemetry's
// baggage propagator (the anchor). Requests are prebuilt and the writer
// is a no-op, so the numbers are the middleware's own.

var sinkTag tagctx.Tag

// final reads the tag, as any handler of a lane-aware service would.
var final = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
	sinkTag = tagctx.From(r.Context())
})

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// otelBaggage is the anchor: extract W3C baggage into the context with
// propagation.Baggage, read the member, put the tag in the context.
func otelBaggage(next http.Handler) http.Handler {
	var prop propagation.Baggage
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		t, _, _ := tagctx.FromBaggage(baggage.FromContext(ctx), tagctx.DefaultBaggageKey)
		next.ServeHTTP(w, r.WithContext(tagctx.With(ctx, t)))
	})
}

func benchServe(b *testing.B, h http.Handler, header http.Header) {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = header
	req.RemoteAddr = "127.0.0.1:40000"
	w := nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkMiddlewareUntagged: stable traffic on a stable node, the bulk
// of a shared environment. httpmw must add no allocation.
func BenchmarkMiddlewareUntagged(b *testing.B) {
	header := http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}
	b.Run("bare", func(b *testing.B) { benchServe(b, final, header) })
	b.Run("httpmw", func(b *testing.B) { benchServe(b, httpmw.Handler(final), header) })
	b.Run("httpmw+observer", func(b *testing.B) {
		var n int
		obs := httpmw.WithObserver(func(context.Context, tagctx.Observation) { n++ })
		benchServe(b, httpmw.Handler(final, obs), header)
	})
	b.Run("otel-baggage", func(b *testing.B) { benchServe(b, otelBaggage(final), header) })
}

// BenchmarkMiddlewareTagged: a lane request. httpmw may add the context
// node and the request copy (2 allocations).
func BenchmarkMiddlewareTagged(b *testing.B) {
	base := http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}
	withHeader := base.Clone()
	withHeader.Set("X-Tag", "feature-x")
	withBaggage := base.Clone()
	withBaggage.Set("Baggage", "userid=42,x-tag=feature-x")
	b.Run("bare", func(b *testing.B) { benchServe(b, final, withHeader) })
	b.Run("httpmw/header", func(b *testing.B) { benchServe(b, httpmw.Handler(final), withHeader) })
	b.Run("httpmw/baggage", func(b *testing.B) { benchServe(b, httpmw.Handler(final), withBaggage) })
	b.Run("httpmw/host", func(b *testing.B) {
		h := httpmw.Handler(final, httpmw.WithHostPattern("{tag}.svc.test"))
		req, _ := http.NewRequest(http.MethodGet, "http://feature-x.svc.test/orders", nil)
		req.Header = base
		req.RemoteAddr = "127.0.0.1:40000"
		w := nopWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
	b.Run("otel-baggage", func(b *testing.B) { benchServe(b, otelBaggage(final), withBaggage) })
}

// BenchmarkMiddlewareHostile: a 1 MiB tag header costs a length check,
// not a parse.
func BenchmarkMiddlewareHostile(b *testing.B) {
	b.Run("1MiB-header", func(b *testing.B) {
		benchServe(b, httpmw.Handler(final), http.Header{"X-Tag": {strings.Repeat("a", 1<<20)}})
	})
	b.Run("10k-baggage-members", func(b *testing.B) {
		benchServe(b, httpmw.Handler(final), http.Header{"Baggage": {strings.Repeat("k=v,", 10_000)}})
	})
}

type nopTransport struct{ resp *http.Response }

func (t nopTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.resp, nil }

// otelInject is the anchor: the otelhttp way, copy the request and inject
// the context's baggage (carrying the tag member) with
// propagation.Baggage.
type otelInject struct{ base http.RoundTripper }

func (t otelInject) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	propagation.Baggage{}.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.base.RoundTrip(r)
}

func benchRoundTrip(b *testing.B, rt http.RoundTripper, ctx context.Context) {
	b.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://stock.test/check", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransport: an outgoing call of a lane request; httpmw may add
// at most 3 allocations over a base that does nothing.
func BenchmarkTransport(b *testing.B) {
	base := nopTransport{resp: &http.Response{StatusCode: 200, Body: http.NoBody}}
	tagged := tagctx.With(context.Background(), featureX)
	bag, err := tagctx.ToBaggage(baggage.Baggage{}, tagctx.DefaultBaggageKey, featureX)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) { benchRoundTrip(b, base, tagged) })
	b.Run("httpmw", func(b *testing.B) { benchRoundTrip(b, httpmw.Transport(base), tagged) })
	b.Run("httpmw/untagged", func(b *testing.B) {
		benchRoundTrip(b, httpmw.Transport(base), context.Background())
	})
	b.Run("otel-baggage", func(b *testing.B) {
		benchRoundTrip(b, otelInject{base}, baggage.ContextWithBaggage(context.Background(), bag))
	})
}

// trustModes are the entry point policies the hostile benchmarks run under.
var trustModes = []struct {
	name  string
	trust tagctx.Trust
}{
	{"TrustAll", tagctx.TrustAll()},
	{"TrustNone", tagctx.TrustNone()},
	{"TrustTags", tagctx.TrustTags(featureX)},
	{"TrustNetworks", tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))},
}

// BenchmarkHostile is what hostile input costs the middleware in process:
// 1 MiB of baggage carrying the member under each trust policy, and a
// 512 KiB Host with a host pattern. The cost must be a length check and a
// constant number of allocations, whatever the size; "bare" is the handler
// alone.
func BenchmarkHostile(b *testing.B) {
	bag := http.Header{"Baggage": {strings.Repeat("k=v,", 1<<18) + "x-tag=evil"}}
	b.Run("1MiB-baggage/bare", func(b *testing.B) { benchServe(b, final, bag) })
	for _, m := range trustModes {
		b.Run("1MiB-baggage/"+m.name, func(b *testing.B) {
			benchServe(b, httpmw.Handler(final, httpmw.WithTrust(m.trust)), bag)
		})
	}
	host := "app-" + strings.Repeat("e", 512<<10) + ".test.example.com"
	b.Run("512KiB-host/bare", func(b *testing.B) { benchServeHost(b, final, host) })
	b.Run("512KiB-host/httpmw", func(b *testing.B) {
		benchServeHost(b, httpmw.Handler(final, httpmw.WithHostPattern("app-{tag}.test.example.com")), host)
	})
	b.Run("512KiB-host/httpmw+reject", func(b *testing.B) {
		benchServeHost(b, httpmw.Handler(final, httpmw.WithHostPattern("app-{tag}.test.example.com"), httpmw.WithRejectInvalid()), host)
	})
}

func benchServeHost(b *testing.B, h http.Handler, host string) {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = host
	req.RemoteAddr = "127.0.0.1:40000"
	w := nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHostileServer is the same hostile requests through a real
// HTTP/1.1 server on loopback, beside the same server without taglane:
// the request as a caller pays for it.
func BenchmarkHostileServer(b *testing.B) {
	bag := strings.Repeat("k=v,", 1<<18) + "x-tag=evil"
	host := "app-" + strings.Repeat("e", 512<<10) + ".test.example.com"
	run := func(b *testing.B, h http.Handler, header http.Header, host string) {
		srv := startServer(b, h)
		tr := &http.Transport{}
		b.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr}
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header, req.Host = header, host
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("1MiB-baggage/no-taglane", func(b *testing.B) { run(b, final, http.Header{"Baggage": {bag}}, "") })
	for _, m := range trustModes {
		b.Run("1MiB-baggage/"+m.name, func(b *testing.B) {
			run(b, httpmw.Handler(final, httpmw.WithTrust(m.trust)), http.Header{"Baggage": {bag}}, "")
		})
	}
	b.Run("512KiB-host/no-taglane", func(b *testing.B) { run(b, final, http.Header{}, host) })
	b.Run("512KiB-host/httpmw", func(b *testing.B) {
		run(b, httpmw.Handler(final, httpmw.WithHostPattern("app-{tag}.test.example.com")), http.Header{}, host)
	})
}
