package mq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// routeLog collects the route proof every consumer reports, by node,
// traffic and route.
type routeLog struct {
	mu sync.Mutex
	n  map[string]int // "node traffic route"
}

func (l *routeLog) observer() tagctx.Observer {
	return func(_ context.Context, o tagctx.Observation) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n == nil {
			l.n = map[string]int{}
		}
		l.n[fmt.Sprintf("%s %s %s", o.Node, o.Traffic, o.Route)]++
	}
}

func (l *routeLog) count(node, traffic string, r tagctx.Route) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[fmt.Sprintf("%s %s %s", node, traffic, r)]
}

func (l *routeLog) misroutes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, n := range l.n {
		if strings.HasSuffix(k, " "+tagctx.RouteMisroute.String()) {
			out = append(out, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	return out
}

// chainOpts is WithParents for every chain, as every consumer of a base
// group must be given them.
func chainOpts(chains map[string][]string) []mq.Option {
	var opts []mq.Option
	for lane, parents := range chains {
		var ps []tagctx.Tag
		for _, p := range parents {
			ps = append(ps, tagctx.MustParse(p))
		}
		opts = append(opts, mq.WithParents(tagctx.MustParse(lane), ps...))
	}
	return opts
}

// chainMisroutes lists deliveries to a lane consumer of a message that is
// neither its lane's nor of a lane whose chain names it. Consumers are
// named by their lane ("stable..." for stable instances).
func chainMisroutes(rec *rocketmqtest.Recorder, chains map[string][]string) []string {
	var out []string
	for _, d := range rec.Deliveries() {
		tag := d.Msg.GetProperty(tagctx.DefaultBaggageKey)
		if strings.HasPrefix(d.Consumer, "stable") || d.Consumer == tag || slices.Contains(chains[tag], d.Consumer) {
			continue
		}
		out = append(out, fmt.Sprintf("lane %s handled %s (tag %q)", d.Consumer, d.Body(), tag))
	}
	return out
}

// handlersOf returns who handled each of bodies, sorted and deduplicated.
func handlersOf(rec *rocketmqtest.Recorder, bodies []string) []string {
	by := rec.ByBody()
	var out []string
	for _, b := range bodies {
		out = append(out, by[b]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestParentsRouting: with the chain x2 -> x -> stable, messages of x2 go
// to x (route "fallback") while x2 has no consumer, to x2 once it runs,
// to x again when it stops, to x2 when it is back, and to stable when
// both stop; never to the lane o outside the chain. Nothing is lost.
func TestParentsRouting(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "par-route"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	chains := map[string][]string{"x2": {"x"}}
	var routes routeLog
	opts := append(chainOpts(chains), mq.WithObserver(routes.observer()))
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec, opts...)
	x := startConsumer(t, s, "svc", topic, "x", nil, rec, opts...)
	startConsumer(t, s, "svc", topic, "o", nil, rec, opts...)
	waitOnline(t, stable, "o", "x")
	p := newProducer(t, s)
	var all []string
	phase := func(name string, want ...string) {
		t.Helper()
		b := bodies("x2-"+name, 20)
		all = append(all, b...)
		send(t, p, topic, "x2", b)
		rec.WaitBodies(t, 15*time.Second, b...)
		if got := handlersOf(rec, b); !slices.Equal(got, want) {
			t.Errorf("%s: x2's messages handled by %q, want %q", name, got, want)
		}
	}

	phase("x-only", "x")
	if n := routes.count("x", "x2", tagctx.RouteFallback); n < 20 {
		t.Errorf("x reported %d fallbacks of x2's messages, want 20", n)
	}
	x2 := startConsumer(t, s, "svc", topic, "x2", nil, rec, opts...)
	phase("x2-runs", "x2")
	if n := routes.count("x2", "x2", tagctx.RouteMatched); n < 20 {
		t.Errorf("x2 reported %d matched routes, want 20", n)
	}
	x2.Shutdown()
	// x hands over what it skipped for x2 and x2 never consumed (nothing
	// here), and handles x2's messages itself once it sees x2 offline;
	// until then they wait for the takeover.
	phase("x2-stopped", "x")
	waitFor(t, 10*time.Second, func() string {
		if n := x.Stats().Takeovers; n == 0 {
			return "x did not take x2 over"
		}
		return ""
	})
	// x2 comes back while x handles its tag: it resumes from the offsets
	// x kept up for it.
	x2 = startConsumer(t, s, "svc", topic, "x2", nil, rec, opts...)
	phase("x2-back", "x2")
	x2.Shutdown()
	x.Shutdown()
	phase("x-stopped", "stable")

	if m := chainMisroutes(rec, chains); len(m) > 0 {
		t.Errorf("misroutes: %q", m)
	}
	if m := routes.misroutes(); len(m) > 0 {
		t.Errorf("route proofs: %q", m)
	}
	t.Logf("%d x2 messages, %d duplicates; x %+v; stable %+v", len(all), rec.Duplicates(all...), x.Stats(), stable.Stats())
}

// TestParentsTakeover: messages of every lane are sent continuously while,
// with the chain x2 -> x -> stable (and x3 -> x, a lane that never runs),
// x2 ends (crash or graceful stop) while x runs, and x then crashes while
// x2 is offline. x hands over x2's tail; stable hands over x's, x2's and
// x3's. Nothing is lost.
func TestParentsTakeover(t *testing.T) {
	t.Parallel()
	// pending: x crashes while its takeover of x2 still waits for its
	// delay; half: x's handler fails the takeover after its first handed-
	// over batch (the other queues stop there and are retried), and x
	// crashes with it half done. Stable's takeovers of x and x2 cover x2's tail.
	for _, end := range []string{"crash", "stop", "pending", "half"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			skipIfClientRaces(t)
			s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
			const topic = "par-takeover"
			if err := s.CreateTopic(topic, 2); err != nil {
				t.Fatal(err)
			}
			chains := map[string][]string{"x2": {"x"}, "x3": {"x"}}
			var routes routeLog
			opts := append(chainOpts(chains), mq.WithObserver(routes.observer()))
			rec := new(rocketmqtest.Recorder)
			stable := startConsumer(t, s, "svc", topic, "", nil, rec, opts...)
			gx := newGate(t)
			xh := rec.Handler("x")
			var handedOver atomic.Int64
			if end == "half" {
				xh = func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
					// The first handed-over call (one queue's batch)
					// succeeds, the rest fail.
					if mq.HandedOver(ctx) && handedOver.Add(1) > 1 {
						return consumer.ConsumeRetryLater, nil
					}
					return rec.Handler("x")(ctx, msgs...)
				}
			}
			x := startConsumer(t, s, "svc", topic, "x", gx.wrap(xh), rec, opts...)
			gx2 := newGate(t)
			x2 := startConsumer(t, s, "svc", topic, "x2", gx2.wrap(rec.Handler("x2")), rec, opts...)
			waitOnline(t, stable, "x", "x2")
			p := newProducer(t, s)
			// Five tags over four queues (the producer takes them in
			// turn): every lane's messages land on every queue.
			st := startStream(t, p, topic, end, 2*time.Millisecond, "", "x", "x2", "x3", "o")
			st.waitSent(t, 100)

			// x2 ends: its handler stops first, so its tail piles up
			// unconsumed while x and stable skip it.
			gx2.dead.Store(true)
			st.waitSent(t, 100)
			if end == "stop" {
				x2.Shutdown()
			} else {
				crash(t, s, x2, nil)
			}
			switch end {
			case "crash", "stop":
				waitFor(t, 15*time.Second, func() string {
					if x.Stats().Takeovers == 0 || x.Stats().Redelivered == 0 {
						return fmt.Sprintf("x did not hand x2's tail over: %+v", x.Stats())
					}
					return ""
				})
				st.waitSent(t, 100)
			case "half":
				waitFor(t, 15*time.Second, func() string {
					if handedOver.Load() <= 1 || x.Stats().Redelivered == 0 {
						return fmt.Sprintf("x's takeover of x2 is not half done: %+v", x.Stats())
					}
					return ""
				})
				// From here on every takeover of x2 by x fails after its
				// first batch. (One may have completed before, if its
				// first batch held the whole tail and a lapse in x's
				// watch then started another: a loaded machine.)
				if n := x.Stats().Takeovers; n != 0 {
					t.Logf("x completed %d takeovers of x2 before the one it is stuck in", n)
				}
			}

			// x crashes with x2 offline: its handler freezes, x's and
			// x2's (and x3's) messages pile up, skipped by stable.
			gx.dead.Store(true)
			if end == "crash" || end == "stop" {
				st.waitSent(t, 100)
			}
			crash(t, s, x, nil)
			if end == "pending" && x.Stats().Takeovers != 0 {
				t.Logf("x's takeover of x2 ran before its crash (a slow machine): %+v", x.Stats())
			}
			waitFor(t, 15*time.Second, func() string {
				if stable.Stats().Takeovers < 2 {
					return fmt.Sprintf("stable did not take x and x2 over: %+v", stable.Stats())
				}
				return ""
			})
			st.waitSent(t, 100)
			var sent []string
			for _, tag := range []string{"", "x", "x2", "x3", "o"} {
				sent = append(sent, st.bodies(tag)...)
			}
			if lost := waitLost(t, rec, 20*time.Second, sent); len(lost) > 0 {
				t.Errorf("%d of %d lost, first %q", len(lost), len(sent), lost[:min(5, len(lost))])
			}
			if m := chainMisroutes(rec, chains); len(m) > 0 {
				t.Errorf("misroutes: %q", m[:min(5, len(m))])
			}
			if m := routes.misroutes(); len(m) > 0 {
				t.Errorf("route proofs: %q", m)
			}
			t.Logf("%d messages, lost 0, duplicates %d; x %+v; stable %+v", len(sent), rec.Duplicates(sent...), x.Stats(), stable.Stats())
		})
	}
}

// TestChaosParents is TestChaos with chains: c -> b -> a -> stable, e -> a
// (e never runs) and d on its own. Lanes a (up to two instances) to d
// start, stop and crash, and
// stable instances and the running handler lanes (a, b) pause, at random,
// while producers send mixed messages on two topics and handlers ask for
// some retries; no message is lost, and no lane handles a message of a
// lane whose chain does not name it. MQ_CHAOS_SEED replays a run.
func TestChaosParents(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	rng := chaosRand(t)

	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2), rocketmqtest.WithDelayLevels(100*time.Millisecond))
	topics := []string{"chaosp", "chaosp-2"}
	for _, topic := range topics {
		if err := s.CreateTopic(topic, 2); err != nil {
			t.Fatal(err)
		}
	}
	chains := map[string][]string{"c": {"b", "a"}, "b": {"a"}, "e": {"a"}}
	opts := chainOpts(chains)
	rec := new(rocketmqtest.Recorder)
	// Every handler asks for a retry of some messages once, so retry
	// topics fill up, stable's and the lanes' (whose hold messages of the
	// lanes below them too), and must be drained when a lane goes offline.
	var retried retries
	handler := func(name string, rate float64) mq.Handler { return retried.handler(rng, rate, rec, name) }
	stables := []*mq.Consumer{
		startMulti(t, s, "", handler("stable-0", 0.01), topics, opts...),
		startMulti(t, s, "", handler("stable-1", 0.01), topics, opts...),
	}
	p := newProducer(t, s)
	tags := []string{"", "a", "b", "c", "d", "e"}
	streams := []*stream{
		startStream(t, p, topics[0], "p0", time.Millisecond, tags...),
		startStream(t, p, topics[1], "p1", time.Millisecond, tags...),
	}
	type lane struct {
		c *mq.Consumer
		g *gate
	}
	var (
		running              = map[string]*lane{}
		starts, stops, kills int
		resume               func()
		resumeAt             time.Time
		pauses, lanePauses   int
	)
	t0 := time.Now()
	var events []string
	event := func(format string, args ...any) {
		events = append(events, fmt.Sprintf("%6.3fs ", time.Since(t0).Seconds())+fmt.Sprintf(format, args...))
	}
	deadline := time.Now().Add(12 * time.Second)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		if resume != nil && time.Now().After(resumeAt) {
			resume()
			resume = nil
			event("resumed")
		}
		if resume == nil && rng.IntN(8) == 0 {
			// A stable instance or a running parent lane pauses, for up
			// to three staleness bounds.
			d := time.Duration(rng.Int64N(int64(3 * testStaleness)))
			var c *mq.Consumer
			name := ""
			if i := rng.IntN(4); i < len(stables) {
				c, name = stables[i], fmt.Sprintf("stable-%d", i)
			} else if l := running[[]string{"a", "b"}[i-len(stables)]]; l != nil {
				// A parent lane (its first instance).
				c, name = l.c, l.c.Tag().String()
				lanePauses++
			}
			if c != nil {
				resume, resumeAt = mq.Freeze(c), time.Now().Add(d)
				pauses++
				event("paused %s (leader %v) for %v", name, c.Leader(), d)
				continue
			}
		}
		if rng.IntN(3) != 0 {
			continue
		}
		// "a#2" is a second instance of lane a: the root parent's group
		// has a leader to elect, and loses it now and then.
		key := []string{"a", "a#2", "b", "c", "d"}[rng.IntN(5)]
		tag, _, _ := strings.Cut(key, "#")
		l := running[key]
		switch {
		case l == nil:
			g := newGate(t)
			c := startMulti(t, s, tag, g.wrap(handler(tag, 0.02)), topics, opts...)
			running[key] = &lane{c, g}
			starts++
			event("lane %s started", key)
		case rng.IntN(2) == 0:
			// A paused lane may stop or crash too: Shutdown releases
			// what the pause holds.
			l.c.Shutdown()
			delete(running, key)
			stops++
			event("lane %s stopped", key)
		default:
			crash(t, s, l.c, l.g)
			delete(running, key)
			kills++
			event("lane %s crashed", key)
		}
	}
	if resume != nil {
		resume()
	}
	var all []string
	for _, st := range streams {
		for _, tag := range tags {
			all = append(all, st.bodies(tag)...)
		}
	}
	for _, l := range running {
		l.c.Shutdown()
	}
	for _, tag := range []string{"a", "b", "c", "d"} {
		group := tag + "_svc"
		if !pollUntil(5*time.Second, func() bool { return len(s.OnlineConsumers(group)) == 0 }) {
			t.Errorf("group %s still lists %q after every lane ended", group, s.OnlineConsumers(group))
		}
	}
	lostBodies := waitLost(t, rec, 40*time.Second, all)
	reportLost(t, s, topics, t0, events, lostBodies, &retried, stables)
	misroutes := chainMisroutes(rec, chains)
	for i, m := range misroutes {
		if i == 10 {
			break
		}
		t.Errorf("misroute: %s", m)
	}
	takeovers, redelivered := stableTotals(stables)
	t.Logf("%d messages; lanes started %d, stopped %d, crashed %d; pauses %d (of lanes %d); %d retries; stable takeovers %d, handed over %d; lost %d, duplicates %d, misroutes %d",
		len(all), starts, stops, kills, pauses, lanePauses, retried.count(), takeovers, redelivered, len(lostBodies), rec.Duplicates(all...), len(misroutes))
	if len(all) < 2000 {
		t.Errorf("only %d messages sent, want thousands", len(all))
	}
}

// TestParentsChainOfThree: t -> x -> y -> stable, where t never runs. y
// handles t's messages; x, once started, takes them; when x crashes, y
// hands over x's tail and t's (t has no group: the descendant filter),
// then handles them again itself. Nothing is lost; stable and the lane o
// handle none of them.
func TestParentsChainOfThree(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "par-three"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	chains := map[string][]string{"t": {"x", "y"}, "x": {"y"}}
	opts := chainOpts(chains)
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec, opts...)
	y := startConsumer(t, s, "svc", topic, "y", nil, rec, opts...)
	startConsumer(t, s, "svc", topic, "o", nil, rec, opts...)
	waitOnline(t, stable, "o", "y")
	p := newProducer(t, s)
	var all []string
	phase := func(name, tag string, want ...string) []string {
		t.Helper()
		b := bodies(tag+"-"+name, 20)
		all = append(all, b...)
		send(t, p, topic, tag, b)
		rec.WaitBodies(t, 15*time.Second, b...)
		if got := handlersOf(rec, b); !slices.Equal(got, want) {
			t.Errorf("%s: %s's messages handled by %q, want %q", name, tag, got, want)
		}
		return b
	}
	phase("y-only", "t", "y")
	phase("y-only", "x", "y")
	gx := newGate(t)
	x := startConsumer(t, s, "svc", topic, "x", gx.wrap(rec.Handler("x")), rec, opts...)
	phase("x-runs", "t", "x")
	phase("x-runs", "x", "x")
	// x freezes and crashes: what it got of x's and t's is stuck, and y
	// skipped them for x.
	gx.dead.Store(true)
	stuck := append(bodies("t-stuck", 10), bodies("x-stuck", 10)...)
	all = append(all, stuck...)
	send(t, p, topic, "t", stuck[:10])
	send(t, p, topic, "x", stuck[10:])
	crash(t, s, x, nil)
	rec.WaitBodies(t, 15*time.Second, stuck...)
	if got := handlersOf(rec, stuck); !slices.Equal(got, []string{"y"}) {
		t.Errorf("stuck messages handled by %q, want y (its takeover)", got)
	}
	// The takeover counts itself once its handler calls returned.
	waitFor(t, 5*time.Second, func() string {
		if st := y.Stats(); st.Takeovers == 0 || st.Redelivered == 0 {
			return fmt.Sprintf("y stats %+v: want x taken over", st)
		}
		return ""
	})
	phase("x-crashed", "t", "y")
	if m := chainMisroutes(rec, chains); len(m) > 0 {
		t.Errorf("misroutes: %q", m[:min(5, len(m))])
	}
	if st := stable.Stats(); st.Handled != 0 {
		t.Errorf("stable handled %d messages of the chain, want 0: %+v", st.Handled, st)
	}
	t.Logf("%d messages, duplicates %d; y %+v", len(all), rec.Duplicates(all...), y.Stats())
}
