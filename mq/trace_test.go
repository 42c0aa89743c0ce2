package mq_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

func newTracer(t testing.TB) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// spanAttrs flattens a span's attributes for comparison.
func spanAttrs(s tracetest.SpanStub) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// waitSpan waits until the exporter holds an ended span named name.
func waitSpan(t testing.TB, exp *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	waitFor(t, 10*time.Second, func() string {
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				found = s
				return ""
			}
		}
		return fmt.Sprintf("no span %q among %d exported", name, len(exp.GetSpans()))
	})
	return found
}

// gateway is the gRPC service behind the HTTP gateway: each call publishes
// one order event with the call's context.
type gateway struct {
	testpb.UnimplementedTestServiceServer
	p     rocketmq.Producer
	topic string
}

func (g gateway) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if _, err := g.p.SendSync(ctx, primitive.NewMessage(g.topic, req.GetPayload().GetBody())); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Username: tagctx.From(ctx).String()}, nil
}

// TestTraceHTTPToGRPCToRocketMQ follows one tagged request from an HTTP
// gateway (otelhttp + httpmw) through a gRPC service (otelgrpc + rpc) that
// publishes with the mq producer to the feature-x lane consumer on the
// embedded broker: one trace id end to end, and the consumer span carries
// the messaging attributes and the route proof.
func TestTraceHTTPToGRPCToRocketMQ(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	tp, exp := newTracer(t)
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	s := rocketmqtest.RunT(t)
	const topic = "orders-traced"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	traceOpts := []mq.Option{mq.WithTracerProvider(tp), mq.WithPropagators(prop)}
	got := make(chan string, 4)
	rec := new(rocketmqtest.Recorder)
	handler := func(name string) mq.Handler {
		return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			rec.Record(ctx, name, msgs...)
			for _, m := range msgs {
				got <- name + " " + string(m.Body) + " " + trace.SpanContextFromContext(ctx).TraceID().String()
			}
			return consumer.ConsumeSuccess, nil
		}
	}
	stable := startConsumer(t, s, "billing", topic, "", handler("stable"), rec, traceOpts...)
	startConsumer(t, s, "billing", topic, "feature-x", handler("feature-x"), rec, traceOpts...)
	waitOnline(t, stable, "feature-x")

	// The gRPC service: a stable instance that publishes.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(rpc.ServerOptions(rpc.WithNode(tagctx.Tag{})),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))...)
	testpb.RegisterTestServiceServer(srv, gateway{p: newProducer(t, s, traceOpts...), topic: topic})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), append(rpc.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	orders := testpb.NewTestServiceClient(cc)

	// The HTTP gateway, otelhttp outside httpmw as documented.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		resp, err := orders.UnaryCall(r.Context(), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(r.PathValue("id"))}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, resp.GetUsername())
	})
	web := httptest.NewServer(otelhttp.NewHandler(httpmw.Handler(mux, httpmw.WithNode(tagctx.Tag{})), "gateway",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop)))
	t.Cleanup(web.Close)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	for _, tc := range []struct{ id, tag, want string }{{"o1", "feature-x", "feature-x"}, {"o2", "", "stable"}} {
		req, err := http.NewRequest(http.MethodPost, web.URL+"/orders/"+tc.id, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		if tc.tag != "" {
			req.Header.Set("X-Tag", tc.tag)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != tc.tag {
			t.Fatalf("%s: status %d, body %q", tc.id, resp.StatusCode, body)
		}
		var consumed string
		select {
		case consumed = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not consumed", tc.id)
		}
		name, rest, _ := strings.Cut(consumed, " ")
		if name != tc.want || !strings.HasPrefix(rest, tc.id+" ") {
			t.Fatalf("%s consumed as %q, want by %s", tc.id, consumed, tc.want)
		}
	}

	// The tagged request's trace: every span of it, one trace id.
	process := waitSpan(t, exp, "process "+topic)
	var trace1 []tracetest.SpanStub
	waitFor(t, 5*time.Second, func() string {
		trace1 = trace1[:0]
		for _, sp := range exp.GetSpans() {
			if sp.SpanContext.TraceID() == process.SpanContext.TraceID() {
				trace1 = append(trace1, sp)
			}
		}
		if len(trace1) < 5 {
			return fmt.Sprintf("%d spans in the trace of the first message", len(trace1))
		}
		return ""
	})
	byName := map[string]tracetest.SpanStub{}
	var kinds []string
	for _, sp := range trace1 {
		byName[sp.Name+" "+sp.SpanKind.String()] = sp
		kinds = append(kinds, sp.Name+" "+sp.SpanKind.String())
	}
	for _, want := range []string{
		"POST /orders/{id} server",
		"grpc.testing.TestService/UnaryCall client",
		"grpc.testing.TestService/UnaryCall server",
		"send " + topic + " producer",
		"process " + topic + " consumer",
	} {
		if _, ok := byName[want]; !ok {
			t.Errorf("trace %v has no span %q; it has %q", process.SpanContext.TraceID(), want, kinds)
		}
	}
	send := byName["send "+topic+" producer"]
	if p := process.Parent; p.SpanID() != send.SpanContext.SpanID() {
		t.Errorf("process span's parent %v, want the send span %v", p.SpanID(), send.SpanContext.SpanID())
	}
	if got := spanAttrs(process); !hasAll(got, map[attribute.Key]string{
		"messaging.system":                     "rocketmq",
		"messaging.operation.type":             "process",
		"messaging.destination.name":           topic,
		"messaging.consumer.group.name":        "feature-x_billing",
		tagctx.AttrTrafficTag:                  "feature-x",
		tagctx.AttrNodeTag:                     "feature-x",
		tagctx.AttrRoute:                       "matched",
		"messaging.rocketmq.consumption_model": "clustering",
	}) {
		t.Errorf("consumer span attributes %v", got)
	}
	if got := spanAttrs(send); !hasAll(got, map[attribute.Key]string{
		"messaging.system":           "rocketmq",
		"messaging.operation.type":   "send",
		"messaging.destination.name": topic,
	}) || got["messaging.message.id"] == "" {
		t.Errorf("producer span attributes %v", got)
	}

	// The untagged request's consumer span proves stable on stable.
	var stableProcess *tracetest.SpanStub
	waitFor(t, 5*time.Second, func() string {
		for _, sp := range exp.GetSpans() {
			if sp.Name == "process "+topic && sp.SpanContext.TraceID() != process.SpanContext.TraceID() {
				stableProcess = &sp
				return ""
			}
		}
		return "no consumer span of the untagged request"
	})
	if got := spanAttrs(*stableProcess); !hasAll(got, map[attribute.Key]string{
		"messaging.consumer.group.name": "billing",
		tagctx.AttrTrafficTag:           "",
		tagctx.AttrNodeTag:              "",
		tagctx.AttrRoute:                "matched",
	}) {
		t.Errorf("stable consumer span attributes %v", got)
	}
}

func hasAll(got, want map[attribute.Key]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// TestTraceBatchAndFailure: a batch of one tag continues the first
// message's trace and links every message's producer span; a handler error
// marks the consumer span; a message sent without a trace starts a new one.
func TestTraceBatchAndFailure(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	tp, exp := newTracer(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithDelayLevels(100*time.Millisecond))
	const topic = "traced-batch"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s, mq.WithTracerProvider(tp), mq.WithPropagators(propagation.TraceContext{}))

	// Three messages, each sent in its own trace, before the consumer starts,
	// so the consumer's first pull gets them as one batch.
	var traces []trace.TraceID
	for i := range 3 {
		ctx, span := tp.Tracer("test").Start(tagctx.WithUntagged(context.Background()), fmt.Sprintf("job-%d", i))
		if _, err := p.SendSync(ctx, primitive.NewMessage(topic, fmt.Appendf(nil, "b%d", i))); err != nil {
			t.Fatal(err)
		}
		span.End()
		traces = append(traces, span.SpanContext().TraceID())
	}
	var failed1 atomic.Bool
	rec := new(rocketmqtest.Recorder)
	h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		// The first delivery fails. Its redelivery is not waited for: on a
		// group's first start the client finds the retry topic only after
		// 20-40 s (ROCKETMQ-FACTS.md).
		if failed1.CompareAndSwap(false, true) {
			return consumer.ConsumeRetryLater, fmt.Errorf("billing down")
		}
		rec.Record(ctx, "stable", msgs...)
		return consumer.ConsumeSuccess, nil
	}
	startConsumer(t, s, "batcher", topic, "", h, rec,
		mq.WithTracerProvider(tp), mq.WithPropagators(propagation.TraceContext{}),
		mq.WithConsumerOptions(consumer.WithConsumeMessageBatchMaxSize(32)))

	var failed tracetest.SpanStub
	waitFor(t, 10*time.Second, func() string {
		for _, sp := range exp.GetSpans() {
			if sp.Name == "process "+topic && sp.Status.Code == codes.Error {
				failed = sp
				return ""
			}
		}
		return "no consumer span marked as failed"
	})
	if failed.SpanContext.TraceID() != traces[0] || failed.Parent.TraceID() != traces[0] {
		t.Errorf("failed consumer span is in trace %v, want the first message's %v", failed.SpanContext.TraceID(), traces[0])
	}
	if failed.Status.Description != "billing down" {
		t.Errorf("status %+v", failed.Status)
	}
	if n := len(failed.Links); n > 1 {
		linked := map[trace.TraceID]bool{}
		for _, l := range failed.Links {
			linked[l.SpanContext.TraceID()] = true
		}
		for i, id := range traces[:n] {
			if !linked[id] {
				t.Errorf("batch span does not link message b%d's trace", i)
			}
		}
		if got := spanAttrs(failed)["messaging.batch.message_count"]; got != fmt.Sprint(n) {
			t.Errorf("messaging.batch.message_count %q for %d links", got, n)
		}
	} else {
		t.Log("the client delivered b0 alone; batch links not checked")
	}

	// No trace at the producer: no traceparent property, a root span at the
	// consumer.
	plain := newProducer(t, s) // global provider: the no-op one in tests
	if _, err := plain.SendSync(tagctx.WithUntagged(context.Background()), primitive.NewMessage(topic, []byte("untraced"))); err != nil {
		t.Fatal(err)
	}
	rec.WaitBodies(t, 10*time.Second, "untraced")
	for _, m := range s.Messages(topic) {
		if string(m.Body) == "untraced" && m.GetProperty("traceparent") != "" {
			t.Errorf("untraced message carries traceparent %q", m.GetProperty("traceparent"))
		}
	}
}

func TestTraceOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  mq.Option
		want string
	}{
		{name: "nil provider", opt: mq.WithTracerProvider(nil), want: "mq: WithTracerProvider(nil): want a TracerProvider"},
		{name: "nil propagator", opt: mq.WithPropagators(nil), want: "mq: WithPropagators(nil): want a TextMapPropagator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mq.NewConsumer("svc", tt.opt, mq.WithNameServer("127.0.0.1:1"))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestMessageCarrier: the carrier round-trips a trace context through a
// message's properties without the wrappers.
func TestMessageCarrier(t *testing.T) {
	tp, _ := newTracer(t)
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	m := primitive.NewMessage("t", nil)
	propagation.TraceContext{}.Inject(ctx, mq.MessageCarrier{Msg: m})
	if m.GetProperty("traceparent") == "" {
		t.Fatal("no traceparent property")
	}
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), mq.MessageCarrier{Msg: m}))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("extracted %v, want %v", got, span.SpanContext())
	}
	if keys := (mq.MessageCarrier{Msg: m}).Keys(); len(keys) != 1 || keys[0] != "traceparent" {
		t.Errorf("Keys %q", keys)
	}
}

// TestTraceSendKinds: every send kind runs in a producer span whose
// context is the message's traceparent; an async send's span ends in its
// callback with the message id; a failed send marks its span.
func TestTraceSendKinds(t *testing.T) {
	t.Parallel()
	tp, exp := newTracer(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithAutoCreateTopics(false))
	const topic = "traced-kinds"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s, mq.WithTracerProvider(tp), mq.WithPropagators(propagation.TraceContext{}))
	ctx := tagctx.With(context.Background(), tagctx.MustParse("blue"))

	if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("sync"))); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("batch-1")), primitive.NewMessage(topic, []byte("batch-2"))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := p.SendAsync(ctx, func(_ context.Context, _ *primitive.SendResult, err error) { done <- err }, primitive.NewMessage(topic, []byte("async"))); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.SendOneWay(ctx, primitive.NewMessage(topic, []byte("oneway"))); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(ctx, primitive.NewMessage("no-such-topic", []byte("lost"))); err == nil {
		t.Fatal("send to a topic that does not exist: want an error")
	}

	waitFor(t, 5*time.Second, func() string {
		if n := len(s.Messages(topic)); n < 5 {
			return fmt.Sprintf("%d of 5 messages stored", n)
		}
		return ""
	})
	spans := map[string]tracetest.SpanStub{} // by span id
	var failed []tracetest.SpanStub
	for _, sp := range exp.GetSpans() {
		if sp.SpanKind != trace.SpanKindProducer {
			continue
		}
		spans[sp.SpanContext.SpanID().String()] = sp
		if sp.Status.Code == codes.Error {
			failed = append(failed, sp)
		}
	}
	for _, m := range s.Messages(topic) {
		tp := m.GetProperty("traceparent")
		parts := strings.Split(tp, "-")
		if len(parts) != 4 {
			t.Errorf("%s: traceparent %q", m.Body, tp)
			continue
		}
		sp, ok := spans[parts[2]]
		if !ok {
			t.Errorf("%s: traceparent %q names no ended producer span", m.Body, tp)
			continue
		}
		attrs := spanAttrs(sp)
		if sp.Name != "send "+topic || attrs["messaging.destination.name"] != topic || m.GetProperty("x-tag") != "blue" {
			t.Errorf("%s: span %q attributes %v, x-tag %q", m.Body, sp.Name, attrs, m.GetProperty("x-tag"))
		}
		switch body := string(m.Body); {
		case strings.HasPrefix(body, "batch"):
			if attrs["messaging.batch.message_count"] != "2" {
				t.Errorf("%s: batch span attributes %v", body, attrs)
			}
		case body == "sync" || body == "async":
			if attrs["messaging.message.id"] == "" {
				t.Errorf("%s: span without messaging.message.id: %v", body, attrs)
			}
		}
	}
	if len(failed) != 1 || failed[0].Name != "send no-such-topic" {
		t.Errorf("failed producer spans %d, want one for no-such-topic", len(failed))
	}
}
