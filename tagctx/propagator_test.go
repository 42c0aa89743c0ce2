package tagctx

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
)

func TestPropagatorInject(t *testing.T) {
	fx := MustParse("feature-x")
	bg := context.Background()
	tests := []struct {
		name     string
		ctx      context.Context
		node     Tag
		existing http.Header
		want     http.Header
	}{
		{name: "stable adds nothing", ctx: bg, want: http.Header{}},
		{name: "tagged", ctx: With(bg, fx), want: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}}},
		{name: "node tag for work started in process", ctx: bg, node: MustParse("cron-lane"),
			want: http.Header{"X-Tag": {"cron-lane"}, "Baggage": {"x-tag=cron-lane"}}},
		{name: "explicit untagged on tagged node writes the untagged mark", ctx: WithUntagged(bg), node: fx, want: http.Header{"X-Tag": {""}}},
		{name: "stable node without a decision removes a stale member only", ctx: bg, existing: http.Header{"Baggage": {"user=1,x-tag=old"}},
			want: http.Header{"Baggage": {"user=1"}}},
		{name: "merges into existing baggage", ctx: With(bg, fx), existing: http.Header{"Baggage": {"user=1"}},
			want: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"user=1,x-tag=feature-x"}}},
		{name: "stable removes stale member", ctx: WithUntagged(bg), existing: http.Header{"Baggage": {"user=1,x-tag=old"}},
			want: http.Header{"Baggage": {"user=1"}, "X-Tag": {""}}},
		{name: "untagged mark replaces a stale header", ctx: WithUntagged(bg), existing: http.Header{"X-Tag": {"evil"}},
			want: http.Header{"X-Tag": {""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, tt.node)
			h := http.Header{}
			for k, v := range tt.existing {
				h[k] = v
			}
			Propagator{}.Inject(tt.ctx, propagation.HeaderCarrier(h))
			if diff := cmp.Diff(h, tt.want); diff != "" {
				t.Errorf("headers (-got +want):\n%s", diff)
			}
		})
	}
}

// TestPropagatorInjectMapCarrier covers carriers other than HeaderCarrier:
// the untagged mark is written and a baggage value left empty is deleted
// rather than written as an empty entry.
func TestPropagatorInjectMapCarrier(t *testing.T) {
	withNode(t, Tag{})
	tests := []struct {
		name     string
		ctx      context.Context
		existing propagation.MapCarrier
		want     propagation.MapCarrier
	}{
		{name: "no decision, only member", ctx: context.Background(), existing: propagation.MapCarrier{"baggage": "x-tag=old"},
			want: propagation.MapCarrier{}},
		{name: "untagged decision, only member", ctx: WithUntagged(context.Background()), existing: propagation.MapCarrier{"baggage": "x-tag=old"},
			want: propagation.MapCarrier{"X-Tag": ""}},
		{name: "untagged decision keeps others", ctx: WithUntagged(context.Background()), existing: propagation.MapCarrier{"baggage": "k=v, x-tag=old"},
			want: propagation.MapCarrier{"X-Tag": "", "baggage": "k=v"}},
		{name: "tagged", ctx: With(context.Background(), MustParse("a")), existing: propagation.MapCarrier{},
			want: propagation.MapCarrier{"X-Tag": "a", "baggage": "x-tag=a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Propagator{}.Inject(tt.ctx, tt.existing)
			if diff := cmp.Diff(tt.existing, tt.want); diff != "" {
				t.Errorf("carrier (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPropagatorExtract(t *testing.T) {
	tests := []struct {
		name        string
		carrier     propagation.TextMapCarrier
		want        string
		wantRejects int
	}{
		{name: "header carrier", carrier: propagation.HeaderCarrier{"X-Tag": {"a"}}, want: "a"},
		{name: "baggage", carrier: propagation.HeaderCarrier{"Baggage": {"u=1,x-tag=b"}}, want: "b"},
		{name: "map carrier", carrier: propagation.MapCarrier{"X-Tag": "c"}, want: "c"},
		{name: "map carrier baggage", carrier: propagation.MapCarrier{"baggage": "x-tag=d"}, want: "d"},
		{name: "nothing marks untagged", carrier: propagation.MapCarrier{}},
		{name: "invalid reported", carrier: propagation.HeaderCarrier{"X-Tag": {"a b"}}, wantRejects: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, MustParse("node"))
			rejects := 0
			p := Propagator{OnError: func(error) { rejects++ }}
			ctx := p.Extract(context.Background(), tt.carrier)
			tag, decided := Lookup(ctx)
			if tag.String() != tt.want || !decided {
				t.Errorf("extracted %q (decided %v), want %q", tag, decided, tt.want)
			}
			if rejects != tt.wantRejects {
				t.Errorf("%d rejects reported, want %d", rejects, tt.wantRejects)
			}
		})
	}
}

// TestPropagatorComposite checks the documented composition: after
// propagation.Baggage, the tag member joins the baggage the context holds,
// and both ends read it back.
func TestPropagatorComposite(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}, Propagator{})
	fields := prop.Fields() // the composite returns them in map order
	slices.Sort(fields)
	if diff := cmp.Diff(fields, []string{"X-Tag", "baggage", "traceparent", "tracestate"}); diff != "" {
		t.Errorf("Fields (-got +want):\n%s", diff)
	}
	m, _ := baggage.NewMemberRaw("user", "42")
	bag, _ := baggage.New(m)
	ctx := With(baggage.ContextWithBaggage(context.Background(), bag), MustParse("feature-x"))
	h := http.Header{}
	prop.Inject(ctx, propagation.HeaderCarrier(h))
	if got := h.Get("Baggage"); got != "user=42,x-tag=feature-x" {
		t.Fatalf("baggage header %q", got)
	}
	out := prop.Extract(context.Background(), propagation.HeaderCarrier(h))
	if From(out).String() != "feature-x" || baggage.FromContext(out).Member("user").Value() != "42" {
		t.Fatalf("extracted tag %q, baggage %v", From(out), baggage.FromContext(out))
	}
}

func FuzzPropagatorExtract(f *testing.F) {
	f.Add("feature-x", "")
	f.Add("", "u=1,x-tag=b;p=2")
	f.Add("A_B", "x-tag=%zz")
	f.Add(strings.Repeat("a", 9000), strings.Repeat("k=v,", 70))
	f.Fuzz(func(t *testing.T, tagHeader, bag string) {
		h := http.Header{}
		if tagHeader != "" {
			h.Set("X-Tag", tagHeader)
		}
		if bag != "" {
			h.Set("Baggage", bag)
		}
		var rejected error
		ctx := Propagator{OnError: func(err error) { rejected = err }}.Extract(context.Background(), propagation.HeaderCarrier(h))
		tag, decided := Lookup(ctx)
		if !decided {
			t.Fatal("Extract left the context undecided")
		}
		if rejected != nil && !tag.IsZero() {
			t.Fatalf("rejected (%v) but tagged %q", rejected, tag)
		}
		if !tag.IsZero() && !validTag(tag.String()) {
			t.Fatalf("accepted %q, which breaks the tag rules", tag)
		}
		// What was accepted must survive a hop.
		out := http.Header{}
		Propagator{}.Inject(ctx, propagation.HeaderCarrier(out))
		if back := From(Propagator{}.Extract(context.Background(), propagation.HeaderCarrier(out))); back != tag {
			t.Fatalf("round trip: %q became %q", tag, back)
		}
	})
}
