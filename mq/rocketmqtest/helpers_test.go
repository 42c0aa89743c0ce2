package rocketmqtest_test

import (
	"context"
	"fmt"
	"strings"
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

// waitFor polls cond until it returns "" or the deadline passes; wake, if
// not nil, returns a channel that ends the wait between polls early.
func waitFor(t testing.TB, timeout time.Duration, cond func() string, wake func() <-chan struct{}) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var woken <-chan struct{} // nil: wait for the tick
		if wake != nil {
			woken = wake()
		}
		why := cond()
		if why == "" {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("after %v: %s", timeout, why)
		case <-tick.C:
		case <-woken:
		}
	}
}

type pushConsumer struct {
	rocketmq.PushConsumer
	name string
}

// newPushConsumer starts a push consumer with its own client instance and
// records what it receives; handle may be nil (always ConsumeSuccess).
func newPushConsumer(t testing.TB, s *rocketmqtest.Server, group, topic string, rec *rocketmqtest.Recorder,
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
			rec.Record(ctx, name, msgs...)
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
