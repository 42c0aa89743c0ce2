package mq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// newConsumer builds (but does not start) a consumer and prints its group
// or the constructor's error.
func newConsumer(base string, opts ...mq.Option) {
	c, err := mq.NewConsumer(base, append([]mq.Option{mq.WithNameServer("127.0.0.1:9876")}, opts...)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Shutdown()
	fmt.Println(c.Group())
}

// The producer's send span and its trace context in the message, beside
// the tag.
func ExampleWithTracerProvider() {
	srv, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())

	raw, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServer()}), producer.WithInstanceName("example-traced"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := mq.WrapProducer(raw, mq.WithTracerProvider(tp), mq.WithPropagators(propagation.TraceContext{}))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()

	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	if _, err := p.SendSync(ctx, primitive.NewMessage("orders", []byte("order 42"))); err != nil {
		log.Fatal(err)
	}
	span := sr.Ended()[0]
	m := srv.Messages("orders")[0]
	fmt.Println(span.Name(), span.SpanKind())
	fmt.Println("x-tag:", m.GetProperty("x-tag"))
	fmt.Println("traceparent names the send span:", m.GetProperty("traceparent") ==
		fmt.Sprintf("00-%s-%s-01", span.SpanContext().TraceID(), span.SpanContext().SpanID()))
	// Output:
	// send orders producer
	// x-tag: feature-x
	// traceparent names the send span: true
}

// The carrier puts a trace context into message properties and reads it
// back, for code that sends or consumes without this package's wrappers.
func ExampleMessageCarrier() {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	m := primitive.NewMessage("orders", nil)
	propagation.TraceContext{}.Inject(ctx, mq.MessageCarrier{Msg: m})
	fmt.Println(m.GetProperty("traceparent"))

	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), mq.MessageCarrier{Msg: m}))
	fmt.Println(got.TraceID() == sc.TraceID(), got.IsRemote())
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// true true
}

// Any propagator works; W3C TraceContext with baggage is the usual one.
func ExampleWithPropagators() {
	newConsumer("billing", mq.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	newConsumer("billing", mq.WithPropagators(nil))
	// Output:
	// billing
	// mq: WithPropagators(nil): want a TextMapPropagator
}

func ExampleWithNode() {
	newConsumer("billing", mq.WithNode(tagctx.MustParse("feature-x")))
	newConsumer("billing", mq.WithNode(tagctx.Tag{})) // stable, whatever TAGLANE_TAG says
	// Output:
	// feature-x_billing
	// billing
}

func ExampleWithGroupPrefix() {
	newConsumer("billing", mq.WithGroupPrefix("test_"), mq.WithNode(tagctx.Tag{}))
	newConsumer("billing", mq.WithGroupPrefix("test_"), mq.WithNode(tagctx.MustParse("feature-x")))
	newConsumer("billing", mq.WithGroupPrefix("test prefix"))
	// Output:
	// test_billing
	// feature-x_billing
	// mq: WithGroupPrefix("test prefix"): want characters of [%|a-zA-Z0-9_-]
}

func ExampleWithPropertyKey() {
	newConsumer("billing", mq.WithPropertyKey("lane"))
	newConsumer("billing", mq.WithPropertyKey(""))
	// Output:
	// billing
	// mq: WithPropertyKey(""): empty
}

func ExampleWithNameServer() {
	_, err := mq.NewConsumer("billing")
	fmt.Println(err)
	newConsumer("billing", mq.WithNameServer("10.0.0.1:9876", "10.0.0.2:9876"))
	// Output:
	// mq: NewConsumer needs WithNameServer for its admin queries
	// billing
}

// How fast a stable consumer notices lanes come and go, and how far it
// trusts what it saw.
func ExampleWithRefreshInterval() {
	newConsumer("billing", mq.WithRefreshInterval(500*time.Millisecond), mq.WithStaleness(2*time.Second), mq.WithOfflineAfter(3))
	newConsumer("billing", mq.WithRefreshInterval(time.Millisecond))
	// Output:
	// billing
	// mq: WithRefreshInterval(1ms): below 10ms
}

func ExampleWithStaleness() {
	newConsumer("billing", mq.WithRefreshInterval(time.Second), mq.WithStaleness(500*time.Millisecond))
	// Output: mq: WithStaleness(500ms): shorter than the refresh interval 1s
}

func ExampleWithOfflineAfter() {
	newConsumer("billing", mq.WithOfflineAfter(0))
	// Output: mq: WithOfflineAfter(0): must be at least 1
}

func ExampleWithTakeoverMargin() {
	newConsumer("billing", mq.WithTakeoverMargin(2*time.Second))
	newConsumer("billing", mq.WithTakeoverMargin(-time.Second))
	// Output:
	// billing
	// mq: WithTakeoverMargin(-1s): negative
}

func ExampleWithAdminTimeout() {
	newConsumer("billing", mq.WithAdminTimeout(0))
	// Output: mq: WithAdminTimeout(0s): must be positive
}

func ExampleWithInstanceName() {
	c, err := mq.NewConsumer("billing", mq.WithNameServer("127.0.0.1:9876"), mq.WithInstanceName("billing-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()
	fmt.Println(c.InstanceName())
	// Output: billing-1
}

func ExampleWithConsumerOptions() {
	newConsumer("billing", mq.WithConsumerOptions(consumer.WithConsumeMessageBatchMaxSize(16), consumer.WithMaxReconsumeTimes(3)))
	// Output: billing
}

// Route proofs of consumed messages as OpenTelemetry metrics.
func ExampleWithObserver() {
	metrics, err := tagctx.NewMetrics(noop.NewMeterProvider()) // or the SDK's, or otel.GetMeterProvider()
	if err != nil {
		log.Fatal(err)
	}
	newConsumer("billing", mq.WithObserver(metrics.Observe))
	// Output: billing
}

func ExampleLaneGroup() {
	fmt.Println(mq.LaneGroup(tagctx.MustParse("feature-x"), "billing"))
	fmt.Println(mq.LaneGroup(tagctx.Tag{}, "billing"))
	// Output:
	// feature-x_billing <nil>
	//  mq: lane group of base "billing" needs a tag
}

func ExampleStableGroup() {
	fmt.Println(mq.StableGroup("test_", "billing"))
	// Output: test_billing <nil>
}

// Every consumer of a base group, stable and lanes, gets the same chains:
// here feature-x2 -> feature-x -> stable. A parent's own chain is the rest
// of the chain; a chain that breaks that rule is an error.
func ExampleWithParents() {
	x, x2 := tagctx.MustParse("feature-x"), tagctx.MustParse("feature-x2")
	chain := mq.WithParents(x2, x)
	newConsumer("orders-service", mq.WithNode(x), chain)            // handles feature-x2 while it has no consumer
	newConsumer("orders-service", mq.WithNode(x2), chain)           // seeds from the minimum of stable's and feature-x's offsets
	newConsumer("orders-service", mq.WithNode(tagctx.Tag{}), chain) // takes feature-x2 over only once feature-x is offline too
	newConsumer("orders-service", mq.WithParents(x2, x, tagctx.MustParse("feature")))
	// Output:
	// feature-x_orders-service
	// feature-x2_orders-service
	// orders-service
	// mq: WithParents("feature-x2", "feature-x,feature"): parent "feature-x" has the chain "", want the rest of this one, "feature": chains must form a tree (add WithParents("feature-x", "feature"))
}
