package mq

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestPassThroughGlobalPropagator: with the default (global) propagator,
// the consumer's pass-through skips extraction while no propagator is set
// (the unset global one extracts nothing) and extracts once one is set
// later with otel.SetTextMapPropagator, as every instrumentation follows
// the global. It sets the process-wide propagator, so it runs itself in a
// child process.
func TestPassThroughGlobalPropagator(t *testing.T) {
	if os.Getenv("MQ_TEST_GLOBAL_PROPAGATOR") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPassThroughGlobalPropagator$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "MQ_TEST_GLOBAL_PROPAGATOR=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child process: %v\n%s", err, out)
		}
		return
	}
	if unsetGlobalProp == nil {
		t.Fatal("the global propagator was set before this package's init: the test needs it unset")
	}
	var tr tracing
	tr.resolve()
	m := &primitive.MessageExt{}
	m.WithProperty("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if sc := trace.SpanContextFromContext(tr.passThrough(context.Background(), m)); sc.IsValid() {
		t.Fatalf("no propagator set: extracted %v", sc)
	}
	otel.SetTextMapPropagator(propagation.TraceContext{})
	sc := trace.SpanContextFromContext(tr.passThrough(context.Background(), m))
	if got, want := sc.TraceID().String(), "4bf92f3577b34da6a3ce929d0e0e4736"; got != want || !sc.IsRemote() {
		t.Fatalf("after SetTextMapPropagator: trace %q (remote %v), want %q from the message", got, sc.IsRemote(), want)
	}
}
