package tagctx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// TestWithManyTags puts more distinct tags through With than the decision
// table has slots, so tags evict each other, and checks every context
// still returns exactly its own tag.
func TestWithManyTags(t *testing.T) {
	const n = 4 * decisionSlots
	ctxs := make([]context.Context, n)
	for i := range n {
		ctxs[i] = With(context.Background(), MustParse(fmt.Sprintf("lane-%d", i)))
	}
	for i, ctx := range ctxs {
		if got, want := From(ctx).String(), fmt.Sprintf("lane-%d", i); got != want {
			t.Fatalf("From(ctx %d) = %q, want %q", i, got, want)
		}
	}
}

// TestWithDoesNotPinHeader checks that the shared decision holds a copy of
// a tag that was parsed from a substring of a larger header value, so the
// table cannot keep big headers alive.
func TestWithDoesNotPinHeader(t *testing.T) {
	header := "pin-me-" + strings.Repeat("x", 40) + "," + strings.Repeat("y", 1<<16)
	tag, err := Parse(header[:47])
	if err != nil {
		t.Fatal(err)
	}
	got := From(With(context.Background(), tag)).String()
	if got != header[:47] {
		t.Fatalf("From = %q, want %q", got, header[:47])
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(header)))
	if p := uintptr(unsafe.Pointer(unsafe.StringData(got))); p >= start && p < start+uintptr(len(header)) {
		t.Error("the context's tag points into the header it was parsed from")
	}
}

// TestWithConcurrent runs With and From on colliding and equal tags from
// many goroutines; -race checks the table's publication.
func TestWithConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				want := fmt.Sprintf("c-%d", (i*7+g)%600)
				if got := From(With(context.Background(), MustParse(want))).String(); got != want {
					t.Errorf("From = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestWithAllocs(t *testing.T) {
	tag := MustParse("feature-x")
	With(context.Background(), tag) // publish its decision
	deep := layered()
	tests := []struct {
		name string
		f    func()
		want float64
	}{
		{name: "With", f: func() { sinkCtx = With(context.Background(), tag) }, want: 1},
		{name: "WithUntagged", f: func() { sinkCtx = WithUntagged(context.Background()) }, want: 1},
		{name: "From", f: func() { sinkTag = From(deep) }, want: 0},
		{name: "Effective", f: func() { sinkTag = Effective(context.Background()) }, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got != tt.want {
				t.Errorf("allocations = %v, want %v", got, tt.want)
			}
		})
	}
}

var sinkCtx context.Context

// FuzzWithFrom checks that every valid tag, whatever slot of the shared
// decision table it lands in and whatever it evicts, comes back from
// From exactly, and that an earlier tag's context keeps its own.
func FuzzWithFrom(f *testing.F) {
	for _, s := range []string{"a", "feature-x", "lane-1", "0123456789abcdef0", strings.Repeat("z", MaxLen)} {
		f.Add(s, "feature-x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, errA := Parse(a)
		tb, errB := Parse(b)
		if errA != nil || errB != nil {
			return
		}
		ca := With(context.Background(), ta)
		cb := With(ca, tb)
		if got := From(ca); got != ta {
			t.Fatalf("From(With(%q)) = %q", ta, got)
		}
		if got := From(cb); got != tb {
			t.Fatalf("From(With(With(%q), %q)) = %q", ta, tb, got)
		}
	})
}
