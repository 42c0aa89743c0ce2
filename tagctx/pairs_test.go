package tagctx

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/propagation"
)

// TestNewPairDistinct takes pairs from several goroutines at once, across
// slab boundaries and shards, and checks that no pair is handed out twice:
// each writer finds its own values again after everyone has written. Under
// -race a pair given to two goroutines is also a reported race.
func TestNewPairDistinct(t *testing.T) {
	const workers, each = 8, 3 * pairSlabLen
	got := make([][][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// A fresh map per pair spreads the workers over the shards,
				// a shared one makes them contend for one.
				h := http.Header{}
				if i%2 == 0 {
					h = nil
				}
				p := newPair(h)
				if len(p) != 2 || cap(p) != 2 {
					t.Errorf("pair of len %d cap %d, want 2 and 2", len(p), cap(p))
					return
				}
				p[0], p[1] = fmt.Sprint(w, "/", i, "a"), fmt.Sprint(w, "/", i, "b")
				got[w] = append(got[w], p)
			}
		}()
	}
	wg.Wait()
	for w, pairs := range got {
		for i, p := range pairs {
			if want := fmt.Sprint(w, "/", i, "a"); p[0] != want || p[1] != fmt.Sprint(w, "/", i, "b") {
				t.Fatalf("worker %d pair %d holds %q, want %q and its b: handed out twice", w, i, p, want)
			}
		}
	}
}

// TestInjectValuesNotShared checks what the slabs must never break: the
// header values of one request are its own. Editing a value in place or
// appending to it changes neither the other header of the same request nor
// any header of another request with the same tag.
func TestInjectValuesNotShared(t *testing.T) {
	ctx := With(context.Background(), MustParse("feature-x"))
	var hs []http.Header
	for range pairSlabLen { // past a slab boundary
		h := http.Header{}
		Propagator{}.Inject(ctx, propagation.HeaderCarrier(h))
		hs = append(hs, h)
	}
	hs[0]["X-Tag"][0] = "edited"
	hs[0]["Baggage"][0] = "edited=1"
	hs[1].Add("X-Tag", "appended")
	for i, h := range hs {
		wantTag, wantBag := []string{"feature-x"}, []string{"x-tag=feature-x"}
		switch i {
		case 0:
			wantTag, wantBag = []string{"edited"}, []string{"edited=1"}
		case 1:
			wantTag = []string{"feature-x", "appended"}
		}
		if fmt.Sprint(h["X-Tag"]) != fmt.Sprint(wantTag) || fmt.Sprint(h["Baggage"]) != fmt.Sprint(wantBag) {
			t.Errorf("request %d: X-Tag %q, Baggage %q; want %q and %q", i, h["X-Tag"], h["Baggage"], wantTag, wantBag)
		}
	}
}

// TestInjectAllocs pins the cost the benchmarks show: a tagged inject
// into a fresh header takes its two values from a slab, one allocation per
// pairSlabLen/2 injects, and merging into existing baggage allocates the
// merged value and its array.
func TestInjectAllocs(t *testing.T) {
	withNode(t, Tag{})
	ctx := With(context.Background(), MustParse("feature-x"))
	h := http.Header{}
	const runs = 10 * pairSlabLen / 2
	// AllocsPerRun truncates to whole allocations per run; count them.
	n := testing.AllocsPerRun(1, func() {
		for range runs {
			clear(h)
			Propagator{}.Inject(ctx, propagation.HeaderCarrier(h))
		}
	})
	if max := float64(runs/(pairSlabLen/2) + 1); n > max {
		t.Errorf("%v allocations for %d injects into an empty header, want at most %v", n, runs, max)
	}
	fresh := func() http.Header { return http.Header{"Baggage": {"k=v"}} }
	base := testing.AllocsPerRun(100, func() { sinkHeader = fresh() })
	n = testing.AllocsPerRun(100, func() {
		h := fresh()
		Propagator{}.Inject(ctx, propagation.HeaderCarrier(h))
		sinkHeader = h
	})
	// the merged string and the array of the two values
	if n-base != 2 {
		t.Errorf("%v allocations merging into existing baggage, want 2", n-base)
	}
}

var sinkHeader http.Header
