package mq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// TestProducerStampsEverySendKind: every send kind carries the effective
// tag in the property, and an untagged send removes a stale one.
func TestProducerStampsEverySendKind(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	const topic = "stamp"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s)
	blue := tagctx.With(context.Background(), tagctx.MustParse("blue"))
	untagged := tagctx.WithUntagged(context.Background())
	msg := func(body string) *primitive.Message {
		m := primitive.NewMessage(topic, []byte(body))
		m.WithProperty("x-tag", "stale") // copied from an incoming message, say
		return m
	}
	if _, err := p.SendSync(blue, msg("sync")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(blue, msg("batch-1"), msg("batch-2")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(untagged, msg("sync-untagged")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := p.SendAsync(blue, func(_ context.Context, _ *primitive.SendResult, err error) { done <- err }, msg("async")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.SendOneWay(blue, msg("oneway")); err != nil {
		t.Fatal(err)
	}
	// Nobody replies: Request times out, but the request message is sent.
	if _, err := p.Request(blue, 50*time.Millisecond, msg("request")); err == nil {
		t.Error("Request without a replier: want a timeout")
	}
	if err := p.RequestAsync(blue, 50*time.Millisecond, func(context.Context, *primitive.Message, error) {}, msg("request-async")); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sync": "blue", "batch-1": "blue", "batch-2": "blue", "sync-untagged": "",
		"async": "blue", "oneway": "blue", "request": "blue", "request-async": "blue",
	}
	waitFor(t, 5*time.Second, func() string {
		if n := len(s.Messages(topic)); n < len(want) {
			return fmt.Sprintf("%d of %d messages stored", n, len(want))
		}
		return ""
	})
	got := map[string]string{}
	for _, m := range s.Messages(topic) {
		got[string(m.Body)] = m.GetProperty("x-tag")
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stored x-tag by body (-got +want):\n%s", diff)
	}
}

func TestProducerPropertyKey(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	p := newProducer(t, s) // stamps x-tag
	p2, err := mq.WrapProducer(p, mq.WithPropertyKey("lane"))
	if err != nil {
		t.Fatal(err)
	}
	m := primitive.NewMessage("key", []byte("m"))
	if _, err := p2.SendSync(tagctx.With(context.Background(), tagctx.MustParse("blue")), m); err != nil {
		t.Fatal(err)
	}
	if got := s.Messages("key")[0].GetProperty("lane"); got != "blue" {
		t.Errorf("property lane = %q, want blue", got)
	}
}

// TestConsumerShutdownWithoutStart: a consumer that never started shuts
// down cleanly, and twice.
func TestConsumerShutdownWithoutStart(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	c, err := mq.NewConsumer("svc", mq.WithNameServer(s.NameServer()), mq.WithNode(tagctx.Tag{}), mq.WithInstanceName(instance("unstarted")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Group() != "svc" || !c.Tag().IsZero() {
		t.Errorf("group %q tag %q, want svc and stable", c.Group(), c.Tag())
	}
	c.Shutdown()
	c.Shutdown()
	if err := c.Start(); err == nil {
		t.Error("Start after Shutdown: want an error")
	}
}
