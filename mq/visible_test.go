package mq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// TestWaitVisible: a lane consumer's Start returns once the brokers list
// it and a refresh has passed, so the stable consumer sees it then; when
// the brokers cannot say, Start reports ErrNotVisible after its bound and
// the consumer keeps running.
func TestWaitVisible(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "visible"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	if err := stable.WaitVisible(context.Background()); err != nil {
		t.Errorf("WaitVisible on a started stable consumer: %v", err)
	}

	unstarted, err := mq.NewConsumer("svc", testOpts(s, mq.WithNode(tagctx.MustParse("blue")))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := unstarted.WaitVisible(context.Background()); err == nil || !strings.Contains(err.Error(), "before Start") {
		t.Errorf("WaitVisible before Start: %v, want an error saying so", err)
	}
	unstarted.Shutdown()

	start := time.Now()
	lane := startConsumer(t, s, "svc", topic, "blue", nil, rec)
	took := time.Since(start)
	if took < testRefresh+testMargin {
		t.Errorf("lane Start returned after %v, before a refresh interval and the margin (%v) could pass", took, testRefresh+testMargin)
	}
	if err := lane.WaitVisible(context.Background()); err != nil {
		t.Errorf("WaitVisible after Start: %v", err)
	}
	waitOnline(t, stable, "blue")

	// The brokers cannot list members: Start gives up after its bound.
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{Code: rocketmqtest.SystemBusy})
	defer s.ClearFaults()
	c, err := mq.NewConsumer("svc", testOpts(s, mq.WithNode(tagctx.MustParse("green")),
		mq.WithInstanceName(instance("svc-green")), mq.WithStartWait(300*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	if err := c.Subscribe(topic, consumer.MessageSelector{}, nop); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); !errors.Is(err, mq.ErrNotVisible) || !strings.Contains(err.Error(), c.Group()) {
		t.Errorf("Start while the brokers cannot list members: %v, want ErrNotVisible naming %q", err, c.Group())
	}
	s.ClearFaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitVisible(ctx); err != nil {
		t.Errorf("WaitVisible once the brokers answer again: %v", err)
	}
}
