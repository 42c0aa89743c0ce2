package mq

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// chain3 is t -> x -> y -> stable, with x's and y's own chains, plus a lane
// o outside it.
var (
	tagT, tagX, tagY, tagO = tagctx.MustParse("t"), tagctx.MustParse("x"), tagctx.MustParse("y"), tagctx.MustParse("o")
	chain3                 = map[tagctx.Tag][]tagctx.Tag{tagT: {tagX, tagY}, tagX: {tagY}}
)

func onlineSet(tags ...tagctx.Tag) map[tagctx.Tag]struct{} {
	m := map[tagctx.Tag]struct{}{}
	for _, t := range tags {
		m[t] = struct{}{}
	}
	return m
}

// TestParentsVerdict: who handles a message of which lane, for every
// consumer of the chain t -> x -> y -> stable, by what each believes online.
func TestParentsVerdict(t *testing.T) {
	none := map[tagctx.Tag]struct{}{} // a fresh view with nothing online is nil too
	tests := []struct {
		name   string
		node   tagctx.Tag
		prop   string
		retry  bool
		online map[tagctx.Tag]struct{}
		want   verdict
		route  tagctx.Route
	}{
		{name: "stable: t, t online", prop: "t", online: onlineSet(tagT), want: skip},
		{name: "stable: t, x online", prop: "t", online: onlineSet(tagX), want: skip},
		{name: "stable: t, y online", prop: "t", online: onlineSet(tagY), want: skip},
		{name: "stable: t, only o online", prop: "t", online: onlineSet(tagO), want: handle, route: tagctx.RouteFallback},
		{name: "stable: t, stale view", prop: "t", online: nil, want: handle, route: tagctx.RouteFallback},
		{name: "stable: x, t online", prop: "x", online: onlineSet(tagT), want: handle, route: tagctx.RouteFallback},
		{name: "stable: x, y online", prop: "x", online: onlineSet(tagY), want: skip},
		{name: "stable: y, x online", prop: "y", online: onlineSet(tagX), want: handle, route: tagctx.RouteFallback},
		{name: "stable: o online", prop: "o", online: onlineSet(tagO), want: skip},
		{name: "stable: own retry of t", prop: "t", retry: true, online: onlineSet(tagT), want: handle, route: tagctx.RouteFallback},

		{name: "x: own", node: tagX, prop: "x", online: onlineSet(tagT), want: handle, route: tagctx.RouteMatched},
		{name: "x: t, t offline", node: tagX, prop: "t", online: onlineSet(tagY), want: handle, route: tagctx.RouteFallback},
		{name: "x: t, nothing online", node: tagX, prop: "t", online: none, want: handle, route: tagctx.RouteFallback},
		{name: "x: t, t online", node: tagX, prop: "t", online: onlineSet(tagT), want: skip},
		{name: "x: t, stale view", node: tagX, prop: "t", online: nil, want: handle, route: tagctx.RouteFallback},
		{name: "x: own retry of t", node: tagX, prop: "t", retry: true, online: onlineSet(tagT), want: handle, route: tagctx.RouteFallback},
		{name: "x: y is its parent's", node: tagX, prop: "y", want: skip},
		{name: "x: o", node: tagX, prop: "o", want: skip},
		{name: "x: untagged", node: tagX, prop: "", want: skip},
		{name: "x: invalid", node: tagX, prop: "t_", want: skip},
		{name: "x: retry of another tag", node: tagX, prop: "o", retry: true, want: skip},

		{name: "y: t, x online", node: tagY, prop: "t", online: onlineSet(tagX), want: skip},
		{name: "y: t, t online", node: tagY, prop: "t", online: onlineSet(tagT), want: skip},
		{name: "y: t, t and x offline", node: tagY, prop: "t", online: onlineSet(tagO), want: handle, route: tagctx.RouteFallback},
		{name: "y: x, t online", node: tagY, prop: "x", online: onlineSet(tagT), want: handle, route: tagctx.RouteFallback},
		{name: "y: x, x online", node: tagY, prop: "x", online: onlineSet(tagX), want: skip},

		{name: "t: own", node: tagT, prop: "t", want: handle, route: tagctx.RouteMatched},
		{name: "t: x is not its", node: tagT, prop: "x", want: skip},
		{name: "o: t is not its", node: tagO, prop: "t", want: skip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter("x-tag", tt.node, chain3)
			m := msgWithTag("x-tag", tt.prop)
			if tt.retry {
				m.ReconsumeTimes = 1
			}
			tag, v, _ := f.decide(m, tt.online)
			if v != tt.want {
				t.Fatalf("decide(%q) on %q = %v, want %v", tt.prop, tt.node, v, tt.want)
			}
			if v == handle {
				if got := f.route(tag); got != tt.route {
					t.Errorf("route of %q on %q = %v, want %v", tag, tt.node, got, tt.route)
				}
			}
		})
	}
}

// TestParentsFilterSetup: which consumers handle and watch which lanes.
func TestParentsFilterSetup(t *testing.T) {
	tests := []struct {
		name    string
		node    tagctx.Tag
		handler bool
		watches []tagctx.Tag
	}{
		{name: "stable", handler: true, watches: []tagctx.Tag{tagT, tagX, tagY, tagO}},
		{name: "y", node: tagY, handler: true, watches: []tagctx.Tag{tagT, tagX}},
		{name: "x", node: tagX, handler: true, watches: []tagctx.Tag{tagT}},
		{name: "t", node: tagT},
		{name: "o", node: tagO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter("x-tag", tt.node, chain3)
			var got []tagctx.Tag
			for _, l := range []tagctx.Tag{tagT, tagX, tagY, tagO} {
				if f.watches(l) {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff([]any{f.handler(), fmt.Sprint(got)}, []any{tt.handler, fmt.Sprint(tt.watches)}); diff != "" {
				t.Errorf("handler, watches (-got +want):\n%s", diff)
			}
		})
	}
}

// TestParentsDecideAllocs: the decision with chains stays free of
// allocations (a map lookup and a walk of one chain).
func TestParentsDecideAllocs(t *testing.T) {
	f := newFilter("x-tag", tagctx.Tag{}, chain3)
	x := newFilter("x-tag", tagX, chain3)
	m := msgWithTag("x-tag", "t")
	online := onlineSet(tagY, tagO)
	if n := testing.AllocsPerRun(100, func() {
		f.decide(m, online)
		x.decide(m, online)
		_ = x.route(tagT)
	}); n != 0 {
		t.Errorf("decide with a chain: %v allocations, want 0", n)
	}
}

// TestParentsOptionErrors: bad chains are NewConsumer errors that name the
// option and quote the values; a good tree is accepted.
func TestParentsOptionErrors(t *testing.T) {
	a, b, c := tagctx.MustParse("a"), tagctx.MustParse("b"), tagctx.MustParse("c")
	long := tagctx.MustParse(strings.Repeat("l", 63))
	base := strings.Repeat("s", 200)
	tests := []struct {
		name string
		base string
		opts []Option
		want string
	}{
		{name: "stable has no parents", opts: []Option{WithParents(tagctx.Tag{}, a)}, want: `mq: WithParents("", "a"): stable has no parents`},
		{name: "stable listed", opts: []Option{WithParents(a, tagctx.Tag{})}, want: `mq: WithParents("a", ""): stable ends every chain by itself; do not list it`},
		{name: "lane in its own chain", opts: []Option{WithParents(a, b, a)}, want: `mq: WithParents("a", "b,a"): "a" repeats a lane of the chain`},
		{name: "repeat", opts: []Option{WithParents(a, b, b)}, want: `mq: WithParents("a", "b,b"): "b" repeats a lane of the chain`},
		{name: "cycle", opts: []Option{WithParents(a, b), WithParents(b, a)}, want: `mq: WithParents("a", "b"): a cycle: "b" has "a" in its own chain "a"`},
		{name: "longer cycle", opts: []Option{WithParents(a, b, c), WithParents(b, c), WithParents(c, a)}, want: `a cycle`},
		{name: "parent's chain missing", opts: []Option{WithParents(a, b, c)}, want: `mq: WithParents("a", "b,c"): parent "b" has the chain "", want the rest of this one, "c": chains must form a tree (add WithParents("b", "c"))`},
		{name: "parent's chain differs", opts: []Option{WithParents(a, b), WithParents(b, c)}, want: `mq: WithParents("a", "b"): parent "b" has the chain "c", want the rest of this one, ""`},
		{name: "group name too long", base: base, opts: []Option{WithParents(a, long)}, want: `mq: WithParents("a", "` + long.String() + `"): mq: lane group "` + long.String() + "_" + base + `" is 264 characters, longer than RocketMQ's 255`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.base == "" {
				tt.base = "orders"
			}
			c, err := NewConsumer(tt.base, append([]Option{WithNameServer("127.0.0.1:1")}, tt.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if c != nil {
					c.admin.Close()
				}
				t.Fatalf("NewConsumer: %v; want error containing %q", err, tt.want)
			}
		})
	}
	// Building the option never panics; every constructor reports it.
	if _, err := WrapProducer(nopProducer{}, WithParents(a, a)); err == nil || err.Error() != `mq: WithParents("a", "a"): "a" repeats a lane of the chain` {
		t.Errorf("WrapProducer error = %v", err)
	}
	// A tree: two chains through b, a lane with a chain of its own.
	cons, err := NewConsumer("orders", WithNameServer("127.0.0.1:1"), WithNode(b),
		WithParents(a, b, c), WithParents(tagctx.MustParse("d"), b, c), WithParents(b, c), nil)
	if err != nil {
		t.Fatal(err)
	}
	cons.admin.Close()
}

// TestParentsReconcile drives the takeover states of a handler consumer
// through the transitions of a chain, without brokers: who covers whom,
// when an offline period starts and from when its delay counts.
func TestParentsReconcile(t *testing.T) {
	c := &Consumer{filter: newFilter("x-tag", tagctx.Tag{}, chain3), lanes: map[tagctx.Tag]*laneState{}}
	t0 := time.Now()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// t and x online: both covered.
	c.lanes[tagT] = &laneState{group: "t_svc", online: true, covered: true}
	c.lanes[tagX] = &laneState{group: "x_svc", online: true, covered: true}
	state := func() string {
		var b strings.Builder
		for _, l := range []tagctx.Tag{tagT, tagX} {
			ls := c.lanes[l]
			since := time.Duration(0)
			if !ls.offlineSince.IsZero() {
				since = ls.offlineSince.Sub(t0).Round(time.Second)
			}
			fmt.Fprintf(&b, "%s covered=%v pending=%v settled=%v since=%v unwatched=%v; ", l, ls.covered, ls.pending, ls.settled, since, ls.unwatched)
		}
		return b.String()
	}
	step := func(name string, end time.Time, events map[tagctx.Tag]event, want string) {
		t.Helper()
		c.reconcile(end, events)
		if got := state(); got != want {
			t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	step("both online", at(1), nil,
		"t covered=true pending=false settled=false since=0s unwatched=false; x covered=true pending=false settled=false since=0s unwatched=false; ")

	// t goes offline: x still online covers it for stable (x takes it over).
	c.lanes[tagT].online, c.lanes[tagT].offAt = false, at(2)
	step("t offline, x online", at(3), map[tagctx.Tag]event{tagT: evOff},
		"t covered=true pending=false settled=false since=0s unwatched=false; x covered=true pending=false settled=false since=0s unwatched=false; ")

	// x goes offline, an instance missed between its offline answers: both
	// are stable's now, t's delay counted from x's going offline.
	c.lanes[tagX].online, c.lanes[tagX].offAt = false, at(4)
	step("x offline", at(5), map[tagctx.Tag]event{tagX: evOffMissed},
		"t covered=false pending=true settled=false since=4s unwatched=true; x covered=false pending=true settled=false since=4s unwatched=true; ")

	// A gap in watching x restarts the wait of both.
	step("gap on x", at(7), map[tagctx.Tag]event{tagX: evGap},
		"t covered=false pending=true settled=false since=7s unwatched=true; x covered=false pending=true settled=false since=7s unwatched=true; ")

	// Settled; then a lapse in watching x starts new periods for both: x
	// may have lived unseen and had t's messages skipped.
	for _, l := range []tagctx.Tag{tagT, tagX} {
		c.lanes[l].pending, c.lanes[l].settled, c.lanes[l].unwatched = false, true, false
	}
	step("lapse on x after settling", at(9), map[tagctx.Tag]event{tagX: evUnwatched},
		"t covered=false pending=true settled=false since=9s unwatched=false; x covered=false pending=true settled=false since=9s unwatched=false; ")
	// A lapse on t concerns t only.
	for _, l := range []tagctx.Tag{tagT, tagX} {
		c.lanes[l].pending, c.lanes[l].settled = false, true
	}
	step("lapse on t after settling", at(10), map[tagctx.Tag]event{tagT: evUnwatched},
		"t covered=false pending=true settled=false since=10s unwatched=false; x covered=false pending=false settled=true since=9s unwatched=false; ")

	// y, their parent, starts: it covers both; t comes back: covered.
	c.lanes[tagY] = &laneState{group: "y_svc", online: true, covered: true}
	step("y online", at(11), nil,
		"t covered=true pending=false settled=false since=10s unwatched=false; x covered=true pending=false settled=false since=9s unwatched=false; ")
	// y goes offline: t and x are stable's again, from y's going offline.
	c.lanes[tagY].online, c.lanes[tagY].offAt = false, at(12)
	step("y offline", at(13), map[tagctx.Tag]event{tagY: evOff},
		"t covered=false pending=true settled=false since=12s unwatched=false; x covered=false pending=true settled=false since=12s unwatched=false; ")
}

// TestParentsTakeoverDescendants: a takeover of x hands over x's messages
// from x's offset, and those of t (below x, never listed) from x's offset
// or t's own, whichever is higher; nothing else.
func TestParentsTakeoverDescendants(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "desc"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	for i := range 10 {
		for _, tag := range []tagctx.Tag{tagX, tagT, tagO, {}} {
			sendBatches(t, p, topic, tag, fmt.Sprintf("%s-%d", tag.String(), i), 1)
		}
	}
	h := &handled{}
	c, err := NewConsumer("svc", WithNameServer(s.NameServer()), WithNode(tagctx.Tag{}), WithInstanceName(uniq("stable")),
		WithParents(tagT, tagX, tagY), WithParents(tagX, tagY))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, h.handler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.admin.Close() })
	ctx := context.Background()
	bs, err := c.admin.Route(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	q := admin.Queue{Addr: bs[0].Addr, Topic: topic, ID: 0}
	// x committed up to its 4th round (16 messages a round of 4), t never
	// had a group: from x's offset. Then t has one, above x's.
	if err := c.admin.UpdateOffset(ctx, q, "x_svc", 16); err != nil {
		t.Fatal(err)
	}
	desc := c.descendants(tagX)
	if diff := cmp.Diff(desc, map[tagctx.Tag]string{tagT: "t_svc"}); diff != "" {
		t.Fatalf("descendants of x (-got +want):\n%s", diff)
	}
	if _, err := c.takeover(ctx, tagX, "x_svc", nil, desc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for b := range h.bodies {
		got = append(got, b)
	}
	want := []string{}
	for i := 4; i < 10; i++ {
		want = append(want, fmt.Sprintf("x-%d-000000", i), fmt.Sprintf("t-%d-000000", i))
	}
	if diff := cmp.Diff(sortedStrings(got), sortedStrings(want)); diff != "" {
		t.Errorf("handed over (-got +want):\n%s", diff)
	}

	// Again from x's offset 16, with t's group at 28 (round 7).
	h.bodies = nil
	if err := c.admin.UpdateOffset(ctx, q, "x_svc", 16); err != nil {
		t.Fatal(err)
	}
	if err := c.admin.UpdateOffset(ctx, q, "t_svc", 28); err != nil {
		t.Fatal(err)
	}
	if _, err := c.takeover(ctx, tagX, "x_svc", nil, desc); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for b := range h.bodies {
		got = append(got, b)
	}
	want = want[:0]
	for i := 4; i < 10; i++ {
		want = append(want, fmt.Sprintf("x-%d-000000", i))
		if i >= 7 {
			want = append(want, fmt.Sprintf("t-%d-000000", i))
		}
	}
	if diff := cmp.Diff(sortedStrings(got), sortedStrings(want)); diff != "" {
		t.Errorf("handed over with t's group ahead (-got +want):\n%s", diff)
	}
	if off, err := c.admin.CommittedOffset(ctx, q, "x_svc"); err != nil || off != 40 {
		t.Errorf("x's offset after the takeover: %d, %v; want 40", off, err)
	}
}

// TestParentsSeed: a lane starts at the minimum of stable's offset and its
// parents', online or not; a parent without a group does not count.
func TestParentsSeed(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "seed"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	sendBatches(t, p, topic, tagctx.Tag{}, "u", 1) // one batch: one queue
	sendBatches(t, p, topic, tagctx.Tag{}, "v", 1)
	c, err := NewConsumer("svc", WithNameServer(s.NameServer()), WithNode(tagT), WithInstanceName(uniq("t")),
		WithParents(tagT, tagX, tagY), WithParents(tagX, tagY))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, nopHandler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.admin.Close() })
	ctx := context.Background()
	bs, err := c.admin.Route(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	q0 := admin.Queue{Addr: bs[0].Addr, Topic: topic, ID: 0}
	q1 := admin.Queue{Addr: bs[0].Addr, Topic: topic, ID: 1}
	for _, o := range []struct {
		q     admin.Queue
		group string
		off   int64
	}{
		{q0, "svc", 9}, {q0, "x_svc", 5}, {q0, "y_svc", 7},
		{q1, "svc", 3}, {q1, "x_svc", 8}, {q1, "y_svc", 6},
	} {
		if err := c.admin.UpdateOffset(ctx, o.q, o.group, o.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.seed(ctx); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[admin.Queue]int64{q0: 5, q1: 3} {
		if got, err := c.admin.CommittedOffset(ctx, q, "t_svc"); err != nil || got != want {
			t.Errorf("t's seeded offset on queue %d: %d, %v; want %d", q.ID, got, err, want)
		}
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// BenchmarkFilterParents is BenchmarkFilter's decision with and without
// the chain t -> x -> y -> stable, on stable and on x (a parent): the
// chain adds a map lookup and a walk of at most three lanes.
func BenchmarkFilterParents(b *testing.B) {
	online := onlineSet(tagY, tagO, tagctx.MustParse("blue"), tagctx.MustParse("green"))
	msgs := []*primitive.MessageExt{
		msgWithTag("x-tag", "t"), msgWithTag("x-tag", ""), msgWithTag("x-tag", "x"), msgWithTag("x-tag", "o"),
	}
	for _, m := range msgs {
		m.WithProperty("UNIQ_KEY", "7F0000010001000000000000000000AB")
		m.WithProperty("CLUSTER", "DefaultCluster")
	}
	for _, bc := range []struct {
		name   string
		node   tagctx.Tag
		chains map[tagctx.Tag][]tagctx.Tag
	}{
		{"stable/no-chains", tagctx.Tag{}, nil},
		{"stable/chains", tagctx.Tag{}, chain3},
		{"lane-x/no-chains", tagX, nil},
		{"lane-x/chains", tagX, chain3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFilter("x-tag", bc.node, bc.chains)
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				t, v, _ := f.decide(msgs[i&3], online)
				if v == handle && f.route(t) == tagctx.RouteMisroute {
					n++
				}
			}
			_ = n
		})
	}
}

// FuzzFilterParents: whatever the property holds, with the chain t -> x
// -> y -> stable and only y online, every consumer's verdict follows the
// chain: a lane handles its own tag and its descendants' (nothing before
// it is online), the others nothing; stable skips exactly the tags whose
// chain holds y; a handled message's route proof is never a misroute.
func FuzzFilterParents(f *testing.F) {
	for _, s := range []string{"", "t", "x", "y", "o", "T", "t ", "t_", strings.Repeat("t", 64), "x\x00"} {
		f.Add(s)
	}
	online := onlineSet(tagY)
	filters := map[string]filter{}
	for _, node := range []tagctx.Tag{{}, tagT, tagX, tagY, tagO} {
		filters[node.String()] = newFilter("x-tag", node, chain3)
	}
	f.Fuzz(func(t *testing.T, prop string) {
		m := msgWithTag("x-tag", prop)
		parsed, perr := tagctx.Parse(prop)
		valid := prop != "" && perr == nil
		for node, fl := range filters {
			tag, v, err := fl.decide(m, online)
			if prop != "" && (err != nil) != (perr != nil) {
				t.Errorf("%q, property %q: error %v, Parse error %v", node, prop, err, perr)
			}
			var want verdict
			switch {
			case node == "":
				want = handle
				if valid && (parsed == tagT || parsed == tagX || parsed == tagY) {
					want = skip
				}
			case node == "y":
				want = skip
				if valid && (parsed == tagY || parsed == tagT || parsed == tagX) {
					want = handle
				}
			case node == "x": // y, online, is above it
				want = skip
				if valid && (parsed == tagX || parsed == tagT) {
					want = handle
				}
			default:
				want = skip
				if valid && parsed.String() == node {
					want = handle
				}
			}
			if v != want {
				t.Errorf("%q, property %q: verdict %v, want %v", node, prop, v, want)
			}
			if v == handle && fl.route(tag) == tagctx.RouteMisroute {
				t.Errorf("%q, property %q: handled as a misroute", node, prop)
			}
		}
	})
}

// TestParentsConcurrentConsumeRefreshTakeover is
// TestConcurrentConsumeRefreshTakeover on a parent lane: x's consumer, with
// the chain blue -> x, skips blue while blue is online, and takes it over
// when it goes offline, while the hot path runs on many goroutines. For
// the race detector, without the push consumer.
func TestParentsConcurrentConsumeRefreshTakeover(t *testing.T) {
	// Not parallel: its spinning consume goroutines, under the race
	// detector, starve other tests' clients past their send timeouts
	// (rocketmq-client-go v2.1.2's SendAsync callback then dereferences a
	// nil response and panics).
	s := rocketmqtest.RunT(t)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	blueTag := tagctx.MustParse("blue")
	sendBatches(t, p, topic, blueTag, "blue", 200)
	sendBatches(t, p, topic, tagO, "o", 50) // another lane's: never x's
	c, h := takeoverUnderLoad(t, s, topic, "x_svc", WithNode(tagX), WithParents(blueTag, tagX), WithInstanceName(uniq("x")))
	if !c.Leader() {
		t.Error("the only member of x's group is not its leader")
	}
	if n, _ := h.count("blue"); n != 200 {
		t.Errorf("handled %d of 200 blue messages, by the hot path or the takeover", n)
	}
	if n, _ := h.count("o"); n != 0 {
		t.Errorf("x handled %d messages of lane o, outside its chain", n)
	}
	if st := c.Stats(); st.Handled == 0 || st.Redelivered+st.NotHandedOver != 200 {
		t.Errorf("stats %+v: want the hot path to handle blue once offline, and the takeover to hand over or leave out each message once", st)
	}
	t.Logf("stats %+v", c.Stats())
}
