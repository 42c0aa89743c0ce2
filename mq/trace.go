package mq

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the spans the producer and the
// consumer start.
const ScopeName = "github.com/taglane/taglane/mq"

// WithTracerProvider sets where the producer's "send" spans and the
// consumer's "process" spans go (default: otel.GetTracerProvider(), read
// when the producer or consumer is built and following a later
// otel.SetTracerProvider, as every OpenTelemetry instrumentation does).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) error {
		if tp == nil {
			return errors.New("mq: WithTracerProvider(nil): want a TracerProvider")
		}
		c.tracing.tp = tp
		return nil
	})
}

// WithPropagators sets how the trace context travels in message properties
// (default: otel.GetTextMapPropagator(), whose W3C TraceContext writes the
// "traceparent" and "tracestate" properties). The producer injects it
// beside the tag; the consumer extracts it to continue the trace. Named
// and typed as otelhttp.WithPropagators and otelgrpc.WithPropagators.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) error {
		if p == nil {
			return errors.New("mq: WithPropagators(nil): want a TextMapPropagator")
		}
		c.tracing.prop = p
		return nil
	})
}

// tracing is the trace configuration the options set, resolved once by
// newConfig.
type tracing struct {
	tp     trace.TracerProvider
	prop   propagation.TextMapPropagator
	t      trace.Tracer
	global bool // tp is the global provider
	// globalProp: prop is the global propagator (its delegate before
	// otel.SetTextMapPropagator, which then forwards to the one set).
	globalProp bool
}

func (tc *tracing) resolve() {
	if tc.tp == nil {
		tc.tp = otel.GetTracerProvider() // delegates to a provider set later
		tc.global = true
	}
	if tc.prop == nil {
		tc.prop = otel.GetTextMapPropagator() // the same
		tc.globalProp = true
	}
	tc.t = tc.tp.Tracer(ScopeName)
}

// resolved returns tc resolved; tc itself if newConfig did it already (a
// config built another way, as internal tests do, has not been).
func (tc *tracing) resolved() *tracing {
	if tc.t != nil {
		return tc
	}
	r := *tc
	r.resolve()
	return &r
}

// unsetGlobal is the type of the global TracerProvider before
// otel.SetTracerProvider: a delegate that makes no-op spans until then. Nil
// if a provider was set before this package's init (then it is never
// taken for "off", which is the safe side).
var unsetGlobal = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTracerProvider())
	if t != nil && t.String() == "*global.tracerProvider" {
		return t
	}
	return nil
}()

// unsetGlobalProp is the type of the global TextMapPropagator before
// otel.SetTextMapPropagator: a delegate to an empty composite until then,
// whose Extract returns its context unchanged. Nil if a propagator was set
// before this package's init (then extraction always runs: the safe side).
var unsetGlobalProp = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTextMapPropagator())
	if t != nil && t.String() == "*global.textMapPropagator" {
		return t
	}
	return nil
}()

// off reports whether spans would be no-ops: no SDK behind the provider.
// Then the producer and the consumer start no spans, which would cost
// allocations for nothing, and only pass a trace context already in flight
// through (propagation works without an SDK).
func (tc *tracing) off() bool {
	if _, ok := tc.tp.(noop.TracerProvider); ok {
		return true
	}
	return tc.global && unsetGlobal != nil && reflect.TypeOf(otel.GetTracerProvider()) == unsetGlobal
}

// MessageCarrier adapts a message's user properties to OpenTelemetry
// propagation, for code that sends or receives without this package's
// wrappers.
type MessageCarrier struct{ Msg *primitive.Message }

var _ propagation.TextMapCarrier = MessageCarrier{}

// Get returns the property key.
func (c MessageCarrier) Get(key string) string { return c.Msg.GetProperty(key) }

// Set sets the property key.
func (c MessageCarrier) Set(key, value string) { c.Msg.WithProperty(key, value) }

// Keys returns the property names.
func (c MessageCarrier) Keys() []string {
	props := c.Msg.GetProperties()
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	return keys
}

var (
	attrSystem      = semconv.MessagingSystemKey.String("rocketmq")
	attrModel       = semconv.MessagingRocketMQConsumptionModelClustering
	attrSendType    = semconv.MessagingOperationTypeSend
	attrSendName    = semconv.MessagingOperationName("send")
	attrProcessType = semconv.MessagingOperationTypeProcess
	attrProcessName = semconv.MessagingOperationName("process")
)

// send starts the producer span of msgs, which RocketMQ requires to share
// one topic, and injects its context into every message. The span is the
// caller's to end (endSend).
func (tr *tracing) send(ctx context.Context, msgs []*primitive.Message) (context.Context, trace.Span) {
	tr = tr.resolved()
	if tr.off() {
		span := trace.SpanFromContext(ctx)
		if span.SpanContext().IsValid() {
			tr.inject(ctx, msgs)
		}
		return ctx, span // not ours to end; endSend's End is a no-op on it
	}
	topic := ""
	for _, m := range msgs {
		if m != nil {
			topic = m.Topic
			break
		}
	}
	attrs := []attribute.KeyValue{attrSystem, attrSendType, attrSendName, semconv.MessagingDestinationName(topic)}
	if len(msgs) > 1 {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
	}
	ctx, span := tr.t.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	if !span.SpanContext().IsValid() {
		return ctx, span // nothing to carry: no trace in ctx and no SDK installed
	}
	tr.inject(ctx, msgs)
	return ctx, span
}

func (tr *tracing) inject(ctx context.Context, msgs []*primitive.Message) {
	for _, m := range msgs {
		if m != nil {
			tr.prop.Inject(ctx, MessageCarrier{m})
		}
	}
}

// endSend ends a producer span with the send's outcome.
func endSend(span trace.Span, res *primitive.SendResult, err error) {
	if span.IsRecording() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else if res != nil && res.Status != primitive.SendOK {
			span.SetStatus(codes.Error, fmt.Sprintf("mq: send status %d", res.Status))
		}
		if res != nil && res.MsgID != "" {
			span.SetAttributes(semconv.MessagingMessageID(res.MsgID))
		}
	}
	span.End()
}

// process continues the trace of msgs (one tag's messages of a delivered
// batch) in a consumer span: its parent is the first message's producer
// context, and a batch links every message's context, as the OpenTelemetry
// messaging conventions ask. The tagctx.Record that follows puts the route
// proof on this span, so the proof is on the trace whatever the handler
// does.
func (tr *tracing) process(ctx context.Context, topic, group string, msgs []*primitive.MessageExt) (context.Context, trace.Span) {
	tr = tr.resolved()
	if tr.off() {
		return tr.passThrough(ctx, msgs[0]), nonRecording
	}
	return tr.processSpan(ctx, topic, group, msgs)
}

// passThrough is process without an SDK: it passes the producer's trace
// context through to the handler's own calls, as propagation without an
// SDK does. The consumer's hot path calls it directly, so it must stay
// small: its frame is on the per-message goroutine's 2 KiB stack.
func (tr *tracing) passThrough(ctx context.Context, m *primitive.MessageExt) context.Context {
	// The unset global propagator extracts nothing; asking it would take
	// its mutex for every message.
	if tr.globalProp && unsetGlobalProp != nil && reflect.TypeOf(otel.GetTextMapPropagator()) == unsetGlobalProp {
		return ctx
	}
	return tr.prop.Extract(ctx, MessageCarrier{&m.Message})
}

// processSpan is process with an SDK. It is kept out of line: its
// attribute and option arrays make a frame of about 1 KiB, which on the
// per-message goroutine would grow the stack for every message.
//
//go:noinline
func (tr *tracing) processSpan(ctx context.Context, topic, group string, msgs []*primitive.MessageExt) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attrSystem, attrProcessType, attrProcessName, attrModel,
		semconv.MessagingDestinationName(topic), semconv.MessagingConsumerGroupName(group))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	var parent context.Context
	if len(msgs) == 1 {
		attrs = append(attrs, semconv.MessagingMessageID(msgs[0].MsgId))
		if tag := msgs[0].GetTags(); tag != "" {
			attrs = append(attrs, semconv.MessagingRocketMQMessageTag(tag))
		}
		parent = tr.prop.Extract(ctx, MessageCarrier{&msgs[0].Message})
	} else {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
		links := make([]trace.Link, 0, len(msgs))
		for _, m := range msgs {
			mctx := tr.prop.Extract(ctx, MessageCarrier{&m.Message})
			sc := trace.SpanContextFromContext(mctx)
			if !sc.IsValid() {
				continue
			}
			if parent == nil {
				parent = mctx
			}
			links = append(links, trace.Link{SpanContext: sc})
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	if parent == nil {
		parent = ctx
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	return tr.t.Start(parent, "process "+topic, opts...)
}

// nonRecording is the span of a consumer that starts none: End on it does
// nothing, and SpanFromContext of the handler's context is unaffected.
var nonRecording = trace.SpanFromContext(context.Background())

// endProcess ends a consumer span with the handler's verdict.
func endProcess(span trace.Span, r consumer.ConsumeResult, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case r != consumer.ConsumeSuccess:
			span.SetStatus(codes.Error, "mq: handler asked to consume later")
		}
	}
	span.End()
}
