package mq_test

import (
	"slices"
	"testing"
	"time"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// TestCrashDuringHeartbeat: a lane crashed (crash) while its client has a
// heartbeat in flight leaves no member of its group at the brokers.
//
// rocketmq-client-go v2.1.2 sends a heartbeat one second after its client
// starts, to every broker in turn, each with a 3 s timeout. If the crash
// closes the client's connections while that heartbeat waits for a broker,
// the heartbeat goes on to the next broker after Shutdown, opens a new
// connection there (Shutdown closed only the connections it had) and
// registers the group member again, on a connection nobody closes: the
// brokers list the "crashed" lane until the channel expiry (120 s), the
// stable leader believes it online, and its takeover never runs within the
// chaos test. A killed process sends nothing more, so the crash simulation
// must not let it.
func TestCrashDuringHeartbeat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, s *rocketmqtest.Server, c *mq.Consumer)
	}{
		{"crash", func(t *testing.T, s *rocketmqtest.Server, c *mq.Consumer) { crash(t, s, c, nil) }},
		// A graceful Shutdown closes the connections the client holds; a
		// heartbeat still in flight finds them closed and must not open
		// new ones.
		{"stop", func(t *testing.T, s *rocketmqtest.Server, c *mq.Consumer) { c.Shutdown() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			endDuringHeartbeat(t, tc.end)
		})
	}
}

func endDuringHeartbeat(t *testing.T, end func(t *testing.T, s *rocketmqtest.Server, c *mq.Consumer)) {
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	if err := s.CreateTopic("hb", 2); err != nil {
		t.Fatal(err)
	}
	// No stable consumer and no producer: the lane's client is the only
	// one heartbeating, so the heartbeat count tells when its own is in
	// flight.
	const attempts = 3
	for i := range attempts {
		tag := []string{"a", "b", "c"}[i]
		c := startConsumer(t, s, "hb", "hb", tag, nil, new(rocketmqtest.Recorder))
		id := clientID(t, s, c)
		before := s.Requests(rocketmqtest.HeartBeat)
		// The next heartbeat goes unanswered, as from a broker that is
		// slow to answer: the client waits up to 3 s on the first broker.
		s.FailClientRequests(id, rocketmqtest.HeartBeat, rocketmqtest.Fault{NoReply: true})
		if !pollUntil(3*time.Second, func() bool { return s.Requests(rocketmqtest.HeartBeat) > before }) {
			// The client's one-second heartbeat went out before the
			// fault was set (a slow Start); the next is 30 s away.
			end(t, s, c)
			s.ClearFaults()
			continue
		}
		end(t, s, c)
		// The brokers drop the member once they see its connections close.
		listed := func() bool { return len(members(s, c.Group(), id)) > 0 }
		if !pollUntil(5*time.Second, func() bool { return !listed() }) {
			t.Fatalf("ended lane %q still listed in group %q", id, c.Group())
		}
		// The heartbeat in flight gives up after 3 s and tries the next
		// broker; a member it registered there would stay listed.
		if pollUntil(8*time.Second, listed) {
			t.Fatalf("ended lane %q is listed again in group %q: %q", id, c.Group(), members(s, c.Group(), id))
		}
		return
	}
	t.Skipf("the lane's one-second heartbeat went out before the fault in all %d attempts (a slow machine)", attempts)
}

// members returns the members of group named id at any broker.
func members(s *rocketmqtest.Server, group, id string) []string {
	return slices.DeleteFunc(s.OnlineConsumers(group), func(m string) bool { return m != id })
}

// pollUntil polls cond every 5 ms until it holds (true) or d passes (false).
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
}

// TestFrozenLaneTakenOverAtExpiry: a lane whose process freezes (as by
// SIGSTOP) keeps its connections open and stays listed, so stable goes on
// skipping its tag: its messages wait. Once the brokers expire the silent
// channel (120 s on 4.9.4, WithChannelExpiry here), the lane is offline and
// the takeover hands every one of them over: a delay, not a loss, as the
// package documentation's assumption (2) says.
func TestFrozenLaneTakenOverAtExpiry(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	// Above the client's 30 s heartbeat interval, so that only the frozen
	// lane expires, not the stable consumer or the producer.
	const expiry = 31 * time.Second
	if testing.Short() {
		t.Skip("waits for the brokers' channel expiry, over 30 s")
	}
	s := rocketmqtest.RunT(t, rocketmqtest.WithChannelExpiry(expiry))
	const topic = "frozen"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	g := newGate(t)
	lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	waitOnline(t, stable, "blue")
	id := clientID(t, s, lane)
	// Frozen: the handler never returns, no heartbeat goes out, the
	// connections stay open.
	g.dead.Store(true)
	s.FailClientRequests(id, rocketmqtest.HeartBeat, rocketmqtest.Fault{NoReply: true})
	frozenAt := time.Now()
	p := newProducer(t, s)
	blue := bodies("frozen-blue", 40)
	send(t, p, topic, "blue", blue)
	if n := len(rec.Missing(blue...)); n != len(blue) {
		t.Logf("%d of %d handled before the expiry (the lane's last heartbeat was before the freeze)", len(blue)-n, len(blue))
	}
	if lost := waitLost(t, rec, expiry+15*time.Second, blue); len(lost) > 0 {
		t.Fatalf("%d of %d messages of the frozen lane never handled (members of blue_svc: %q)", len(lost), len(blue), s.OnlineConsumers("blue_svc"))
	}
	t.Logf("all %d handed over %v after the freeze (channel expiry %v)", len(blue), time.Since(frozenAt).Round(10*time.Millisecond), expiry)
	// The takeover counts itself once its handler calls returned.
	if !pollUntil(5*time.Second, func() bool { return stable.Stats().Takeovers > 0 }) {
		t.Errorf("stable stats %+v: want a takeover", stable.Stats())
	}
	if st := stable.Stats(); st.Redelivered == 0 {
		t.Errorf("stable stats %+v: want the frozen lane's messages handed over", st)
	}
}
