package mq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// preload sends n messages, half of them tagged for a lane with no
// consumer (so the stable consumer handles all of them, through the
// filter), in batches.
func preload(b *testing.B, s *rocketmqtest.Server, topic string, n int) {
	b.Helper()
	p := newProducer(b, s)
	blue := tagctx.With(context.Background(), tagctx.MustParse("blue"))
	const batch = 256
	for i := 0; i < n; i += batch {
		var msgs []*primitive.Message
		for j := i; j < min(i+batch, n); j++ {
			msgs = append(msgs, primitive.NewMessage(topic, fmt.Appendf(nil, "m-%d", j)))
		}
		ctx := tagctx.WithUntagged(context.Background())
		if (i/batch)%2 == 1 {
			ctx = blue
		}
		if _, err := p.SendSync(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsume is the throughput of a plain rocketmq-client-go push
// consumer and of the lane-aware stable consumer draining the same
// preloaded topic on the embedded broker; one op is one message.
func BenchmarkConsume(b *testing.B) {
	for _, kind := range []string{"plain", "stable"} {
		b.Run(kind, func(b *testing.B) {
			s := rocketmqtest.RunT(b)
			const topic = "bench"
			if err := s.CreateTopic(topic, 4); err != nil {
				b.Fatal(err)
			}
			preload(b, s, topic, b.N)
			var got atomic.Int64
			done := make(chan struct{})
			h := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				if got.Add(int64(len(msgs))) == int64(b.N) {
					close(done)
				}
				return consumer.ConsumeSuccess, nil
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			switch kind {
			case "plain":
				c, err := rocketmq.NewPushConsumer(
					consumer.WithNameServer([]string{s.NameServer()}),
					consumer.WithGroupName("plain"),
					consumer.WithInstance(instance("plain")),
				)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
					b.Fatal(err)
				}
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				defer c.Shutdown()
			case "stable":
				c, err := mq.NewConsumer("svc", mq.WithNameServer(s.NameServer()), mq.WithNodeTag(tagctx.Tag{}),
					mq.WithInstanceName(instance("stable")))
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
					b.Fatal(err)
				}
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				defer c.Shutdown()
			}
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				b.Fatalf("consumed %d of %d", got.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
