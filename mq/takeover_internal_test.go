package mq

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	rmqproducer "github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

var internalSeq sync.Mutex
var internalN int

func uniq(name string) string {
	internalSeq.Lock()
	defer internalSeq.Unlock()
	internalN++
	return fmt.Sprintf("%s-internal-%d", name, internalN)
}

func rawProducer(t testing.TB, s *rocketmqtest.Server) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(rmqproducer.WithNameServer([]string{s.NameServer()}), rmqproducer.WithInstanceName(uniq("producer")))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	wp, err := WrapProducer(p)
	if err != nil {
		t.Fatal(err)
	}
	return wp
}

// sendBatches sends n messages of tag (zero: untagged) in batches.
func sendBatches(t testing.TB, p rocketmq.Producer, topic string, tag tagctx.Tag, prefix string, n int) {
	t.Helper()
	ctx := tagctx.With(context.Background(), tag)
	const batch = 256
	for i := 0; i < n; i += batch {
		var msgs []*primitive.Message
		for j := i; j < min(i+batch, n); j++ {
			msgs = append(msgs, primitive.NewMessage(topic, fmt.Appendf(nil, "%s-%06d", prefix, j)))
		}
		if _, err := p.SendSync(ctx, msgs...); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

type handled struct {
	mu     sync.Mutex
	bodies map[string]int
	tags   map[string]bool
	fail   func(*primitive.MessageExt) bool
	// handedOver counts messages delivered with HandedOver(ctx).
	handedOver int
}

func (h *handled) handler(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		if h.fail != nil && h.fail(m) {
			return consumer.ConsumeRetryLater, nil
		}
	}
	if h.bodies == nil {
		h.bodies, h.tags = map[string]int{}, map[string]bool{}
	}
	for _, m := range msgs {
		h.bodies[string(m.Body)]++
	}
	h.tags[tagctx.From(ctx).String()] = true
	if HandedOver(ctx) {
		h.handedOver += len(msgs)
	}
	return consumer.ConsumeSuccess, nil
}

func (h *handled) count(prefix string) (n, dup int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for b, k := range h.bodies {
		if strings.HasPrefix(b, prefix) {
			n++
			dup += k - 1
		}
	}
	return n, dup
}

// newUnstarted returns a stable consumer whose takeover runs directly,
// without the push consumer: the takeover path under the race detector.
func newUnstarted(t testing.TB, s *rocketmqtest.Server, topic string, h Handler) *Consumer {
	t.Helper()
	c, err := NewConsumer("svc", WithNameServer(s.NameServer()), WithNode(tagctx.Tag{}), WithInstanceName(uniq("stable")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.admin.Close() })
	return c
}

func TestTakeoverHandsOverOnlyTheLanesTag(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	blue := tagctx.MustParse("blue")
	sendBatches(t, p, topic, blue, "blue", 40)
	sendBatches(t, p, topic, tagctx.Tag{}, "untagged", 40)
	sendBatches(t, p, topic, tagctx.MustParse("green"), "green", 20)

	var h handled
	c := newUnstarted(t, s, topic, h.handler)
	ctx := context.Background()
	written, err := c.takeover(ctx, blue, "blue_svc", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, dup := h.count("blue"); n != 40 || dup != 0 {
		t.Errorf("handed over %d blue messages (%d duplicates), want 40 once", n, dup)
	}
	if n, _ := h.count("untagged"); n != 0 {
		t.Errorf("handed over %d untagged messages, want 0", n)
	}
	if len(h.tags) != 1 || !h.tags["blue"] {
		t.Errorf("handler contexts carried tags %v, want only blue", h.tags)
	}
	for _, q := range s.Queues(topic) {
		got, _ := s.CommittedOffset("blue_svc", q)
		if want := s.MaxOffset(q); got != want {
			t.Errorf("lane offset on %v = %d, want max %d", q, got, want)
		}
	}
	if st := c.Stats(); st.Redelivered != 40 {
		t.Errorf("Redelivered = %d, want 40", st.Redelivered)
	}
	if h.handedOver != 40 {
		t.Errorf("handler saw HandedOver on %d messages, want 40", h.handedOver)
	}

	// While the lane stays offline, stable handles blue itself; the leader
	// only moves the lane's offsets up to stable's.
	sendBatches(t, p, topic, blue, "later", 10)
	for _, q := range s.Queues(topic) {
		if err := s.SetCommittedOffset("svc", q, s.MaxOffset(q)); err != nil {
			t.Fatal(err)
		}
	}
	written, relive, err := c.keepUp(ctx, "blue_svc", nil, written, func() bool { return true })
	if err != nil || relive {
		t.Fatalf("keepUp: relive %v, %v", relive, err)
	}
	for _, q := range s.Queues(topic) {
		got, _ := s.CommittedOffset("blue_svc", q)
		if want := s.MaxOffset(q); got != want || written[admin.Queue{Addr: s.Brokers()[0].Addr, Topic: topic, ID: q.QueueId}] != want {
			t.Errorf("lane offset on %v = %d, want stable's %d", q, got, want)
		}
	}
	if n, _ := h.count("later"); n != 0 {
		t.Errorf("keepUp handed over %d messages, want 0 (stable handled them)", n)
	}

	// A queue the takeover did not cover (its broker was missing from the
	// route then): a full takeover again.
	partial := maps.Clone(written)
	delete(partial, admin.Queue{Addr: s.Brokers()[0].Addr, Topic: topic, ID: 3})
	if _, relive, _ := c.keepUp(ctx, "blue_svc", nil, partial, func() bool { return true }); !relive {
		t.Error("keepUp with a queue the takeover did not cover: want relive")
	}

	// Someone else moved the lane's offset: the lane lived in between.
	q0 := s.Queues(topic)[0]
	if err := s.SetCommittedOffset("blue_svc", q0, 1); err != nil {
		t.Fatal(err)
	}
	if _, relive, _ := c.keepUp(ctx, "blue_svc", nil, written, func() bool { return true }); !relive {
		t.Error("keepUp after a foreign commit: want relive")
	}
}

func TestTakeoverStopsAtHandlerFailure(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithQueues(1))
	const topic = "orders"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	blue := tagctx.MustParse("blue")
	sendBatches(t, p, topic, blue, "blue", 100)

	failing := true
	h := handled{fail: func(m *primitive.MessageExt) bool { return failing && string(m.Body) == "blue-000050" }}
	c := newUnstarted(t, s, topic, h.handler)
	c.cfg.handoverBatch = 8
	if _, err := c.takeover(context.Background(), blue, "blue_svc", nil, nil); err == nil {
		t.Fatal("takeover with a failing handler: want an error")
	}
	q := s.Queues(topic)[0]
	got, _ := s.CommittedOffset("blue_svc", q)
	if got > 50 || got < 48 {
		t.Errorf("lane offset after failure at 50 = %d, want the start of the failing batch", got)
	}
	failing = false
	if _, err := c.takeover(context.Background(), blue, "blue_svc", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.count("blue"); n != 100 {
		t.Errorf("handed over %d of 100", n)
	}
	if got, _ := s.CommittedOffset("blue_svc", q); got != 100 {
		t.Errorf("lane offset = %d, want 100", got)
	}
}

// BenchmarkRedelivery hands over 100,000 messages a lane never consumed.
func BenchmarkRedelivery(b *testing.B) {
	s := rocketmqtest.RunT(b)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		b.Fatal(err)
	}
	p := rawProducer(b, s)
	blue := tagctx.MustParse("blue")
	const n = 100_000
	sendBatches(b, p, topic, blue, "blue", n)
	var mu sync.Mutex
	got := 0
	c := newUnstarted(b, s, topic, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		got += len(msgs)
		mu.Unlock()
		return consumer.ConsumeSuccess, nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for _, q := range s.Queues(topic) {
			if err := s.SetCommittedOffset("blue_svc", q, 0); err != nil {
				b.Fatal(err)
			}
		}
		got = 0
		b.StartTimer()
		start := time.Now()
		if _, err := c.takeover(context.Background(), blue, "blue_svc", nil, nil); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
		if got != n {
			b.Fatalf("handed over %d, want %d", got, n)
		}
	}
}

// TestKeepUpQueueStableNeverCommitted: with retention, a queue where the
// stable group never committed answers 22 QUERY_NOT_FOUND for its offset.
// keepUp leaves the lane's offset there, moves it on the other queues, and
// reports no error: before, that queue failed every tick, and the offsets
// moved on the others were not remembered, so the next tick took them for
// the lane's own commits and ran a full takeover again (duplicates).
func TestKeepUpQueueStableNeverCommitted(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithQueues(2), rocketmqtest.WithRetention(4, 0))
	const topic = "orders"
	if err := s.CreateTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := rawProducer(t, s)
	blue := tagctx.MustParse("blue")
	// One send per message, so both queues get some and lose offset 0.
	for i := range 20 {
		sendBatches(t, p, topic, blue, fmt.Sprintf("blue-%02d", i), 1)
	}
	var h handled
	c := newUnstarted(t, s, topic, h.handler)
	ctx := context.Background()
	written, err := c.takeover(ctx, blue, "blue_svc", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		sendBatches(t, p, topic, blue, fmt.Sprintf("later-%02d", i), 1)
	}
	qs := s.Queues(topic)
	if len(qs) != 2 {
		t.Fatalf("%d queues, want 2", len(qs))
	}
	if _, ok := s.CommittedOffset("svc", qs[1]); ok {
		t.Fatal("stable has an offset on queue 1 already; the test needs none")
	}
	// Stable consumed queue 0 to its end; it never committed on queue 1.
	if err := s.SetCommittedOffset("svc", qs[0], s.MaxOffset(qs[0])); err != nil {
		t.Fatal(err)
	}
	lane1, _ := s.CommittedOffset("blue_svc", qs[1])
	next, relive, err := c.keepUp(ctx, "blue_svc", nil, written, func() bool { return true })
	if err != nil || relive {
		t.Fatalf("keepUp: relive %v, %v", relive, err)
	}
	if got, want := mustOffset(t, s, "blue_svc", qs[0]), s.MaxOffset(qs[0]); got != want {
		t.Errorf("lane offset on queue 0 = %d, want stable's %d", got, want)
	}
	if got := mustOffset(t, s, "blue_svc", qs[1]); got != lane1 {
		t.Errorf("lane offset on queue 1 = %d, want it left at %d", got, lane1)
	}
	// The next tick sees its own writes, not a lane that lived.
	if _, relive, err := c.keepUp(ctx, "blue_svc", nil, next, func() bool { return true }); err != nil || relive {
		t.Errorf("second keepUp: relive %v, %v", relive, err)
	}
}

func mustOffset(t *testing.T, s *rocketmqtest.Server, group string, q primitive.MessageQueue) int64 {
	t.Helper()
	off, ok := s.CommittedOffset(group, q)
	if !ok {
		t.Fatalf("group %q has no offset on %v", group, q)
	}
	return off
}
