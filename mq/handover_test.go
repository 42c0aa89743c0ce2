package mq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// startMulti starts a consumer of base "svc" in role tag ("" for stable)
// subscribed to every topic with handler h.
func startMulti(t *testing.T, s *rocketmqtest.Server, tag string, h mq.Handler, topics []string, extra ...mq.Option) *mq.Consumer {
	t.Helper()
	var nodeTag tagctx.Tag
	name := "stable"
	if tag != "" {
		nodeTag, name = tagctx.MustParse(tag), tag
	}
	opts := testOpts(s, append([]mq.Option{mq.WithNodeTag(nodeTag), mq.WithInstanceName(instance("svc-" + name))}, extra...)...)
	c, err := mq.NewConsumer("svc", opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c
}

// TestTakeoverTwoTopics: a consumer subscribed to two topics whose queues
// share a broker name, a queue ID and an offset. The leader handles a
// blue message of one topic itself while the takeover is pending; the
// takeover must still hand over the blue message at the same position of
// the other topic, which stable skipped and the crashed lane never
// handled. (What the leader handled is remembered by position: a position
// without its topic, as before, made the takeover leave the second message
// out and move the lane's offset past it, a loss. The same collision hit a
// message redelivered from stable's own retry topic.)
func TestTakeoverTwoTopics(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	topics := []string{"two-a", "two-b"}
	for _, topic := range topics {
		if err := s.CreateTopic(topic, 1); err != nil {
			t.Fatal(err)
		}
	}
	rec := new(rocketmqtest.Recorder)
	// A wide takeover margin leaves seconds between the lane's going
	// offline and the takeover, for the leader to handle a message itself.
	const margin = 3 * time.Second
	stable := startMulti(t, s, "", rec.Handler("stable"), topics, mq.WithTakeoverMargin(margin))
	g := newGate(t)
	lane := startMulti(t, s, "blue", g.wrap(rec.Handler("blue")), topics)
	waitOnline(t, stable, "blue")

	// The lane dies without handling the first blue message of topic
	// two-a (queue 0, offset 0); stable skipped it.
	g.dead.Store(true)
	p := newProducer(t, s)
	send(t, p, topics[0], "blue", []string{"skipped-blue"})
	waitFor(t, 10*time.Second, func() string {
		if n := stable.Stats().Skipped; n < 1 {
			return fmt.Sprintf("stable skipped %d messages, want the blue one", n)
		}
		return ""
	})
	crashed := time.Now()
	crash(t, s, lane, g)
	waitOnline(t, stable)

	// While the takeover waits, the leader handles the first blue message
	// of topic two-b: queue 0, offset 0 too.
	send(t, p, topics[1], "blue", []string{"handled-blue"})
	rec.WaitBodies(t, 10*time.Second, "handled-blue")
	if time.Since(crashed) >= margin || stable.Stats().Takeovers != 0 {
		t.Skipf("the takeover may have run before the leader handled the second message (%v after the crash): the machine is too slow for this sequence", time.Since(crashed))
	}

	waitLostBodies := waitLost(t, rec, 20*time.Second, []string{"skipped-blue", "handled-blue"})
	for _, b := range waitLostBodies {
		t.Errorf("lost %s", b)
	}
	waitFor(t, 10*time.Second, func() string {
		if n := stable.Stats().Takeovers; n < 1 {
			return "the takeover did not complete"
		}
		return ""
	})
	st := stable.Stats()
	if st.NotHandedOver != 1 {
		t.Errorf("the takeover left out %d messages as handled by the leader, want 1 (handled-blue)", st.NotHandedOver)
	}
	for _, d := range rec.Deliveries() {
		if d.Body() == "skipped-blue" && !mq.HandedOver(d.Ctx) {
			t.Errorf("skipped-blue delivered to %s not as handed over", d.Consumer)
		}
	}
	t.Logf("stats %+v, duplicates %d", st, rec.Duplicates("skipped-blue", "handled-blue"))
}

// TestLaneLifeUnseenByPausedLeader: the takeover leader is paused (as by a
// GC pause or a stalled refresh) for less than the staleness bound, and a
// lane instance lives entirely inside that pause: it starts from the
// offsets the leader keeps up, the other stable instance sees it and skips
// its tag, and it dies before handling or committing anything. The leader
// never saw it: its answers before and after the pause both say
// "offline", less than the staleness bound apart. Keeping the lane's
// offsets up with stable's committed offsets must not move them past what
// the other instance skipped.
func TestLaneLifeUnseenByPausedLeader(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "unseen"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	// A staleness bound of seconds leaves room for the lane's whole life
	// inside a pause shorter than it.
	const staleness = 4 * time.Second
	st := []*mq.Consumer{
		startConsumer(t, s, "svc", topic, "", rec.Handler("stable-0"), rec, mq.WithStaleness(staleness)),
		startConsumer(t, s, "svc", topic, "", rec.Handler("stable-1"), rec, mq.WithStaleness(staleness)),
	}
	// A first blue instance comes and goes; the leader takes over (nothing
	// to hand over) and keeps the lane's offsets up from then on.
	first := startConsumer(t, s, "svc", topic, "blue", rec.Handler("blue"), rec)
	for _, c := range st {
		waitOnline(t, c, "blue")
	}
	first.Shutdown()
	leader := leaderOf(t, st)
	waitFor(t, 20*time.Second, func() string {
		if st[leader].Stats().Takeovers == 0 {
			return "the leader completed no takeover"
		}
		return ""
	})
	other := st[1-leader]

	resume := mq.Freeze(st[leader])
	paused := time.Now()
	g := newGate(t)
	g.dead.Store(true) // it handles nothing
	second := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	waitOnline(t, other, "blue")
	p := newProducer(t, s)
	blue := bodies("unseen-blue", 20)
	send(t, p, topic, "blue", blue)
	waitFor(t, 10*time.Second, func() string {
		if n := other.Stats().Skipped; n == 0 {
			return "the other stable instance skipped no blue message"
		}
		return ""
	})
	crash(t, s, second, g)
	pause := time.Since(paused)
	resume()
	if pause >= staleness-time.Second {
		t.Skipf("the pause took %v, too close to the staleness bound %v for this sequence", pause, staleness)
	}
	// Untagged traffic afterwards moves stable's committed offsets past
	// the skipped messages.
	untagged := bodies("unseen-untagged", 20)
	send(t, p, topic, "", untagged)
	lost := waitLost(t, rec, 15*time.Second, append(append([]string{}, blue...), untagged...))
	for i, b := range lost {
		if i < 5 {
			t.Errorf("lost %s", b)
		}
	}
	t.Logf("paused %v; skipped by the other instance %d; lost %d; handed over %d+%d, takeovers %d+%d, duplicates %d", pause.Round(time.Millisecond),
		other.Stats().Skipped, len(lost), st[0].Stats().Redelivered, st[1].Stats().Redelivered, st[0].Stats().Takeovers, st[1].Stats().Takeovers,
		rec.Duplicates(blue...))
}

// TestLanePartlySeeded: a lane process died while seeding its offsets, so
// its group has an offset on one queue and none on the other, whose oldest
// messages retention deleted (min offset above 0: the broker answers 22
// QUERY_NOT_FOUND there, and the push consumer would start at the queue's
// max offset). Restarted, the lane must seed the missing queue from
// stable's offsets: stable, behind by a backlog, skips the lane's tag from
// where it is once it sees the lane, below the max offset.
func TestLanePartlySeeded(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	// Retention keeps 50 messages a queue: more than the backlog below,
	// fewer than what comes before it.
	s := rocketmqtest.RunT(t, rocketmqtest.WithRetention(50, 0))
	const topic = "seedcut"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	var (
		plugged atomic.Bool
		blocked atomic.Int64
		release = make(chan struct{})
	)
	t.Cleanup(func() {
		if plugged.Swap(false) {
			close(release)
		}
	})
	h := rec.Handler("stable")
	stable := startConsumer(t, s, "svc", topic, "", func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if plugged.Load() {
			blocked.Add(1)
			<-release
		}
		return h(ctx, msgs...)
	}, rec)
	p := newProducer(t, s)
	before := bodies("seedcut-before", 120)
	for _, b := range before { // one at a time, so stable keeps up with retention
		send(t, p, topic, "", []string{b})
		rec.WaitBodies(t, 10*time.Second, b)
	}
	qs := s.Queues(topic)
	waitFor(t, 15*time.Second, func() string {
		for _, q := range qs {
			if off, _ := s.CommittedOffset("svc", q); off != s.MaxOffset(q) {
				return fmt.Sprintf("stable committed %d of %d on %v", off, s.MaxOffset(q), q)
			}
		}
		return ""
	})
	// What a lane that died after seeding the first queue leaves.
	off, _ := s.CommittedOffset("svc", qs[0])
	if err := s.SetCommittedOffset("blue_svc", qs[0], off); err != nil {
		t.Fatal(err)
	}
	if s.MinOffset(qs[1]) == 0 {
		t.Fatalf("retention kept offset 0 of %v", qs[1])
	}

	// Stable falls behind: its handler calls block, the rest wait.
	plugged.Store(true)
	backlog := bodies("seedcut-backlog", 30)
	send(t, p, topic, "", backlog)
	waitFor(t, 10*time.Second, func() string {
		if n := blocked.Load(); n < 20 {
			return fmt.Sprintf("%d stable handler calls blocked, want 20", n)
		}
		return ""
	})
	blue := bodies("seedcut-blue", 10)
	send(t, p, topic, "blue", blue)

	startConsumer(t, s, "svc", topic, "blue", rec.Handler("blue"), rec)
	waitOnline(t, stable, "blue")
	plugged.Store(false)
	close(release)

	lost := waitLost(t, rec, 15*time.Second, append(append(append([]string{}, before...), backlog...), blue...))
	for i, b := range lost {
		if i < 5 {
			t.Errorf("lost %s", b)
		}
	}
	t.Logf("lost %d; blue duplicates %d; stable %+v", len(lost), rec.Duplicates(blue...), stable.Stats())
}
