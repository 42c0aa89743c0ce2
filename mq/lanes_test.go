package mq_test

import (
	"context"
	"fmt"
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

// TestBatchGroupedByTag: a delivered batch of mixed tags reaches the
// handler split by tag, each call's context carrying its tag.
func TestBatchGroupedByTag(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "batch"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s)
	var want []string
	for i, tag := range strings.Split("a,,b,a,,c,b,,a,c,,b", ",") {
		b := fmt.Sprintf("m%02d-%s", i, tag)
		send(t, p, topic, tag, []string{b})
		want = append(want, b)
	}
	var mu sync.Mutex
	var calls [][]string
	rec := new(rocketmqtest.Recorder)
	h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		var call []string
		for _, m := range msgs {
			call = append(call, string(m.Body))
			if got, want := tagctx.From(ctx).String(), m.GetProperty("x-tag"); got != want {
				t.Errorf("%s: ctx tag %q in a call for tag %q", m.Body, got, want)
			}
		}
		mu.Lock()
		calls = append(calls, call)
		mu.Unlock()
		rec.Record(ctx, "stable", msgs...)
		return consumer.ConsumeSuccess, nil
	}
	startConsumer(t, s, "svc", topic, "", h, rec, mq.WithConsumerOptions(consumer.WithConsumeMessageBatchMaxSize(32)))
	rec.WaitBodies(t, 10*time.Second, want...)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) >= len(want) {
		t.Errorf("%d handler calls for %d messages: the batch was not delivered grouped: %q", len(calls), len(want), calls)
	}
	t.Logf("handler calls: %q", calls)
}

// TestLaneStartNoReplayNoGap: a lane consumer started while traffic flows
// gets none of the messages stable handled before it, and every message of
// its tag is handled.
func TestLaneStartNoReplayNoGap(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "start"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	p := newProducer(t, s)
	old := bodies("old-blue", 40)
	send(t, p, topic, "blue", old)
	rec.WaitBodies(t, 10*time.Second, old...)
	// The seed copies stable's committed offsets; wait until the client's
	// commit timer (first after 10 s) has written them.
	waitFor(t, 20*time.Second, func() string {
		for _, q := range s.Queues(topic) {
			if got, _ := s.CommittedOffset(stable.Group(), q); got != s.MaxOffset(q) {
				return fmt.Sprintf("stable committed %d of %d on %v", got, s.MaxOffset(q), q)
			}
		}
		return ""
	})

	st := startStream(t, p, topic, "stream", 2*time.Millisecond, "blue", "")
	st.waitSent(t, 50)
	startConsumer(t, s, "svc", topic, "blue", nil, rec)
	waitOnline(t, stable, "blue")
	mark := st.count()
	st.waitSent(t, 50)
	blue := st.bodies("blue")
	rec.WaitBodies(t, 20*time.Second, append(blue, st.bodies("")...)...)

	got := rec.ByBody()
	for _, b := range old {
		if len(got[b]) != 1 || got[b][0] != "stable" {
			t.Errorf("old message %s handled by %q: want once by stable, no replay", b, got[b])
		}
	}
	after := 0
	for _, b := range blue {
		var i int
		fmt.Sscanf(b[strings.LastIndexByte(b, '-')+1:], "%d", &i)
		if i < mark+2 { // sent before stable saw the lane: either may handle it
			continue
		}
		after++
		if len(got[b]) != 1 || got[b][0] != "blue" {
			t.Errorf("%s sent with the lane online handled by %q, want once by the lane", b, got[b])
		}
	}
	t.Logf("%d blue messages in the stream, %d after the lane was seen online; duplicates %d", len(blue), after, rec.Duplicates(blue...))
}

// laneStopScenario runs stable(s) and a blue lane under a stream, stops
// the lane mid-stream with stop, and checks that every blue message was
// handled by the lane or by stable.
func laneStopScenario(t *testing.T, stables int, stop func(*rocketmqtest.Server, *mq.Consumer, *gate)) []*mq.Consumer {
	s := rocketmqtest.RunT(t)
	const topic = "stop"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	var st []*mq.Consumer
	for i := range stables {
		st = append(st, startConsumer(t, s, "svc", topic, "", rec.Handler(fmt.Sprintf("stable-%d", i)), rec))
	}
	g := newGate(t)
	lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	for _, c := range st {
		waitOnline(t, c, "blue")
	}
	p := newProducer(t, s)
	stream := startStream(t, p, topic, "stream", time.Millisecond, "blue", "", "blue", "green")
	stream.waitSent(t, 200)
	stop(s, lane, g)
	stream.waitSent(t, 200)
	blue := stream.bodies("blue")
	all := append(append(append([]string{}, blue...), stream.bodies("")...), stream.bodies("green")...)
	rec.WaitBodies(t, 30*time.Second, all...)
	// Only blue reached the lane; only stable's own traffic the stables.
	// What a takeover handed over is blue, late, to a stable instance.
	for _, d := range rec.Deliveries() {
		if d.Consumer == "blue" && !strings.Contains(d.Body(), "-blue-") {
			t.Errorf("misroute: lane blue handled %s", d.Body())
		}
		if mq.HandedOver(d.Ctx) && (tagctx.From(d.Ctx).String() != "blue" || !strings.HasPrefix(d.Consumer, "stable")) {
			t.Errorf("handed over %s to %s with tag %q, want blue to a stable instance", d.Body(), d.Consumer, tagctx.From(d.Ctx).String())
		}
	}
	var redelivered uint64
	for _, c := range st {
		redelivered += c.Stats().Redelivered
	}
	late := 0
	for _, d := range rec.Deliveries() {
		if mq.HandedOver(d.Ctx) {
			late++
		}
	}
	t.Logf("%d blue messages, handed over %d (handlers saw HandedOver on %d), duplicates %d (of all %d: %d)", len(blue), redelivered,
		late, rec.Duplicates(blue...), len(all), rec.Duplicates(all...))
	return st
}

func TestLaneGracefulStop(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	laneStopScenario(t, 1, func(_ *rocketmqtest.Server, c *mq.Consumer, _ *gate) { c.Shutdown() })
}

func TestLaneCrash(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	laneStopScenario(t, 1, func(s *rocketmqtest.Server, c *mq.Consumer, g *gate) { crash(t, s, c, g) })
}

// divergeAndCrash starts a blue lane of base "svc" on topic, waits until
// every stable instance in st sees it, freezes it, sends n blue messages
// (which the stables skip and the lane never handles) and crashes it. It
// returns the bodies sent.
func divergeAndCrash(t *testing.T, s *rocketmqtest.Server, topic string, rec *rocketmqtest.Recorder, st []*mq.Consumer, n int) []string {
	t.Helper()
	g := newGate(t)
	lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	for _, c := range st {
		waitOnline(t, c, "blue")
	}
	g.dead.Store(true)
	p := newProducer(t, s)
	blue := bodies("diverged-blue", n)
	send(t, p, topic, "blue", blue)
	crash(t, s, lane, g)
	return blue
}

// TestTwoStablesRedeliverOnce: with two stable instances, only the leader
// hands the crashed lane's backlog over, so each message is redelivered
// once.
func TestTwoStablesRedeliverOnce(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "two"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	st := []*mq.Consumer{
		startConsumer(t, s, "svc", topic, "", rec.Handler("stable-0"), rec),
		startConsumer(t, s, "svc", topic, "", rec.Handler("stable-1"), rec),
	}
	blue := divergeAndCrash(t, s, topic, rec, st, 200)
	rec.WaitBodies(t, 20*time.Second, blue...)
	got := rec.ByBody()
	for _, b := range blue {
		if len(got[b]) != 1 {
			t.Errorf("%s handled by %q, want once", b, got[b])
		}
	}
	var handedOver []uint64
	leaders := 0
	for _, c := range st {
		handedOver = append(handedOver, c.Stats().Redelivered)
		if c.Stats().Redelivered > 0 {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("instances that handed messages over: %d (%v), want 1", leaders, handedOver)
	}
	t.Logf("handed over per stable instance %v; duplicates %d", handedOver, rec.Duplicates(blue...))
}

// TestLeaderCrashMidTakeover: the stable leader crashes halfway through
// handing a crashed lane's backlog over; the other stable instance becomes
// leader and hands over the rest from the lane's offsets. Nothing is lost;
// what the dead leader handed over without moving the lane's offsets comes
// again.
func TestLeaderCrashMidTakeover(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "leader"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	// The first instance to hand over a second batch freezes there, as
	// a process does when it dies: its handler never returns on its own.
	frozen := make(chan int, 1)
	var frozenBy atomic.Int32
	frozenBy.Store(-1)
	var st []*mq.Consumer
	for i := range 2 {
		name := fmt.Sprintf("stable-%d", i)
		var calls atomic.Int32
		h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			if mq.HandedOver(ctx) && calls.Add(1) > 1 &&
				(frozenBy.CompareAndSwap(-1, int32(i)) || frozenBy.Load() == int32(i)) {
				select {
				case frozen <- i:
				default:
				}
				<-ctx.Done() // the takeover's context ends with Shutdown
				return consumer.ConsumeRetryLater, nil
			}
			rec.Record(ctx, name, msgs...)
			return consumer.ConsumeSuccess, nil
		}
		st = append(st, startConsumer(t, s, "svc", topic, "", h, rec))
	}
	blue := divergeAndCrash(t, s, topic, rec, st, 400)

	var leader int
	select {
	case leader = <-frozen:
	case <-time.After(30 * time.Second):
		t.Fatal("no stable instance handed over a second batch")
	}
	crash(t, s, st[leader], nil)
	survivor := st[1-leader]

	rec.WaitBodies(t, 30*time.Second, blue...)
	if n := survivor.Stats().Redelivered; n == 0 {
		t.Errorf("the surviving instance handed nothing over; the dead leader cannot have done it all")
	}
	t.Logf("dead leader handed over %d before freezing, survivor %d; duplicates %d",
		st[leader].Stats().Redelivered, survivor.Stats().Redelivered, rec.Duplicates(blue...))
}

// TestTwoBrokersRetryDrained: on two brokers, the messages a lane asked to
// retry wait in its retry topic; when it goes offline, stable gets them.
func TestTwoBrokersRetryDrained(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2), rocketmqtest.WithDelayLevels(100*time.Millisecond))
	const topic = "retry"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	retried := map[string]bool{}
	var mu sync.Mutex
	laneH := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if strings.HasSuffix(string(m.Body), "0") {
				mu.Lock()
				retried[string(m.Body)] = true
				mu.Unlock()
				return consumer.ConsumeRetryLater, nil
			}
		}
		rec.Record(ctx, "blue", msgs...)
		return consumer.ConsumeSuccess, nil
	}
	lane := startConsumer(t, s, "svc", topic, "blue", laneH, rec)
	waitOnline(t, stable, "blue")
	p := newProducer(t, s)
	blue := bodies("blue", 80)
	send(t, p, topic, "blue", blue)
	retryTopic := rocketmqtest.RetryTopic(lane.Group())
	waitFor(t, 20*time.Second, func() string {
		if n := len(s.Messages(retryTopic)); n < 8 {
			return fmt.Sprintf("%d of 8 messages in %s", n, retryTopic)
		}
		return ""
	})
	brokers := map[string]bool{}
	for _, q := range s.Queues(retryTopic) {
		if len(s.QueueMessages(q)) > 0 {
			brokers[q.BrokerName] = true
		}
	}
	lane.Shutdown()
	rec.WaitBodies(t, 20*time.Second, blue...)
	got := rec.ByBody()
	stableGot := 0
	for b := range retried {
		if len(got[b]) == 0 {
			t.Errorf("retried %s never handled", b)
		}
		for _, who := range got[b] {
			if who == "stable" {
				stableGot++
			}
		}
	}
	if stableGot == 0 {
		t.Error("stable handled none of the lane's retries: the retry topic was not drained")
	}
	t.Logf("retry topic on %d brokers; %d retried, %d handed to stable; redelivered %d; duplicates %d",
		len(brokers), len(retried), stableGot, stable.Stats().Redelivered, rec.Duplicates(blue...))
}

// waitCommitted waits until group's committed offset reaches the max
// offset on every queue of topic.
func waitCommitted(t *testing.T, s *rocketmqtest.Server, group, topic string) {
	t.Helper()
	waitFor(t, 20*time.Second, func() string {
		for _, q := range s.Queues(topic) {
			if got, _ := s.CommittedOffset(group, q); got != s.MaxOffset(q) {
				return fmt.Sprintf("%s committed %d of %d on %v", group, got, s.MaxOffset(q), q)
			}
		}
		return ""
	})
}

// TestLaneRestartNoReplay: while a lane is offline, stable handles its tag
// and the leader keeps the lane's offsets up with stable's, so the
// restarted lane does not replay what stable handled meanwhile.
func TestLaneRestartNoReplay(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "restart"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	lane := startConsumer(t, s, "svc", topic, "blue", rec.Handler("blue-1"), rec)
	waitOnline(t, stable, "blue")
	p := newProducer(t, s)
	first := bodies("first", 20)
	send(t, p, topic, "blue", first)
	rec.WaitBodies(t, 10*time.Second, first...)
	lane.Shutdown()
	waitOnline(t, stable)

	meanwhile := bodies("meanwhile", 20)
	send(t, p, topic, "blue", meanwhile)
	rec.WaitBodies(t, 10*time.Second, meanwhile...)
	waitCommitted(t, s, stable.Group(), topic)
	waitCommitted(t, s, lane.Group(), topic) // the leader moved the lane's offsets

	startConsumer(t, s, "svc", topic, "blue", rec.Handler("blue-2"), rec)
	waitOnline(t, stable, "blue")
	after := bodies("after", 20)
	send(t, p, topic, "blue", after)
	rec.WaitBodies(t, 10*time.Second, after...)
	got := rec.ByBody()
	for _, b := range meanwhile {
		if len(got[b]) != 1 || got[b][0] != "stable" {
			t.Errorf("%s handled by %q, want once by stable: the restarted lane replayed it", b, got[b])
		}
	}
	for _, b := range after {
		if len(got[b]) != 1 || got[b][0] != "blue-2" {
			t.Errorf("%s handled by %q, want once by the restarted lane", b, got[b])
		}
	}
}

// TestStableRestartTakesOverOfflineLane: a stable instance that starts
// while a lane is already offline with messages it never consumed takes
// them over.
func TestStableRestartTakesOverOfflineLane(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "stable-restart"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	old := startConsumer(t, s, "svc", topic, "", rec.Handler("stable-old"), rec)
	g := newGate(t)
	lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	waitOnline(t, old, "blue")
	g.dead.Store(true)
	p := newProducer(t, s)
	blue := bodies("skipped", 50)
	send(t, p, topic, "blue", blue)
	// The old stable skipped them all; it goes first, then the lane dies.
	waitFor(t, 10*time.Second, func() string {
		if n := old.Stats().Skipped; n < uint64(len(blue)) {
			return fmt.Sprintf("old stable skipped %d of %d", n, len(blue))
		}
		return ""
	})
	old.Shutdown()
	crash(t, s, lane, g)

	fresh := startConsumer(t, s, "svc", topic, "", rec.Handler("stable-new"), rec)
	rec.WaitBodies(t, 20*time.Second, blue...)
	// The takeover hands each skipped message over once. The new stable
	// instance may also pull one the old one skipped but had not committed
	// yet and, the lane being offline, handle it: at-least-once allows that
	// duplicate, and only that one.
	st := fresh.Stats()
	extra := 0
	for b, who := range rec.ByBody() {
		if !strings.HasPrefix(b, "skipped") {
			continue
		}
		for _, w := range who {
			if w != "stable-new" {
				t.Errorf("%s handled by %q, want only the new stable instance", b, who)
			}
		}
		if len(who) > 2 {
			t.Errorf("%s handled %d times, want once by the takeover and at most once more", b, len(who))
		}
		extra += len(who) - 1
	}
	if uint64(extra) > st.Handled {
		t.Errorf("%d duplicates, but the new stable handled only %d messages itself: the takeover handed some over twice", extra, st.Handled)
	}
	t.Logf("new stable: %+v, duplicates %d", st, extra)
}
