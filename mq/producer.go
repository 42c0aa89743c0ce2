package mq

import (
	"context"
	"errors"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/tagctx"
	"go.opentelemetry.io/otel/trace"
)

// producer stamps the effective tag on every message before the wrapped
// producer sends it.
//
// rocketmq.Producer's RequestAsync takes a callback of a type declared in
// rocketmq-client-go's internal package, which no other module can name.
// The type parameter CB is that type, inferred from the wrapped producer's
// method value, so the wrapper can still declare the method.
type producer[CB any] struct {
	rocketmq.Producer
	key          string
	tracing      tracing // trace.go
	requestAsync func(context.Context, time.Duration, CB, *primitive.Message) error
}

func newProducer[CB any](p rocketmq.Producer, cfg config, requestAsync func(context.Context, time.Duration, CB, *primitive.Message) error) *producer[CB] {
	return &producer[CB]{Producer: p, key: cfg.propertyKey, tracing: cfg.tracing, requestAsync: requestAsync}
}

// WrapProducer wraps p so that every send kind (SendSync, SendAsync,
// SendOneWay, Request, RequestAsync; single messages and batches) stamps
// tagctx.Effective(ctx) into each message's user property ("x-tag" unless
// WithPropertyKey says otherwise). With no effective tag the property is
// removed: this hop decided "stable", and a tag left over from the message
// it was copied from must not steer it into a lane.
//
// Each send also runs in a "send <topic>" producer span (OpenTelemetry
// messaging conventions) whose trace context is injected into the
// messages' properties beside the tag (WithTracerProvider, WithPropagators),
// so a consumer built by NewConsumer continues the trace. RequestAsync's
// span ends when the request is issued: its callback type cannot be
// wrapped.
//
// Only WithPropertyKey, WithTracerProvider and WithPropagators apply to a
// producer. An invalid option, or a nil p, is returned as an error.
func WrapProducer(p rocketmq.Producer, opts ...Option) (rocketmq.Producer, error) {
	if p == nil {
		return nil, errors.New("mq: WrapProducer: nil producer")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newProducer(p, cfg, p.RequestAsync), nil
}

// NewProducer is WrapProducer for options known to be valid; it panics
// otherwise, like regexp.MustCompile.
//
// Deprecated: use WrapProducer, which returns the error instead.
func NewProducer(p rocketmq.Producer, opts ...Option) rocketmq.Producer {
	wp, err := WrapProducer(p, opts...)
	if err != nil {
		panic(err)
	}
	return wp
}

// stamp starts the send span, injects its trace context (trace.go) and
// then the tag, so a propagator that writes the tag's property too cannot
// overrule this hop's decision.
func (p *producer[CB]) stamp(ctx context.Context, msgs []*primitive.Message) (context.Context, trace.Span) {
	ctx, span := p.tracing.send(ctx, msgs)
	t := tagctx.Effective(ctx)
	for _, m := range msgs {
		if m == nil {
			continue
		}
		if t.IsZero() {
			m.RemoveProperty(p.key)
		} else {
			m.WithProperty(p.key, t.String())
		}
	}
	return ctx, span
}

func (p *producer[CB]) SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	ctx, span := p.stamp(ctx, msgs)
	res, err := p.Producer.SendSync(ctx, msgs...)
	endSend(span, res, err)
	return res, err
}

func (p *producer[CB]) SendAsync(ctx context.Context, f func(context.Context, *primitive.SendResult, error), msgs ...*primitive.Message) error {
	ctx, span := p.stamp(ctx, msgs)
	cb := f
	if span.IsRecording() {
		cb = func(ctx context.Context, res *primitive.SendResult, err error) {
			endSend(span, res, err)
			f(ctx, res, err)
		}
	}
	err := p.Producer.SendAsync(ctx, cb, msgs...)
	if err != nil || !span.IsRecording() {
		endSend(span, nil, err) // the callback will not run, or ends nothing
	}
	return err
}

func (p *producer[CB]) SendOneWay(ctx context.Context, msgs ...*primitive.Message) error {
	ctx, span := p.stamp(ctx, msgs)
	err := p.Producer.SendOneWay(ctx, msgs...)
	endSend(span, nil, err)
	return err
}

func (p *producer[CB]) Request(ctx context.Context, ttl time.Duration, msg *primitive.Message) (*primitive.Message, error) {
	ctx, span := p.stamp(ctx, []*primitive.Message{msg})
	reply, err := p.Producer.Request(ctx, ttl, msg)
	endSend(span, nil, err)
	return reply, err
}

func (p *producer[CB]) RequestAsync(ctx context.Context, ttl time.Duration, cb CB, msg *primitive.Message) error {
	ctx, span := p.stamp(ctx, []*primitive.Message{msg})
	err := p.requestAsync(ctx, ttl, cb, msg)
	endSend(span, nil, err)
	return err
}
