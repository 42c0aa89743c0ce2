package httpmw_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// TestAllocs pins the allocation budgets the benchmarks report, so a
// change that breaks them fails here and not only in a benchmark nobody
// reads. Allocation counts, not timings: they are deterministic.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("short")
	}
	serveAllocs := func(h http.Handler, header http.Header) float64 {
		req, err := http.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = header
		req.RemoteAddr = "127.0.0.1:40000"
		w := nopWriter{h: http.Header{}}
		return testing.AllocsPerRun(100, func() { h.ServeHTTP(w, req) })
	}
	obs := httpmw.WithObserver(func(context.Context, tagctx.Observation) {})
	tests := []struct {
		name string
		got  func() float64
		max  float64
	}{
		{"untagged, stable node", func() float64 { return serveAllocs(httpmw.Handler(final, obs), http.Header{"Baggage": {"userid=42"}}) }, 0},
		{"X-Tag", func() float64 { return serveAllocs(httpmw.Handler(final, obs), http.Header{"X-Tag": {"feature-x"}}) }, 2},
		{"baggage", func() float64 {
			return serveAllocs(httpmw.Handler(final, obs), http.Header{"Baggage": {"userid=42,x-tag=feature-x"}})
		}, 2},
		{"transport, tagged", func() float64 {
			return transportAllocs(t, httpmw.Transport(nopTransport{}), tagctx.With(context.Background(), featureX))
		}, 3},
		{"transport, untagged", func() float64 {
			return transportAllocs(t, httpmw.Transport(nopTransport{}), context.Background())
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(); got > tt.max {
				t.Errorf("%v allocations per request, budget %v", got, tt.max)
			}
		})
	}
}

func transportAllocs(t *testing.T, rt http.RoundTripper, ctx context.Context) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://stock.test/check", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "*/*")
	return testing.AllocsPerRun(100, func() { _, _ = rt.RoundTrip(req) })
}
