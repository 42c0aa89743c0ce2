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
