package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}

// TestDemo runs the demo's scenario on the embedded broker: every request
// kind through the gateway and the gRPC chain, messages while the lane
// consumer is online and after it goes offline mid-run.
func TestDemo(t *testing.T) {
	rocketmqtest.SkipIfClientRaces(t) // the README's test command runs it without -race too
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sum, err := run(ctx, config{Requests: 2 * len(scenarios), Timeout: time.Minute, Out: &out})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if sum.Misroutes != 0 || sum.Lost != 0 || !sum.ok() {
		t.Fatalf("misroutes=%d lost=%d\n%s", sum.Misroutes, sum.Lost, out.String())
	}
	if want := 4 * len(scenarios); sum.Requests != want || sum.Messages != want {
		t.Errorf("requests=%d messages=%d, want %d each", sum.Requests, sum.Messages, want)
	}
	// Each scenario kind was proven on the way: lane hops matched, other
	// lanes' and unknown tags fell back, invalid tags were reported.
	for _, want := range []string{
		"orders@feature-x   traffic=feature-x  node=feature-x  matched",
		"billing@feature-y  traffic=feature-y  node=feature-y  matched",
		"notifier@feature-x node=feature-x  matched",
		"stock@stable       traffic=feature-z  node=-          fallback",
		// The HTTP hop routed through the registry, and the crashed lane
		// instance's traffic falling back once its lease expired.
		"pricing   http         pricing@feature-x  traffic=feature-x  node=feature-x  matched",
		"etcd dropped it",
		"billing   grpc-stream  billing@stable     traffic=feature-y  node=-          fallback",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
	if sum.Rejected != 4 {
		t.Errorf("rejected tags = %d, want 4 (one per Bad_Tag! request)", sum.Rejected)
	}
	if sum.Fallbacks == 0 {
		t.Error("no fallback hop reported")
	}
	t.Logf("redelivered=%d duplicates=%d", sum.Redelivered, sum.Duplicates)
}

// TestDemoNameServerTwice runs the demo's -namesrv path twice in a row on
// one broker that, like a fresh real RocketMQ, creates no topic for
// consumers: the demo creates its topic, and the second run counts none of
// the first run's messages (which the broker still holds and the lane
// group's old offsets can hand over again) as its own.
func TestDemoNameServerTwice(t *testing.T) {
	rocketmqtest.SkipIfClientRaces(t)
	srv := rocketmqtest.RunT(t, rocketmqtest.WithAutoCreateTopics(false))
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var out bytes.Buffer
		sum, err := run(ctx, config{Requests: len(scenarios), NameServer: srv.NameServer(), Timeout: time.Minute, Out: &out})
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		if !sum.ok() || sum.Duplicates != 0 {
			t.Fatalf("run %d: misroutes=%d lost=%d duplicates=%d\n%s", i, sum.Misroutes, sum.Lost, sum.Duplicates, out.String())
		}
		if want := 2 * len(scenarios); sum.Messages != want || sum.Deliveries != want {
			t.Errorf("run %d: messages=%d deliveries=%d, want %d each", i, sum.Messages, sum.Deliveries, want)
		}
		t.Logf("run %d: messages=%d hops=%d redelivered=%d duplicates=%d; earlier runs' messages handled and not counted: %d",
			i, sum.Messages, sum.Hops, sum.Redelivered, sum.Duplicates, sum.Others)
		if i == 1 && sum.Others == 0 {
			t.Error("run 1 handled none of run 0's messages: the replay below did not happen, the test shows nothing")
		}
		// A real broker sometimes loses the commit a consumer writes at
		// Shutdown; the next run then replays. Make that happen, once the
		// broker dropped the stable group's connections: a commit still
		// in flight would overwrite the reset.
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.OnlineConsumers("notifier")) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: the stable group is still online after its Shutdown: %q", i, srv.OnlineConsumers("notifier"))
			}
			time.Sleep(10 * time.Millisecond) // polling with a deadline
		}
		for _, q := range srv.Queues(topic) {
			if err := srv.SetCommittedOffset("notifier", q, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := len(srv.Messages(topic)); got != 4*len(scenarios) {
		t.Errorf("the broker holds %d messages, want both runs' %d", got, 4*len(scenarios))
	}
}
