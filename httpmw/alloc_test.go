package httpmw_test

import (
	"context"
	"net/http"
	"strings"
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

// TestHostileAllocsConstant pins what hostile input costs: the same small
// number of allocations for 16 KiB as for 1 MiB of baggage under every
// trust policy, and for a 1 KiB as for a 512 KiB Host, so nothing on those
// paths copies or scans in proportion to the input.
func TestHostileAllocsConstant(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	serve := func(h http.Handler, header http.Header, host string) float64 {
		req, err := http.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header, req.Host, req.RemoteAddr = header, host, "127.0.0.1:40000"
		w := nopWriter{h: http.Header{}}
		return testing.AllocsPerRun(20, func() { h.ServeHTTP(w, req) })
	}
	const budget = 20
	bag := func(n int) http.Header {
		return http.Header{"Baggage": {strings.Repeat("k=v,", n/4) + "x-tag=evil"}}
	}
	for _, m := range trustModes {
		t.Run("baggage/"+m.name, func(t *testing.T) {
			h := httpmw.Handler(final, httpmw.WithTrust(m.trust))
			small, big := serve(h, bag(16<<10), ""), serve(h, bag(1<<20), "")
			if small != big || big > budget {
				t.Errorf("%v allocations for 16 KiB, %v for 1 MiB; want equal, at most %d", small, big, budget)
			}
		})
	}
	t.Run("host", func(t *testing.T) {
		h := httpmw.Handler(final, httpmw.WithHostPattern("app-{tag}.test.example.com"), httpmw.WithRejectInvalid())
		host := func(n int) string { return "app-" + strings.Repeat("e", n) + ".test.example.com" }
		small, big := serve(h, http.Header{}, host(1<<10)), serve(h, http.Header{}, host(512<<10))
		if small != big || big > budget {
			t.Errorf("%v allocations for a 1 KiB Host, %v for 512 KiB; want equal, at most %d", small, big, budget)
		}
	})
}
