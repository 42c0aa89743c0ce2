package rocketmqtest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// instanceSeq makes client instance names unique in the test binary:
// rocketmq-client-go keeps clients in a process-wide map keyed by
// "ip@instance", and refuses a second one for another name server.
var instanceSeq atomic.Int64

func instance(name string) string {
	return fmt.Sprintf("%s-%d", name, instanceSeq.Add(1))
}

func newProducer(t testing.TB, s *rocketmqtest.Server, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	opts = append([]producer.Option{
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName(instance("producer")),
		producer.WithRetry(0),
	}, opts...)
	p, err := rocketmq.NewProducer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// delivery is one message handed to a handler.
type delivery struct {
	consumer string
	msg      *primitive.MessageExt
}

// recorder collects deliveries from several consumers.
type recorder struct {
	mu   sync.Mutex
	all  []delivery
	cond chan struct{} // signalled on every delivery
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{}, 1)} }

func (r *recorder) add(name string, msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	for _, m := range msgs {
		r.all = append(r.all, delivery{name, m})
	}
	r.mu.Unlock()
	select {
	case r.cond <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// byBody maps each body to the consumers that received it.
func (r *recorder) byBody() map[string][]string {
	out := map[string][]string{}
	for _, d := range r.snapshot() {
		out[string(d.msg.Body)] = append(out[string(d.msg.Body)], d.consumer)
	}
	return out
}

// waitBodies waits until every body in want was received at least once.
func (r *recorder) waitBodies(t testing.TB, timeout time.Duration, want []string) {
	t.Helper()
	waitFor(t, timeout, func() string {
		got := r.byBody()
		var missing []string
		for _, b := range want {
			if len(got[b]) == 0 {
				missing = append(missing, b)
			}
		}
		if len(missing) == 0 {
			return ""
		}
		return fmt.Sprintf("%d of %d messages not received, first %q", len(missing), len(want), missing[0])
	}, r.cond)
}

// waitFor polls cond until it returns "" or the deadline passes; wake, if
// not nil, shortens the wait between polls.
func waitFor(t testing.TB, timeout time.Duration, cond func() string, wake <-chan struct{}) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		why := cond()
		if why == "" {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("after %v: %s", timeout, why)
		case <-tick.C:
		case <-wake:
		}
	}
}

type pushConsumer struct {
	rocketmq.PushConsumer
	name string
}

// newPushConsumer starts a push consumer with its own client instance and
// records what it receives; handle may be nil (always ConsumeSuccess).
func newPushConsumer(t testing.TB, s *rocketmqtest.Server, group, topic string, rec *recorder,
	handle func(*primitive.MessageExt) consumer.ConsumeResult, opts ...consumer.Option) *pushConsumer {
	t.Helper()
	rocketmqtest.SkipIfClientRaces(t)
	name := instance("consumer")
	opts = append([]consumer.Option{
		consumer.WithNameServer([]string{s.NameServer()}),
		consumer.WithGroupName(group),
		consumer.WithInstance(name),
	}, opts...)
	c, err := rocketmq.NewPushConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		result := consumer.ConsumeSuccess
		for _, m := range msgs {
			if handle != nil && handle(m) != consumer.ConsumeSuccess {
				result = consumer.ConsumeRetryLater
			}
		}
		if rec != nil {
			rec.add(name, msgs...)
		}
		return result, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pc := &pushConsumer{PushConsumer: c, name: name}
	t.Cleanup(func() { c.Shutdown() })
	return pc
}

// clientID finds the client ID the broker knows a consumer instance by.
func clientID(t testing.TB, s *rocketmqtest.Server, group, instance string) string {
	t.Helper()
	var id string
	waitFor(t, 5*time.Second, func() string {
		for _, c := range s.OnlineConsumers(group) {
			if strings.HasSuffix(c, "@"+instance) {
				id = c
				return ""
			}
		}
		return fmt.Sprintf("instance %q not online in group %q: %v", instance, group, s.OnlineConsumers(group))
	}, nil)
	return id
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func sendAll(t testing.TB, p rocketmq.Producer, topic string, bs []string) {
	t.Helper()
	for _, b := range bs {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b))); err != nil {
			t.Fatalf("send %q: %v", b, err)
		}
	}
}
