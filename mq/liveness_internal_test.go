package mq

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// heartbeat registers a consumer of group on topic at the broker, over a
// connection of its own, as a push consumer's heartbeat does; closing the
// connection drops it.
func heartbeat(t *testing.T, addr, clientID, group, topic string) *remoting.Conn {
	t.Helper()
	conn, err := remoting.Dial(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"clientID":%q,"producerDataSet":[],"consumerDataSet":[{"groupName":%q,`+
		`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",`+
		`"subscriptionDataSet":[{"topic":%q,"subString":"*","subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`,
		clientID, group, topic)
	resp, err := conn.Invoke(context.Background(), remoting.NewRequest(remoting.HeartBeat, nil, []byte(body)))
	if err != nil || resp.Code != remoting.Success {
		t.Fatalf("heartbeat: %v %v", resp, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func onlineNames(c *Consumer) []string {
	var out []string
	for _, t := range c.Online() {
		out = append(out, t.String())
	}
	return out
}

// TestLivenessHysteresis drives the refresh by hand against a broker the
// lanes heartbeat to directly: online at once, offline after two "no
// consumer" answers, unknown answers keep the state but only for the
// staleness bound, and a failed group listing stops trusting the view.
func TestLivenessHysteresis(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	addr := s.Brokers()[0].Addr
	c, err := NewConsumer("svc", WithNameServer(s.NameServer()), WithNode(tagctx.Tag{}),
		WithRefreshInterval(20*time.Millisecond), WithStaleness(time.Second), WithAdminTimeout(250*time.Millisecond),
		WithInstanceName(uniq("stable")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, subAll, nopHandler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.admin.Close() })
	ctx := context.Background()
	refresh := func() { c.refresh(ctx) }
	want := func(step string, lanes ...string) {
		t.Helper()
		if got := onlineNames(c); !slices.Equal(got, lanes) {
			t.Fatalf("%s: online %q, want %q", step, got, lanes)
		}
	}

	refresh()
	want("no lanes")
	blue := heartbeat(t, addr, "127.0.0.1@blue-1", "blue_svc", topic)
	heartbeat(t, addr, "127.0.0.1@green-1", "green_svc", topic)
	heartbeat(t, addr, "127.0.0.1@other-1", "blue_other", topic) // another base group's lane
	refresh()
	want("lanes heartbeat", "blue", "green")

	laneState := func() (online, pending bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		ls := c.lanes[tagctx.MustParse("blue")]
		return ls.online, ls.pending
	}
	blue.Close()
	waitUntil(t, func() bool { return len(s.OnlineConsumers("blue_svc")) == 0 })
	refresh()
	// Hysteresis: the state stays online. The view keeps skipping blue
	// only until its last "online" answer is a staleness bound old.
	if online, pending := laneState(); !online || pending {
		t.Errorf("one offline answer: blue online %v, takeover pending %v; want online, not pending", online, pending)
	}
	refresh()
	want("two offline answers", "green")
	if online, pending := laneState(); online || !pending {
		t.Errorf("two offline answers: blue online %v, takeover pending %v; want offline, pending", online, pending)
	}

	// Issue 12: after a gap longer than the staleness bound (a pause),
	// an "offline" answer inside the hysteresis must not make the old
	// "online" fresh again.
	blue = heartbeat(t, addr, "127.0.0.1@blue-2", "blue_svc", topic)
	refresh()
	want("blue back", "blue", "green")
	waitUntil(t, func() bool { return len(c.Online()) == 0 }) // no refresh: the beliefs expire
	blue.Close()
	waitUntil(t, func() bool { return len(s.OnlineConsumers("blue_svc")) == 0 })
	refresh()
	want("one offline answer after a gap", "green")
	if online, _ := laneState(); !online {
		t.Error("one offline answer after a gap: the state turned offline at once, want hysteresis")
	}
	refresh()
	want("two offline answers after a gap", "green")

	// A broker that does not answer 38 says nothing: green stays online
	// until the staleness bound, then stable stops skipping it.
	// (A refused answer first: an unanswered one takes the admin timeout
	// per probe, which on a loaded race run may outlast the bound.)
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{Code: rocketmqtest.SystemBusy})
	refresh()
	want("38 refused", "green")
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{NoReply: true})
	waitUntil(t, func() bool { refresh(); return len(c.Online()) == 0 })
	s.ClearFaults()
	refresh()
	want("38 answers again", "green")

	// Without the group list the view is not refreshed and goes stale.
	s.FailRequests(rocketmqtest.QueryTopicConsumeByWho, rocketmqtest.Fault{Code: rocketmqtest.SystemBusy})
	refresh()
	want("300 refused, view still fresh", "green")
	waitUntil(t, func() bool { refresh(); return c.Online() == nil })
	s.ClearFaults()
	refresh()
	want("300 answers again", "green")
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// TestConcurrentConsumeRefreshTakeover runs the hot path on many
// goroutines while the refresh and takeover loops publish views, track
// handled messages and hand over an offline lane's messages: for the race
// detector, without the push consumer (which races with itself).
func TestConcurrentConsumeRefreshTakeover(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	sendBatches(t, p, topic, tagctx.MustParse("blue"), "blue", 200)
	c, h := takeoverUnderLoad(t, s, topic, "svc", WithNode(tagctx.Tag{}), WithInstanceName(uniq("stable")))
	if !c.Leader() {
		t.Error("the only stable member is not the leader")
	}
	if n, _ := h.count("blue"); n != 200 {
		t.Errorf("handled %d of 200 blue messages, by the hot path or the takeover", n)
	}
	if st := c.Stats(); st.Handled == 0 || st.Redelivered+st.NotHandedOver != 200 {
		t.Errorf("stats %+v: want the hot path to handle blue once offline, and the takeover to hand over or leave out each message once", st)
	}
	t.Logf("stats %+v", c.Stats())
}

// takeoverUnderLoad starts the refresh and takeover loops of a handler
// group's consumer (group, built with opts, handling every message of topic
// in h) beside a lane blue whose member heartbeats over a connection of its
// own, calls its consume path from four goroutines, takes blue offline
// once the hot path skips, and returns, every goroutine stopped, after the
// first takeover.
func takeoverUnderLoad(t *testing.T, s *rocketmqtest.Server, topic, group string, opts ...Option) (*Consumer, *handled) {
	t.Helper()
	addr := s.Brokers()[0].Addr
	h := new(handled)
	c, err := NewConsumer("svc", append([]Option{WithNameServer(s.NameServer()),
		WithRefreshInterval(10 * time.Millisecond), WithTakeoverMargin(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, subAll, h.handler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.admin.Close() })
	// The group needs a member for a leader: this consumer's own client
	// ID, heartbeating over a connection of its own.
	heartbeat(t, addr, "127.0.0.1@"+c.InstanceName(), group, topic)
	blue := heartbeat(t, addr, "127.0.0.1@blue-1", "blue_svc", topic)
	c.refresh(context.Background())
	c.startLoops()

	stop := hammer(c.consumeFunc(c.subscriptionOf(topic)), s.Messages(topic))
	waitUntil(t, func() bool { return c.Stats().Skipped > 500 })
	blue.Close() // the lane goes offline while messages flow
	waitUntil(t, func() bool { return c.Stats().Takeovers > 0 })
	stop()
	c.stopLoops()
	return c, h
}

// hammer calls f from four goroutines over msgs, one at a time and now and
// then two in a batch, as the client's consume goroutines would, until the
// returned stop is called; stop returns once they have all returned.
func hammer(f func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), msgs []*primitive.MessageExt) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i = (i + 4) % len(msgs) {
				select {
				case <-done:
					return
				default:
				}
				f(context.Background(), msgs[i])
				if i%7 == 0 {
					f(context.Background(), msgs[i], msgs[(i+1)%len(msgs)])
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
