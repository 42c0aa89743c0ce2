package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/hooks"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

var instanceSeq atomic.Int64

// instance is a client instance name of its own: rocketmq-client-go
// shares one client per instance name in a process.
func instance(name string) string {
	return fmt.Sprintf("bench-%s-%d", name, instanceSeq.Add(1))
}

// preload sends n messages through taglane's producer, alternating
// batches of 256 marked untagged and tagged blue, a lane with no consumer
// online, so the stable consumer takes all of them through its filter.
func preload(tb testing.TB, s *rocketmqtest.Server, topic string, n int) {
	tb.Helper()
	raw, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName(instance("producer")),
		producer.WithRetry(2),
	)
	if err != nil {
		tb.Fatal(err)
	}
	if err := raw.Start(); err != nil {
		tb.Fatal(err)
	}
	defer raw.Shutdown()
	p, err := mq.WrapProducer(raw)
	if err != nil {
		tb.Fatal(err)
	}
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
			tb.Fatal(err)
		}
	}
}

// Handler work in the MQ benchmarks.
const (
	workNone = iota // return at once
	workPeek        // read one property of each message
	workLog         // format a log line about each message, as handlers do
)

var workNames = []string{"none", "peek", "log"}

// consumeAll starts a consumer of kind ("plain" rocketmq-client-go push
// consumer, or taglane's stable consumer) on a fresh embedded broker whose
// topic holds n messages, and returns the time from the first message
// handled to the last: the steady state, without the start-up (routes,
// rebalance) both pay.
func consumeAll(tb testing.TB, kind string, n, work int, preloaded func()) time.Duration {
	tb.Helper()
	return drain(tb, kind, n, work, preloaded, nil, nil)
}

// drain is consumeAll with, for the plain consumer, extra client options
// and a wrapper around the handler (BenchmarkMQGoroutineWork).
func drain(tb testing.TB, kind string, n, work int, preloaded func(),
	plainOpts []consumer.Option, wrap func(mq.Handler) mq.Handler) time.Duration {
	tb.Helper()
	if kind == "lane-skip" || kind == "lane-skip-noprefilter" {
		return drainLaneSkip(tb, n, preloaded, kind == "lane-skip-noprefilter")
	}
	s := rocketmqtest.RunT(tb)
	const topic = "bench"
	if err := s.CreateTopic(topic, 4); err != nil {
		tb.Fatal(err)
	}
	preload(tb, s, topic, n)
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
		first.CompareAndSwap(0, time.Now().UnixNano())
		if got.Add(int64(len(msgs))) == int64(n) {
			close(done)
		}
		return consumer.ConsumeSuccess, nil
	}
	var shutdown func() error
	switch kind {
	case "plain":
		c, err := rocketmq.NewPushConsumer(append([]consumer.Option{
			consumer.WithNameServer([]string{s.NameServer()}),
			consumer.WithGroupName("plain"),
			consumer.WithInstance(instance("plain")),
		}, plainOpts...)...)
		if err != nil {
			tb.Fatal(err)
		}
		var ph mq.Handler = h
		if wrap != nil {
			ph = wrap(ph)
		}
		if err := c.Subscribe(topic, consumer.MessageSelector{}, ph); err != nil {
			tb.Fatal(err)
		}
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
		shutdown = c.Shutdown
	case "stable":
		c, err := mq.NewConsumer("svc", mq.WithNameServer(s.NameServer()), mq.WithNode(tagctx.Tag{}),
			mq.WithInstanceName(instance("stable")))
		if err != nil {
			tb.Fatal(err)
		}
		if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
			tb.Fatal(err)
		}
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
		shutdown = c.Shutdown
	default:
		tb.Fatalf("unknown consumer kind %q", kind)
	}
	defer shutdown()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		tb.Fatalf("%s consumed %d of %d", kind, got.Load(), n)
	}
	return time.Duration(time.Now().UnixNano() - first.Load())
}

// drainLaneSkip starts a lane consumer of tag "green" on a fresh embedded
// broker, then sends it preload's n messages, none of its tag, and returns
// the time from the end of the sends to its last skip. The lane starts
// first because with no stable group on the topic it starts at the max
// offset. noPrefilter replaces mq's pull-side prefilter with a filter hook
// that keeps every message (as a user's own hook does), so every skip goes
// through the client's per-message goroutine.
func drainLaneSkip(tb testing.TB, n int, preloaded func(), noPrefilter bool) time.Duration {
	tb.Helper()
	s := rocketmqtest.RunT(tb)
	const topic = "bench"
	if err := s.CreateTopic(topic, 4); err != nil {
		tb.Fatal(err)
	}
	opts := []mq.Option{mq.WithNameServer(s.NameServer()), mq.WithNode(tagctx.MustParse("green")),
		mq.WithInstanceName(instance("green")), mq.WithStartWait(0)}
	if noPrefilter {
		opts = append(opts, mq.WithConsumerOptions(consumer.WithFilterMessageHook([]hooks.FilterMessageHook{
			func(fc *hooks.FilterMessageContext) ([]*primitive.MessageExt, error) { return fc.Msg, nil },
		})))
	}
	c, err := mq.NewConsumer("svc", opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		tb.Error("the green lane consumer handled a message: the topic holds none of its tag")
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	defer c.Shutdown()
	// Skips call no handler to signal from: poll the counter, seldom
	// enough that the polling is a small part of an instruction count.
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	waitSkipped := func(want uint64) {
		for c.Stats().Skipped < want {
			select {
			case <-deadline.C:
				tb.Fatalf("lane consumer skipped %d of %d", c.Stats().Skipped, want)
			case <-tick.C:
			}
		}
	}
	// One message per queue first (single sends, the producer's round
	// robin), so the consumer owns and pulls every queue before the
	// preload starts.
	const warm = 4
	raw, err := rocketmq.NewProducer(producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName(instance("warm")))
	if err != nil {
		tb.Fatal(err)
	}
	if err := raw.Start(); err != nil {
		tb.Fatal(err)
	}
	for i := range warm {
		if _, err := raw.SendSync(context.Background(), primitive.NewMessage(topic, fmt.Appendf(nil, "warm-%d", i))); err != nil {
			tb.Fatal(err)
		}
	}
	raw.Shutdown()
	waitSkipped(warm)
	preload(tb, s, topic, n)
	if preloaded != nil {
		preloaded()
	}
	start := time.Now()
	waitSkipped(warm + uint64(n))
	return time.Since(start)
}

// BenchmarkMQConsume is the throughput of the plain rocketmq-client-go
// push consumer and of taglane's stable consumer draining the same
// preloaded topic on the embedded broker, one op per message, with a
// handler that formats a log line. Run one after the other: read
// BenchmarkMQConsumePaired for the percentages.
func BenchmarkMQConsume(b *testing.B) {
	rocketmqtest.SkipIfClientRaces(b)
	run := func(kind string) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			d := consumeAll(b, kind, b.N, workLog, b.ResetTimer)
			b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
		}
	}
	vs(b, "plain", run("plain"), run("stable"))
}

// BenchmarkMQConsumePaired alternates the two consumers, each draining
// 10,000 messages from a fresh broker, which goes first rotating, and
// reports each one's median throughput and the median of the rounds'
// stable/plain throughput ratios, for three handlers: none (returns at
// once), peek (reads one property) and log. One op is four rounds of
// both, so that even one op (a second of benchtime) gives a median.
func BenchmarkMQConsumePaired(b *testing.B) {
	rocketmqtest.SkipIfClientRaces(b)
	const n, rounds = 10_000, 4
	for work, name := range workNames {
		b.Run("handler="+name, func(b *testing.B) {
			var plain, stable, ratios []float64
			round := 0
			for b.Loop() {
				for range rounds {
					var p, s time.Duration
					if round%2 == 0 {
						p, s = consumeAll(b, "plain", n, work, nil), consumeAll(b, "stable", n, work, nil)
					} else {
						s, p = consumeAll(b, "stable", n, work, nil), consumeAll(b, "plain", n, work, nil)
					}
					plain = append(plain, n/p.Seconds())
					stable = append(stable, n/s.Seconds())
					ratios = append(ratios, p.Seconds()/s.Seconds())
					round++
				}
			}
			b.ReportMetric(median(plain), "plain-msgs/s")
			b.ReportMetric(median(stable), "stable-msgs/s")
			b.ReportMetric(100*median(ratios), "stable-%-of-plain")
		})
	}
}

// BenchmarkMQGoroutineWork measures, on the plain client with a no-op
// handler, what work costs when it runs on the goroutine
// rocketmq-client-go v2.1.2 starts for every message
// (consumeMessageConcurrently: a fresh goroutine, 2 KiB stack, the
// client's frames already on it) against the same work done on the pull
// goroutine by a consumer.WithFilterMessageHook, which runs in
// processPullResult before the messages reach the process queue:
//
//   - with: the handler gets its context through tagctx.WithUntagged (the
//     one allocation every lane-aware delivery makes);
//   - decide: the handler reads the x-tag property, parses it and puts the
//     tag in the context: the stable consumer's per-message work;
//   - hook-decide: a filter hook reads and parses the property of each
//     pulled message on the pull goroutine; the handler only puts the tag
//     in the context.
//
// Each line is the median ratio to noop over alternating rounds of 10,000
// messages.
func BenchmarkMQGoroutineWork(b *testing.B) {
	rocketmqtest.SkipIfClientRaces(b)
	const n, rounds = 10_000, 2
	withTag := func(next mq.Handler) mq.Handler {
		return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			return next(tagctx.WithUntagged(ctx), msgs...)
		}
	}
	decide := func(next mq.Handler) mq.Handler {
		return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			t, _ := tagctx.Parse(msgs[0].GetProperty("x-tag"))
			return next(tagctx.With(ctx, t), msgs...)
		}
	}
	var parsed atomic.Int64
	hook := consumer.WithFilterMessageHook([]hooks.FilterMessageHook{func(fc *hooks.FilterMessageContext) ([]*primitive.MessageExt, error) {
		for _, m := range fc.Msg {
			if t, err := tagctx.Parse(m.GetProperty("x-tag")); err == nil && !t.IsZero() {
				parsed.Add(1)
			}
		}
		return fc.Msg, nil
	}})
	variants := []struct {
		name string
		opts []consumer.Option
		wrap func(mq.Handler) mq.Handler
	}{
		{"noop", nil, nil},
		{"with", nil, withTag},
		{"decide", nil, decide},
		{"hook-decide", []consumer.Option{hook}, withTag},
	}
	b.Run("vs=noop", func(b *testing.B) {
		times := make([][]float64, len(variants))
		ratios := make([][]float64, len(variants))
		round := 0
		for b.Loop() {
			for range rounds {
				d := make([]time.Duration, len(variants))
				for k := range variants {
					i := (k + round) % len(variants)
					d[i] = drain(b, "plain", n, workNone, nil, variants[i].opts, variants[i].wrap)
				}
				for i := range variants {
					times[i] = append(times[i], n/d[i].Seconds())
					ratios[i] = append(ratios[i], d[0].Seconds()/d[i].Seconds())
				}
				round++
			}
		}
		for i, v := range variants {
			b.ReportMetric(median(times[i]), v.name+"-msgs/s")
			if i > 0 {
				b.ReportMetric(100*median(ratios[i]), v.name+"-%-of-noop")
			}
		}
	})
	if parsed.Load() == 0 {
		b.Error("the filter hook never saw a tagged message")
	}
}

// TestSameJobMQ checks that both consumers of the MQ benchmarks take every
// preloaded message, half of them tagged for a lane that is offline.
func TestSameJobMQ(t *testing.T) {
	rocketmqtest.SkipIfClientRaces(t)
	for _, kind := range []string{"plain", "stable"} {
		t.Run(kind, func(t *testing.T) {
			consumeAll(t, kind, 600, workPeek, nil) // fails unless all 600 arrive
		})
	}
}
