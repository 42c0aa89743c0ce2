package rocketmqtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestPullConsumer(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "pull"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s)
	sendAll(t, p, topic, bodies("pull", 10))

	pc := newPullConsumer(t, s, "pull-group", topic)
	ctx := context.Background()
	mq := primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}

	r, err := pc.PullFrom(ctx, &mq, 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != primitive.PullFound || len(r.GetMessageExts()) != 10 || r.NextBeginOffset != 10 || r.MinOffset != 0 || r.MaxOffset != 10 {
		t.Fatalf("PullFrom(0, 32) = %v with %d messages, want FOUND n=10 next=10 min=0 max=10", r, len(r.GetMessageExts()))
	}
	if r, err = pc.PullFrom(ctx, &mq, 4, 3); err != nil || len(r.GetMessageExts()) != 3 || r.NextBeginOffset != 7 {
		t.Fatalf("PullFrom(4, 3) = %v, %v: want 3 messages, next=7", r, err)
	}
	if got := string(r.GetMessageExts()[0].Body); got != "pull-004" {
		t.Errorf("message at offset 4 = %q, want pull-004", got)
	}
	if r, err = pc.PullFrom(ctx, &mq, 15, 32); err != nil || r.Status != primitive.PullOffsetIllegal || r.NextBeginOffset != 10 {
		t.Fatalf("PullFrom(15) = %v, %v: want OFFSET_ILLEGAL next=10", r, err)
	}

	// Long polling: a pull at the end of the queue is held and answered as
	// soon as a message arrives. The pull consumer's own loop holds pulls on
	// the queue too, so count ours on top of those.
	held := s.HeldPulls()
	type result struct {
		r   *primitive.PullResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := pc.PullFrom(ctx, &mq, 10, 32)
		done <- result{r, err}
	}()
	waitFor(t, 5*time.Second, func() string {
		if s.HeldPulls() <= held {
			return "pull at the end of the queue not held"
		}
		return ""
	}, nil)
	sendAll(t, p, topic, []string{"late"})
	select {
	case res := <-done:
		if res.err != nil || res.r.Status != primitive.PullFound || string(res.r.GetMessageExts()[0].Body) != "late" {
			t.Fatalf("held pull = %v, %v: want FOUND with the late message", res.r, res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held pull not woken by a new message")
	}
}
