package mq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
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
