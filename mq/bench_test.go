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

// consumeAll starts a consumer of kind ("plain" rocketmq-client-go push
// consumer or the lane-aware "stable" one) on a topic preloaded with n
// messages and returns how long it took from the first message handled to
// the last.
// Handler work in BenchmarkConsume.
const (
	workNone = iota // return at once
	workPeek        // read one property of the message
	workLog         // format a log line about the message, as handlers do
)

func consumeAll(b *testing.B, kind string, n, work int, preloaded func()) time.Duration {
	b.Helper()
	s := rocketmqtest.RunT(b)
	const topic = "bench"
	if err := s.CreateTopic(topic, 4); err != nil {
		b.Fatal(err)
	}
	preload(b, s, topic, n)
	if preloaded != nil {
		preloaded()
	}
	var got, first atomic.Int64
	done := make(chan struct{})
	var sink atomic.Int64
	h := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			switch work {
			case workPeek:
				if m.GetProperty(primitive.PropertyKeys) == "" {
					sink.Add(int64(len(m.Body)))
				}
			case workLog:
				sink.Add(int64(len(fmt.Sprintf("consumed %s from %s at %d", m.MsgId, m.Topic, m.QueueOffset))))
			}
		}
		if first.Load() == 0 {
			first.CompareAndSwap(0, time.Now().UnixNano())
		}
		if got.Add(int64(len(msgs))) == int64(n) {
			close(done)
		}
		return consumer.ConsumeSuccess, nil
	}
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
		c, err := mq.NewConsumer("svc", mq.WithNameServer(s.NameServer()), mq.WithNode(tagctx.Tag{}),
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
		b.Fatalf("%s consumed %d of %d", kind, got.Load(), n)
	}
	// From the first message handled to the last: the steady state,
	// without the start-up both consumers pay (routes, rebalance).
	return time.Duration(time.Now().UnixNano() - first.Load())
}

// BenchmarkConsume is the throughput of a plain rocketmq-client-go push
// consumer and of the lane-aware stable consumer draining the same
// preloaded topic on the embedded broker (one op is one message; half the
// messages carry a lane tag with no lane online), with a handler that
// formats a log line about each message.
//
// The paired-* benchmarks alternate the two in rounds of 20,000 messages
// and report stable's throughput as a percentage of plain's, steadier on a
// shared machine than separate runs, for three handlers: none (returns at
// once), peek (reads one property) and log. The client runs every handler
// call on a new goroutine with a 2 KiB stack, most of it taken by its own
// frames; the filter's property read and tag parse then need more, and the
// runtime copies the stack to a larger one for every message. A plain
// consumer escapes that only with a handler that does next to nothing;
// with the log handler both pay it.
func BenchmarkConsume(b *testing.B) {
	for _, kind := range []string{"plain", "stable"} {
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			d := consumeAll(b, kind, b.N, workLog, b.ResetTimer)
			b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
		})
	}
	for _, w := range []struct {
		name string
		work int
	}{{"paired-none", workNone}, {"paired-peek", workPeek}, {"paired-log", workLog}} {
		b.Run(w.name, func(b *testing.B) {
			const n, rounds = 20_000, 4
			var plain, stable time.Duration
			for range b.N {
				for r := range rounds {
					// Alternate which goes first: the second run of a
					// round inherits the first one's garbage.
					if r%2 == 0 {
						plain += consumeAll(b, "plain", n, w.work, nil)
						stable += consumeAll(b, "stable", n, w.work, nil)
					} else {
						stable += consumeAll(b, "stable", n, w.work, nil)
						plain += consumeAll(b, "plain", n, w.work, nil)
					}
				}
			}
			b.ReportMetric(float64(n*rounds*b.N)/plain.Seconds(), "plain-msgs/s")
			b.ReportMetric(float64(n*rounds*b.N)/stable.Seconds(), "stable-msgs/s")
			b.ReportMetric(100*plain.Seconds()/stable.Seconds(), "stable-%-of-plain")
		})
	}
}
