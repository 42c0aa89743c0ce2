package tagctx

import (
	"context"
	"maps"
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

// setCarrier is a TextMapCarrier that is neither a HeaderCarrier nor a
// MapCarrier, like otelgrpc's metadata carrier or a message-property
// carrier: it can Set but not delete. It logs every Set.
type setCarrier struct {
	m    map[string]string
	sets []string
}

func (c *setCarrier) Get(k string) string { return c.m[k] }
func (c *setCarrier) Set(k, v string) {
	c.m[k] = v
	c.sets = append(c.sets, k+"="+v)
}
func (c *setCarrier) Keys() []string { return slices.Sorted(maps.Keys(c.m)) }

// valuesCarrier is a setCarrier that also returns every value of a key,
// as a carrier of multi-valued headers does; Set replaces them all.
type valuesCarrier struct {
	setCarrier
	vals map[string][]string
}

func (c *valuesCarrier) Values(k string) []string { return c.vals[k] }
func (c *valuesCarrier) Get(k string) string {
	if v := c.vals[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c *valuesCarrier) Keys() []string { return slices.Sorted(maps.Keys(c.vals)) }
func (c *valuesCarrier) Set(k, v string) {
	c.vals[k] = []string{v}
	c.sets = append(c.sets, k+"="+v)
}

// TestPropagatorInjectSetOnlyCarrier covers carriers that cannot delete:
// the untagged mark is the only empty value written for its own sake;
// baggage is overwritten with an empty value only when it held a stale
// member (or was over the limit), and a carrier without baggage never
// gets one.
func TestPropagatorInjectSetOnlyCarrier(t *testing.T) {
	fx := MustParse("feature-x")
	bg := context.Background()
	huge := strings.Repeat("k=v,", MaxBaggageBytes/4) + "k=v"
	tests := []struct {
		name     string
		ctx      context.Context
		node     Tag
		existing map[string]string
		wantSets []string // in order
	}{
		{name: "stable node, no decision, no baggage: nothing", ctx: bg},
		{name: "stable node, no decision, other members: nothing", ctx: bg, existing: map[string]string{"baggage": "k=v"}},
		{name: "untagged decision, no baggage: the mark only", ctx: WithUntagged(bg), node: fx,
			wantSets: []string{"X-Tag="}},
		{name: "untagged decision, other members: the mark only", ctx: WithUntagged(bg),
			existing: map[string]string{"baggage": "k=v"}, wantSets: []string{"X-Tag="}},
		{name: "untagged decision, stale member among others", ctx: WithUntagged(bg),
			existing: map[string]string{"baggage": "k=v,x-tag=old"}, wantSets: []string{"X-Tag=", "baggage=k=v"}},
		{name: "untagged decision, stale member alone: overwritten empty", ctx: WithUntagged(bg),
			existing: map[string]string{"baggage": "x-tag=old"}, wantSets: []string{"X-Tag=", "baggage="}},
		{name: "no decision, stale member alone: overwritten empty", ctx: bg,
			existing: map[string]string{"baggage": " x-tag = old "}, wantSets: []string{"baggage="}},
		{name: "no decision, baggage over the limit: dropped", ctx: bg,
			existing: map[string]string{"baggage": huge}, wantSets: []string{"baggage="}},
		{name: "tagged, no baggage", ctx: With(bg, fx),
			wantSets: []string{"X-Tag=feature-x", "baggage=x-tag=feature-x"}},
		{name: "tagged merges", ctx: With(bg, fx), existing: map[string]string{"baggage": "k=v,x-tag=old"},
			wantSets: []string{"X-Tag=feature-x", "baggage=k=v,x-tag=feature-x"}},
		{name: "node tag", ctx: bg, node: MustParse("cron"),
			wantSets: []string{"X-Tag=cron", "baggage=x-tag=cron"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, tt.node)
			c := &setCarrier{m: maps.Clone(tt.existing)}
			if c.m == nil {
				c.m = map[string]string{}
			}
			Propagator{}.Inject(tt.ctx, c)
			if diff := cmp.Diff(c.sets, tt.wantSets); diff != "" {
				t.Errorf("Set calls (-got +want):\n%s", diff)
			}
			// Whatever was written, the next hop reads the decision.
			want := Effective(tt.ctx)
			if got := From(Propagator{}.Extract(bg, c)); got != want {
				t.Errorf("next hop extracted %q, want %q", got, want)
			}
		})
	}
}

// TestPropagatorInjectValuesCarrier checks that a carrier returning
// several baggage values has every one read: a stale member in the second
// value does not survive, and other members are kept.
func TestPropagatorInjectValuesCarrier(t *testing.T) {
	withNode(t, Tag{})
	tests := []struct {
		name     string
		ctx      context.Context
		existing []string
		wantSets []string
	}{
		{name: "stale member in a later value", ctx: WithUntagged(context.Background()),
			existing: []string{"k=v", "x-tag=old,u=1"}, wantSets: []string{"X-Tag=", "baggage=k=v,u=1"}},
		{name: "stale member alone in a later value", ctx: context.Background(),
			existing: []string{"", "x-tag=old"}, wantSets: []string{"baggage="}},
		{name: "no member: untouched", ctx: context.Background(), existing: []string{"k=v", "u=1"}},
		{name: "tagged joins them", ctx: With(context.Background(), MustParse("a")),
			existing: []string{"k=v", "x-tag=old,u=1"}, wantSets: []string{"X-Tag=a", "baggage=k=v,u=1,x-tag=a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &valuesCarrier{setCarrier: setCarrier{m: map[string]string{}}, vals: map[string][]string{"baggage": tt.existing}}
			Propagator{}.Inject(tt.ctx, c)
			if diff := cmp.Diff(c.sets, tt.wantSets); diff != "" {
				t.Errorf("Set calls (-got +want):\n%s", diff)
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

// FuzzPropagatorInject: whatever baggage the carrier already holds and
// whatever the context decided, on every kind of carrier, the next hop's
// Extract reads the effective tag, OpenTelemetry's baggage reader sees the
// tag member exactly when tagged, baggage is never created empty, and the
// carriers that can delete never keep an empty one.
func FuzzPropagatorInject(f *testing.F) {
	f.Add("feature-x", uint8(2), "", "")
	f.Add("", uint8(1), "k=v,x-tag=old", "")
	f.Add("", uint8(0), "x-tag=old", "u=1")
	f.Add("a", uint8(2), "", "x-tag=old,k=v")
	f.Add("", uint8(1), strings.Repeat("k=v,", 70), "")
	f.Add("b", uint8(0), " x-tag\u00a0=evil", "")
	f.Fuzz(func(t *testing.T, tag string, mode uint8, bag1, bag2 string) {
		var tg Tag // "" is a stable node, or a context decided untagged
		if tag != "" {
			var err error
			if tg, err = Parse(tag); err != nil {
				return
			}
		}
		ctx := context.Background()
		switch mode % 3 {
		case 0: // no decision: the node tag applies
			withNode(t, tg)
		case 1:
			withNode(t, tg) // must not leak through the decision
			ctx = WithUntagged(ctx)
		case 2:
			withNode(t, Tag{})
			ctx = With(ctx, tg)
		}
		want := Effective(ctx)
		var held []string
		for _, v := range []string{bag1, bag2} {
			if v != "" {
				held = append(held, v)
			}
		}
		carriers := map[string]func() propagation.TextMapCarrier{
			"header": func() propagation.TextMapCarrier {
				h := http.Header{}
				if len(held) > 0 {
					h["Baggage"] = slices.Clone(held)
				}
				return propagation.HeaderCarrier(h)
			},
			"map": func() propagation.TextMapCarrier {
				m := propagation.MapCarrier{}
				if len(held) > 0 {
					m["baggage"] = held[0]
				}
				return m
			},
			"set-only": func() propagation.TextMapCarrier {
				c := &setCarrier{m: map[string]string{}}
				if len(held) > 0 {
					c.m["baggage"] = held[0]
				}
				return c
			},
			"values": func() propagation.TextMapCarrier {
				c := &valuesCarrier{setCarrier: setCarrier{m: map[string]string{}}, vals: map[string][]string{}}
				if len(held) > 0 {
					c.vals["baggage"] = slices.Clone(held)
				}
				return c
			},
		}
		for name, newCarrier := range carriers {
			c := newCarrier()
			before := c.Get(BaggageHeader)
			Propagator{}.Inject(ctx, c)
			if got := From(Propagator{OnError: func(error) {}}.Extract(context.Background(), c)); got != want {
				t.Fatalf("%s: next hop extracted %q, want %q", name, got, want)
			}
			// Other members are kept as they came, invalid ones too: OTel
			// skips those and reads the rest.
			after := c.Get(BaggageHeader)
			if b, _ := baggage.Parse(after); b.Member(DefaultBaggageKey).Value() != want.String() {
				t.Fatalf("%s: OpenTelemetry reads x-tag %q from %q, want %q", name, b.Member(DefaultBaggageKey).Value(), after, want)
			}
			if after == "" && before == "" && slices.Contains(c.Keys(), BaggageHeader) {
				t.Fatalf("%s: created an empty baggage", name)
			}
			switch c := c.(type) {
			case propagation.HeaderCarrier:
				for _, k := range []string{"X-Tag", "Baggage"} {
					if v, ok := c[k]; ok && (len(v) == 0 || cap(v) != len(v)) {
						t.Fatalf("header: %s values %q with len %d cap %d", k, v, len(v), cap(v))
					}
				}
				if v, ok := c["Baggage"]; ok && len(v) == 1 && v[0] == "" {
					t.Fatal("header: kept an empty baggage")
				}
			case propagation.MapCarrier:
				if v, ok := c["baggage"]; ok && v == "" {
					t.Fatal("map: kept an empty baggage")
				}
			}
		}
	})
}
