package mq

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

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
	c, err := NewConsumer("svc", WithNameServer(s.NameServer()), WithNodeTag(tagctx.Tag{}),
		WithRefreshInterval(20*time.Millisecond), WithStaleness(200*time.Millisecond), WithAdminTimeout(50*time.Millisecond),
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

	blue.Close()
	waitUntil(t, func() bool { return len(s.OnlineConsumers("blue_svc")) == 0 })
	refresh()
	want("one offline answer", "blue", "green")
	refresh()
	want("two offline answers", "green")
	c.mu.Lock()
	pending := c.lanes[tagctx.MustParse("blue")].pending
	c.mu.Unlock()
	if !pending {
		t.Error("blue offline: want its takeover pending")
	}

	// A broker that does not answer 38 says nothing: green stays online
	// until the staleness bound, then stable stops skipping it.
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{NoReply: true})
	refresh()
	want("38 unanswered", "green")
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
