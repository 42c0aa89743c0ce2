package mq

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/taglane/taglane/tagctx"
)

// benchTracing returns the tracing of a process without tracing (the
// no-op provider, what the global one is until an SDK is installed) or
// with an SDK that samples everything and exports nowhere.
func benchTracing(b *testing.B, sdk bool) (tracing, context.Context) {
	b.Helper()
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	tc := tracing{tp: noop.NewTracerProvider(), prop: propagation.TraceContext{}}
	if sdk {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tc.tp = tp
		var span trace.Span
		ctx, span = tp.Tracer("bench").Start(ctx, "request")
		b.Cleanup(func() { span.End() })
	}
	tc.resolve()
	return tc, ctx
}

// BenchmarkProducerTrace is the producer's work on one message before the
// send: "tag only" is the anchor (what the producer did before it carried
// traces), "untraced" the same with the trace hook and no SDK, "traced" a
// send span plus the traceparent property.
func BenchmarkProducerTrace(b *testing.B) {
	b.Run("tag only", func(b *testing.B) {
		ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
		m := primitive.NewMessage("orders", nil)
		b.ReportAllocs()
		for b.Loop() {
			if t := tagctx.Effective(ctx); !t.IsZero() {
				m.WithProperty(tagctx.DefaultBaggageKey, t.String())
			}
		}
	})
	for _, sdk := range []bool{false, true} {
		name := "untraced"
		if sdk {
			name = "traced"
		}
		b.Run(name, func(b *testing.B) {
			tc, ctx := benchTracing(b, sdk)
			p := &producer[any]{key: tagctx.DefaultBaggageKey, tracing: tc}
			msgs := []*primitive.Message{primitive.NewMessage("orders", nil)}
			b.ReportAllocs()
			for b.Loop() {
				_, span := p.stamp(ctx, msgs)
				endSend(span, nil, nil)
			}
		})
	}
}

// BenchmarkConsumerTrace is the consumer's trace work per delivered
// message: the anchor "no trace" is what it did before (nothing), then
// the process span without an SDK, and with one, continuing the
// producer's trace from the message's traceparent.
func BenchmarkConsumerTrace(b *testing.B) {
	b.Run("no trace", func(b *testing.B) {
		ctx := tagctx.With(context.Background(), tagctx.Tag{})
		b.ReportAllocs()
		for b.Loop() {
			sinkCtx = ctx // what deliver hands the handler without tracing
		}
	})
	for _, sdk := range []bool{false, true} {
		name := "untraced"
		if sdk {
			name = "traced"
		}
		b.Run(name, func(b *testing.B) {
			tc, pctx := benchTracing(b, sdk)
			m := &primitive.MessageExt{MsgId: "0A0000010000000000000001"}
			m.Topic = "orders"
			tc.prop.Inject(pctx, MessageCarrier{&m.Message})
			msgs := []*primitive.MessageExt{m}
			ctx := tagctx.With(context.Background(), tagctx.Tag{})
			b.ReportAllocs()
			for b.Loop() {
				var span trace.Span
				sinkCtx, span = tc.process(ctx, "orders", "billing", msgs)
				endProcess(span, consumer.ConsumeSuccess, nil)
			}
		})
	}
}

var sinkCtx context.Context

// TestTracePassThroughWithoutSDK: with no SDK the producer and consumer
// start no spans, but a trace context already in flight still crosses the
// broker, as OpenTelemetry propagation does without an SDK.
func TestTracePassThroughWithoutSDK(t *testing.T) {
	tc := tracing{tp: noop.NewTracerProvider(), prop: propagation.TraceContext{}}
	tc.resolve()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	m := primitive.NewMessage("orders", nil)
	_, span := tc.send(ctx, []*primitive.Message{m})
	endSend(span, nil, nil)
	if got, want := m.GetProperty("traceparent"), "00-01020300000000000000000000000000-0405060000000000-01"; got != want {
		t.Fatalf("traceparent %q, want %q", got, want)
	}
	got := &primitive.MessageExt{}
	got.Topic = m.Topic
	got.WithProperties(m.GetProperties()) // as the consumer receives it
	cctx, span := tc.process(context.Background(), "orders", "billing", []*primitive.MessageExt{got})
	endProcess(span, consumer.ConsumeSuccess, nil)
	if got := trace.SpanContextFromContext(cctx); got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("handler context has %v, want %v", got, sc)
	}

	// No trace in flight: nothing is written.
	m2 := primitive.NewMessage("orders", nil)
	_, span = tc.send(context.Background(), []*primitive.Message{m2})
	endSend(span, nil, nil)
	if got := m2.GetProperty("traceparent"); got != "" {
		t.Errorf("traceparent %q without a trace", got)
	}
}

// TestTraceExtractionKeepsDecision: a propagator that also extracts a tag
// (tagctx.Propagator in a composite, as the root README suggests for
// HTTP) does not overrule the consumer's decision with what the message
// carries elsewhere: the handler sees the tag the filter decided, and the
// trace is continued.
func TestTraceExtractionKeepsDecision(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, tagctx.Propagator{})
	c := &Consumer{filter: filter{key: "x-tag"}, group: "billing"}
	c.cfg.tracing = tracing{tp: tp, prop: prop}
	c.cfg.tracing.resolve()
	c.view.Store(&view{online: map[tagctx.Tag]struct{}{}, until: time.Now().Add(time.Hour)})

	pctx, span := tp.Tracer("test").Start(context.Background(), "request")
	span.End()
	m := msgWithTag("x-tag", "") // stable traffic ...
	propagation.TraceContext{}.Inject(pctx, MessageCarrier{&m.Message})
	m.WithProperty("X-Tag", "feature-y") // ... with a stray tag where tagctx.Propagator looks

	var got tagctx.Tag
	var decided bool
	var traceID trace.TraceID
	s := &subscription{topic: "orders", h: func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		got, decided = tagctx.Lookup(ctx)
		traceID = trace.SpanContextFromContext(ctx).TraceID()
		return consumer.ConsumeSuccess, nil
	}}
	if _, err := c.consumeFunc(s)(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !got.IsZero() || !decided {
		t.Errorf("handler tag %q (decided %v), want explicitly untagged", got, decided)
	}
	if traceID != span.SpanContext().TraceID() {
		t.Errorf("handler trace %v, want %v", traceID, span.SpanContext().TraceID())
	}
}

// FuzzTraceProperties: whatever a producer put in the trace properties
// (they come from outside: any client can send any property), the consumer
// starts its span, hands the handler a context, and never panics; a
// traceparent it accepts is continued, anything else starts a new trace.
func FuzzTraceProperties(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE")
	f.Add("00-00000000000000000000000000000000-0000000000000000-01", "")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b,c")
	f.Add("", "x=\x01\x02")
	tp := sdktrace.NewTracerProvider()
	f.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tc := tracing{tp: tp, prop: propagation.TraceContext{}}
	tc.resolve()
	f.Fuzz(func(t *testing.T, traceparent, tracestate string) {
		m := &primitive.MessageExt{MsgId: "id"}
		m.Topic = "orders"
		m.WithProperty("traceparent", traceparent)
		m.WithProperty("tracestate", tracestate)
		want := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), MessageCarrier{&m.Message}))
		ctx, span := tc.process(context.Background(), "orders", "billing", []*primitive.MessageExt{m, m})
		endProcess(span, consumer.ConsumeSuccess, nil)
		got := trace.SpanContextFromContext(ctx)
		if !got.IsValid() {
			t.Fatalf("no span for traceparent %q", traceparent)
		}
		if want.IsValid() != (got.TraceID() == want.TraceID()) {
			t.Fatalf("traceparent %q: span in trace %v, message says %v", traceparent, got.TraceID(), want.TraceID())
		}
	})
}
