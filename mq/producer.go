package mq

import (
	"context"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/tagctx"
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
	requestAsync func(context.Context, time.Duration, CB, *primitive.Message) error
}

func newProducer[CB any](p rocketmq.Producer, key string, requestAsync func(context.Context, time.Duration, CB, *primitive.Message) error) *producer[CB] {
	return &producer[CB]{Producer: p, key: key, requestAsync: requestAsync}
}

// NewProducer wraps p so that every send kind (SendSync, SendAsync,
// SendOneWay, Request, RequestAsync; single messages and batches) stamps
// tagctx.Effective(ctx) into each message's user property ("x-tag" unless
// WithPropertyKey says otherwise). With no effective tag the property is
// removed: this hop decided "stable", and a tag left over from the message
// it was copied from must not steer it into a lane. Only WithPropertyKey
// applies to a producer; an invalid option makes NewProducer panic, as the
// options are constants of the program.
func NewProducer(p rocketmq.Producer, opts ...Option) rocketmq.Producer {
	cfg, err := newConfig(opts)
	if err != nil {
		panic(err)
	}
	return newProducer(p, cfg.propertyKey, p.RequestAsync)
}

func (p *producer[CB]) stamp(ctx context.Context, msgs []*primitive.Message) {
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
}

func (p *producer[CB]) SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	p.stamp(ctx, msgs)
	return p.Producer.SendSync(ctx, msgs...)
}

func (p *producer[CB]) SendAsync(ctx context.Context, f func(context.Context, *primitive.SendResult, error), msgs ...*primitive.Message) error {
	p.stamp(ctx, msgs)
	return p.Producer.SendAsync(ctx, f, msgs...)
}

func (p *producer[CB]) SendOneWay(ctx context.Context, msgs ...*primitive.Message) error {
	p.stamp(ctx, msgs)
	return p.Producer.SendOneWay(ctx, msgs...)
}

func (p *producer[CB]) Request(ctx context.Context, ttl time.Duration, msg *primitive.Message) (*primitive.Message, error) {
	p.stamp(ctx, []*primitive.Message{msg})
	return p.Producer.Request(ctx, ttl, msg)
}

func (p *producer[CB]) RequestAsync(ctx context.Context, ttl time.Duration, cb CB, msg *primitive.Message) error {
	p.stamp(ctx, []*primitive.Message{msg})
	return p.requestAsync(ctx, ttl, cb, msg)
}
