package mq_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// TestChaos: lanes start, stop and crash, and stable instances (the leader
// or not) pause, at random while producers send thousands of mixed
// messages on two topics, and handlers, lanes' and stable's, ask for some
// retries; no message is lost. MQ_CHAOS_SEED replays a
// run.
func TestChaos(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	rng := chaosRand(t)

	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2), rocketmqtest.WithDelayLevels(100*time.Millisecond))
	// Two topics whose queues share broker names, IDs and offsets: what a
	// takeover leaves out as handled must be told apart by topic.
	topics := []string{"chaos", "chaos-2"}
	for _, topic := range topics {
		if err := s.CreateTopic(topic, 2); err != nil {
			t.Fatal(err)
		}
	}
	rec := new(rocketmqtest.Recorder)
	// Stable asks for a retry of some messages once too, so messages come
	// back from its own retry topic, whose queue positions collide with
	// the topics' as well.
	var retried retries
	stableHandler := func(name string) mq.Handler { return retried.handler(rng, 0.01, rec, name) }
	stables := []*mq.Consumer{
		startMulti(t, s, "", stableHandler("stable-0"), topics),
		startMulti(t, s, "", stableHandler("stable-1"), topics),
	}
	p := newProducer(t, s)
	tags := []string{"", "a", "b", "c", "d"} // d never has a lane
	streams := []*stream{
		startStream(t, p, topics[0], "s0", time.Millisecond, tags...),
		startStream(t, p, topics[1], "s1", time.Millisecond, tags...),
	}

	type lane struct {
		c *mq.Consumer
		g *gate
	}
	var (
		running              = map[string]*lane{}
		starts, stops, kills int
	)
	// Lanes ask for a retry of some messages once, so their retry topics
	// fill up and must be drained when they go offline.
	laneHandler := func(tag string, retry float64) mq.Handler { return retried.handler(rng, retry, rec, tag) }
	// Stable instances pause too (as by SIGSTOP or a long GC pause), one
	// at a time, for up to three staleness bounds: their beliefs go stale
	// under them while lanes come and go.
	// MQ_CHAOS_STABLE_RESTARTS=1 restarts stable instances too.
	restartStables := os.Getenv("MQ_CHAOS_STABLE_RESTARTS") != ""
	restarts := 0
	var (
		resume               func()
		resumeAt             time.Time
		pauses, leaderPauses int
		longPauses           int
	)
	// events is what happened when, logged if something is lost.
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
		if restartStables && resume == nil && rng.IntN(15) == 0 {
			// A stable instance restarts: its queues move to the other
			// and back, its last commit may come late, and leadership
			// may change hands.
			i := rng.IntN(len(stables))
			wasLeader := stables[i].Leader()
			stables[i].Shutdown()
			stables[i] = startMulti(t, s, "", stableHandler(fmt.Sprintf("stable-%d", i)), topics)
			restarts++
			event("restarted stable-%d (leader %v)", i, wasLeader)
			continue
		}
		if resume == nil && rng.IntN(8) == 0 {
			i := rng.IntN(len(stables))
			if stables[i].Leader() {
				leaderPauses++
			}
			d := time.Duration(rng.Int64N(int64(3 * testStaleness)))
			if d > testStaleness {
				longPauses++
			}
			resume, resumeAt = mq.Freeze(stables[i]), time.Now().Add(d)
			pauses++
			event("paused stable-%d (leader %v) for %v", i, stables[i].Leader(), d)
			continue
		}
		if rng.IntN(3) != 0 {
			continue
		}
		tag := []string{"a", "b", "c"}[rng.IntN(3)]
		l := running[tag]
		switch {
		case l == nil:
			g := newGate(t)
			c := startMulti(t, s, tag, g.wrap(laneHandler(tag, 0.02)), topics)
			running[tag] = &lane{c, g}
			starts++
			event("lane %s started", tag)
		case rng.IntN(2) == 0:
			l.c.Shutdown()
			delete(running, tag)
			stops++
			event("lane %s stopped", tag)
		default:
			crash(t, s, l.c, l.g)
			delete(running, tag)
			kills++
			event("lane %s crashed", tag)
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
	// Every lane ended, so the brokers must soon list no member of any
	// lane group: a leftover member keeps its lane "online" for the leader
	// until the channel expiry (120 s), past this test's wait, and its
	// skipped messages would look lost. Said here, with its cause.
	for _, tag := range []string{"a", "b", "c"} {
		group := tag + "_svc"
		if !pollUntil(5*time.Second, func() bool { return len(s.OnlineConsumers(group)) == 0 }) {
			t.Errorf("group %s still lists %q after every lane ended: its takeover waits for the channel expiry", group, s.OnlineConsumers(group))
		}
	}
	lostBodies := waitLost(t, rec, 40*time.Second, all)
	if len(lostBodies) > 0 {
		// Who the brokers still list, beside what the stables believe.
		for _, tag := range []string{"a", "b", "c"} {
			t.Logf("group %s_svc: members %q", tag, s.OnlineConsumers(tag+"_svc"))
		}
	}
	reportLost(t, s, topics, t0, events, lostBodies, &retried, stables)
	got := rec.ByBody()
	misroutes := 0
	for _, d := range rec.Deliveries() {
		if !strings.HasPrefix(d.Consumer, "stable") && !strings.Contains(d.Body(), "-"+d.Consumer+"-") {
			misroutes++
			t.Errorf("misroute: lane %s handled %s", d.Consumer, d.Body())
		}
	}
	takeovers, redelivered := stableTotals(stables)
	lost := 0
	for _, b := range all {
		if len(got[b]) == 0 {
			lost++
		}
	}
	t.Logf("%d messages; lanes started %d, stopped %d, crashed %d; stable pauses %d (of the leader %d, longer than the staleness bound %d), restarts %d; %d retries; takeovers %d, handed over %d; lost %d, duplicates %d, misroutes %d",
		len(all), starts, stops, kills, pauses, leaderPauses, longPauses, restarts, retried.count(), takeovers, redelivered, lost, rec.Duplicates(all...), misroutes)
	if len(all) < 2000 {
		t.Errorf("only %d messages sent, want thousands", len(all))
	}
}
