package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	goleak.VerifyTestMain(m,
		// Goroutines rocketmq-client-go v2.1.2 leaves behind after Shutdown
		// (timers that sleep before checking for shutdown, a pull waiting
		// for its request timeout); see mq/rocketmqtest's TestMain.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*ResponseFuture).waitResponse"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceImmediately"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceIfNotPaused"),
		goleak.IgnoreAnyFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	)
}

// TestDemo runs the demo's scenario on the embedded broker: every request
// kind through the gateway and the gRPC chain, messages while the lane
// consumer is online and after it goes offline mid-run.
func TestDemo(t *testing.T) {
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
