package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// BenchmarkMQConsumeInstr is BenchmarkMQConsume cut for counting
// instructions (instr.sh runs it under valgrind --tool=callgrind): one
// side per sub-benchmark, so that a -test.bench pattern selects exactly
// one, b.N messages per op, and the handler chosen by name (none, peek,
// log) rather than fixed at log.
//
//   - kind=preload starts the embedded broker, creates the topic and sends
//     the b.N messages, and consumes nothing: the part of the plain and
//     stable sides' count that grows with b.N but is neither consumer's
//     work, which instr.sh subtracts from both before it divides.
//   - kind=plain and kind=stable are consumeAll's two consumers.
//   - kind=lane-skip is a lane consumer (tag green) skipping all b.N
//     messages, none being of its tag; kind=lane-skip-noprefilter the
//     same with mq's pull-side prefilter replaced by a filter hook that
//     keeps every message (drainLaneSkip). Its count includes its Start
//     and the polling of Stats, both alike at N1 and N2.
//   - kind=stable-hourly is the stable consumer reading lane liveness
//     once an hour instead of every 250 ms: under valgrind a message
//     takes about 50 times as long, so the refreshes that cost a stable
//     consumer nothing per message at full speed come 50 times as often
//     per message. Without them what is left is the per-message work.
func BenchmarkMQConsumeInstr(b *testing.B) {
	rocketmqtest.SkipIfClientRaces(b)
	for work, name := range workNames {
		b.Run("handler="+name, func(b *testing.B) {
			b.Run("kind=preload", func(b *testing.B) {
				s := rocketmqtest.RunT(b)
				if err := s.CreateTopic("bench", 4); err != nil {
					b.Fatal(err)
				}
				preload(b, s, "bench", b.N)
			})
			for _, kind := range []string{"plain", "stable"} {
				b.Run("kind="+kind, func(b *testing.B) {
					b.ReportAllocs()
					consumeAll(b, kind, b.N, work, b.ResetTimer)
				})
			}
			// A lane consumer skipping every message, with and without
			// mq's pull-side prefilter (drainLaneSkip); the handler is
			// never called, so only handler=none runs them.
			for _, kind := range []string{"lane-skip", "lane-skip-noprefilter"} {
				b.Run("kind="+kind, func(b *testing.B) {
					if work != workNone {
						b.Skip("the lane consumer handles nothing: the handler does not matter")
					}
					b.ReportAllocs()
					consumeAll(b, kind, b.N, work, b.ResetTimer)
				})
			}
			b.Run("kind=stable-hourly", func(b *testing.B) {
				b.ReportAllocs()
				drainStable(b, b.N, b.ResetTimer, mq.WithRefreshInterval(time.Hour))
			})
		})
	}
}

// drainStable is drain's stable consumer, given extra options, with a
// handler that does what consumeAll's does with workNone: it starts a fresh embedded broker, preloads n messages
// and waits until the consumer has handled all of them; preloaded runs
// between the two.
func drainStable(tb testing.TB, n int, preloaded func(), opts ...mq.Option) {
	tb.Helper()
	s := rocketmqtest.RunT(tb)
	const topic = "bench"
	if err := s.CreateTopic(topic, 4); err != nil {
		tb.Fatal(err)
	}
	preload(tb, s, topic, n)
	preloaded() // as consumeAll: the benchmark's own numbers leave the preload out
	var got, first atomic.Int64
	done := make(chan struct{})
	c, err := mq.NewConsumer("svc", append([]mq.Option{mq.WithNameServer(s.NameServer()),
		mq.WithNode(tagctx.Tag{}), mq.WithInstanceName(instance("stable"))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		first.CompareAndSwap(0, time.Now().UnixNano()) // as consumeAll's handler does
		if got.Add(int64(len(msgs))) == int64(n) {
			close(done)
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	defer c.Shutdown()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		tb.Fatalf("stable-hourly consumed %d of %d", got.Load(), n)
	}
}
