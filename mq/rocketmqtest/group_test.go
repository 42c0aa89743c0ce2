package rocketmqtest_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// waitQuiet waits until the server has seen no request with any of the
// codes for the quiet period.
func waitQuiet(t *testing.T, s *rocketmqtest.Server, quiet time.Duration, codes ...rocketmqtest.RequestCode) {
	t.Helper()
	count := func() int64 {
		var n int64
		for _, c := range codes {
			n += s.Requests(c)
		}
		return n
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, since := count(), time.Now()
	for time.Since(since) < quiet {
		select {
		case <-deadline.C:
			t.Fatalf("requests %v never went quiet", codes)
		case <-tick.C:
		}
		if n := count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// probeUntilSteady sends one probe per queue, round after round, until a
// round is received exactly once per probe and by the member that average
// allocation over the sorted client IDs gives the queue. That is the
// steady state: rebalances triggered by joins (NOTIFY_CONSUMER_IDS_CHANGED)
// have settled.
func probeUntilSteady(t *testing.T, s *rocketmqtest.Server, p rocketmq.Producer, topic, group string, rec *rocketmqtest.Recorder, members map[string]string) {
	t.Helper()
	queues := s.Queues(topic)
	ids := s.OnlineConsumers(group) // sorted, as the client sorts them
	owner := func(q int) string {
		// AllocateByAveragely for len(queues) queues over len(ids) members.
		n, m := len(queues), len(ids)
		for i := range ids {
			mod := n % m
			avg := n / m
			if i < mod {
				avg++
			}
			start := i * avg
			if i >= mod {
				start = i*avg + mod
			}
			if q >= start && q < start+avg {
				return members[ids[i]]
			}
		}
		return ""
	}
	for round := range 100 {
		// A member's rebalance may run late, on a consumer list fetched
		// before the last join, and own a queue briefly; let every queued
		// rebalance (GET_CONSUMER_LIST, then QUERY_CONSUMER_OFFSET for the
		// queues it takes) finish before probing.
		waitQuiet(t, s, 150*time.Millisecond, rocketmqtest.GetConsumerListByGroup, rocketmqtest.QueryConsumerOffset)
		want := map[string]string{}
		for _, q := range queues {
			body := fmt.Sprintf("probe-%d-%d", round, q.QueueId)
			msg := primitive.NewMessage(topic, []byte(body))
			msg.Queue = &q
			if _, err := p.SendSync(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			want[body] = owner(q.QueueId)
		}
		bs := make([]string, 0, len(want))
		for b := range want {
			bs = append(bs, b)
		}
		rec.WaitBodies(t, 10*time.Second, bs...)
		got := rec.ByBody()
		clean := true
		for b, w := range want {
			if !slices.Equal(got[b], []string{w}) {
				clean = false
			}
		}
		if clean {
			t.Logf("steady after %d probe rounds", round+1)
			return
		}
	}
	t.Fatal("allocation never settled")
}

func TestGroupSharesQueuesAndSurvivesALeave(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic, group = "shared", "shared-group"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	rec := new(rocketmqtest.Recorder)
	members := map[string]string{} // client ID -> consumer name
	var cs []*pushConsumer
	for range 3 {
		c := newPushConsumer(t, s, group, topic, rec, nil)
		cs = append(cs, c)
		members[clientID(t, s, group, c.name)] = c.name
	}
	if got := len(s.OnlineConsumers(group)); got != 3 {
		t.Fatalf("online consumers = %d, want 3", got)
	}
	probeUntilSteady(t, s, p, topic, group, rec, members)

	// Steady state: each message goes to exactly one member, shares 2/1/1.
	steady := bodies("steady", 200)
	send := func(bs []string) {
		for i, b := range bs {
			msg := primitive.NewMessage(topic, []byte(b))
			msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: i % 4}
			if _, err := p.SendSync(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(steady)
	rec.WaitBodies(t, 10*time.Second, steady...)
	got := rec.ByBody()
	share := map[string]int{}
	for _, b := range steady {
		if len(got[b]) != 1 {
			t.Errorf("%s consumed by %v in steady state, want exactly one member", b, got[b])
		}
		share[got[b][0]]++
	}
	var shares []int
	for _, n := range share {
		shares = append(shares, n)
	}
	sort.Ints(shares)
	if !slices.Equal(shares, []int{50, 50, 100}) {
		t.Errorf("shares %v, want [50 50 100] (average allocation of 4 queues over 3 members)", shares)
	}

	// One member leaves mid-stream: the others take its queues (the broker
	// notifies them when its connection closes) and nothing is lost.
	mid := bodies("mid", 100)
	send(mid[:50])
	if err := cs[1].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if n := len(s.OnlineConsumers(group)); n != 2 {
			return fmt.Sprintf("%d members online after a shutdown, want 2", n)
		}
		return ""
	}, nil)
	send(mid[50:])
	rec.WaitBodies(t, 10*time.Second, mid...)
	for _, b := range mid[50:] {
		for _, who := range rec.ByBody()[b] {
			if who == cs[1].name {
				t.Errorf("%s consumed by %s after it shut down", b, who)
			}
		}
	}
}

func TestRestartedConsumerResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic, group = "resume", "resume-group"
	p := newProducer(t, s)
	first := bodies("first", 50)
	sendAll(t, p, topic, first)

	rec1 := new(rocketmqtest.Recorder)
	c1 := newPushConsumer(t, s, group, topic, rec1, nil)
	rec1.WaitBodies(t, 10*time.Second, first...)
	// Shutdown commits the offsets (one-way UPDATE_CONSUMER_OFFSET) and
	// then closes the connection; the broker handles a connection's
	// frames in order, so once the member is gone the commits are in.
	if err := c1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() string {
		if ids := s.OnlineConsumers(group); len(ids) != 0 {
			return fmt.Sprintf("still online after Shutdown: %v", ids)
		}
		return ""
	}, nil)
	committed := map[int]int64{}
	var sum int64
	for _, q := range s.Queues(topic) {
		off, ok := s.CommittedOffset(group, q)
		if !ok {
			t.Fatalf("no offset committed on %v", q)
		}
		committed[q.QueueId] = off
		sum += off
	}
	// The client advances a queue's offset just after the handler returns,
	// so Shutdown right after the last handler may commit one short:
	// at-least-once, as with a real broker.
	if sum < 45 || sum > 50 {
		t.Errorf("committed offsets sum to %d, want (nearly) 50", sum)
	}

	second := bodies("second", 30)
	sendAll(t, p, topic, second)
	// The restarted member must resume exactly at the committed offsets:
	// everything from there on, nothing before.
	var want []string
	below := map[string]bool{}
	for _, q := range s.Queues(topic) {
		for _, m := range s.QueueMessages(q) {
			if m.QueueOffset >= committed[q.QueueId] {
				want = append(want, string(m.Body))
			} else {
				below[string(m.Body)] = true
			}
		}
	}
	rec2 := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, group, topic, rec2, nil)
	rec2.WaitBodies(t, 10*time.Second, want...)
	for b := range rec2.ByBody() {
		if below[b] {
			t.Errorf("restarted consumer saw %q, below its committed offset", b)
		}
	}
	if len(want) != 30+int(50-sum) {
		t.Errorf("%d messages at or past the committed offsets, want %d", len(want), 30+50-sum)
	}
}

func TestDropClientRebalancesItsQueues(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic, group = "crash", "crash-group"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	survivor, victim := new(rocketmqtest.Recorder), new(rocketmqtest.Recorder)
	c1 := newPushConsumer(t, s, group, topic, survivor, nil)
	c2 := newPushConsumer(t, s, group, topic, victim, nil)
	clientID(t, s, group, c1.name)
	id2 := clientID(t, s, group, c2.name)

	if n := s.DropClient(id2); n == 0 {
		t.Fatalf("DropClient(%q) closed no connection", id2)
	}
	if got := s.OnlineConsumers(group); len(got) != 1 || got[0] == id2 {
		t.Fatalf("online after the crash: %v, want only the survivor", got)
	}
	// Until the survivor has rebalanced, a probe in a former queue of the
	// victim is not consumed by it; keep probing every queue until the
	// survivor receives from all four.
	waitFor(t, 10*time.Second, func() string {
		seen := map[int]bool{}
		for _, d := range survivor.Deliveries() {
			seen[d.Msg.Queue.QueueId] = true
		}
		if len(seen) == 4 {
			return ""
		}
		for q := range 4 {
			if !seen[q] {
				msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("probe-%d", q)))
				msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: q}
				if _, err := p.SendSync(context.Background(), msg); err != nil {
					return err.Error()
				}
			}
		}
		return fmt.Sprintf("survivor consumed from queues %v only", seen)
	}, survivor.Changed)
}

func TestCaughtUpConsumerDoesNotSpin(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic, group = "idle", "idle-group"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(rocketmqtest.RetryTopic(group), 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s)
	want := bodies("idle", 10)
	sendAll(t, p, topic, want)
	rec := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, group, topic, rec, nil)
	rec.WaitBodies(t, 10*time.Second, want...)
	// Caught up: one pull held per queue (4 + the retry queue), and no
	// new pulls while nothing arrives.
	waitFor(t, 5*time.Second, func() string {
		if n := s.HeldPulls(); n != 5 {
			return fmt.Sprintf("%d pulls held, want 5", n)
		}
		return ""
	}, nil)
	before := s.Requests(rocketmqtest.PullMessage)
	window := time.NewTimer(300 * time.Millisecond) // a measurement, not a wait
	defer window.Stop()
	<-window.C
	if after := s.Requests(rocketmqtest.PullMessage); after != before {
		t.Errorf("%d pulls in 300 ms from a caught-up consumer, want 0", after-before)
	}
	// A new message wakes its held pull at once.
	sendAll(t, p, topic, []string{"wake"})
	rec.WaitBodies(t, 5*time.Second, []string{"wake"}...)
}

func TestOrderlyConsumerLocksAndKeepsQueueOrder(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic, group = "orderly", "orderly-group"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	want := bodies("ord", 40)
	for i, b := range want {
		msg := primitive.NewMessage(topic, []byte(b))
		msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: i % 2}
		if _, err := p.SendSync(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	rec := new(rocketmqtest.Recorder)
	// This takes about 3 s, all of it in the client: v2.1.2 locks a queue
	// before it creates the queue's process queue, so the first pull finds
	// it unlocked and backs off for _PullDelayTimeWhenError (3 s); its
	// lockAll 1 s after start locks it for the second try.
	newPushConsumer(t, s, group, topic, rec, nil, consumer.WithConsumerOrder(true))
	rec.WaitBodies(t, 10*time.Second, want...)
	last := map[int]int64{0: -1, 1: -1}
	for _, d := range rec.Deliveries() {
		q := d.Msg.Queue.QueueId
		if d.Msg.QueueOffset <= last[q] {
			t.Errorf("queue %d: offset %d after %d", q, d.Msg.QueueOffset, last[q])
		}
		last[q] = d.Msg.QueueOffset
	}
	if s.Requests(rocketmqtest.LockBatchMQ) == 0 {
		t.Error("an orderly consumer never locked its queues")
	}
}
