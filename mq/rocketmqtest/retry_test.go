package rocketmqtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestRetryLaterRedeliversThroughRetryTopic(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithDelayLevels(100*time.Millisecond))
	const topic, group = "retry", "retry-group"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	// On a group's very first start, v2.1.2 fetches routes before its first
	// heartbeat creates %RETRY%<group>, so it would find the retry route
	// only at its 30 s route refresh and pull it at the next 20 s
	// rebalance (ROCKETMQ-FACTS: redelivery 20-40 s after the RetryLater).
	// Creating the retry topic up front, as an operator can with mqadmin,
	// keeps this test fast; the timing of the first start is not what it
	// is about.
	if err := s.CreateTopic(rocketmqtest.RetryTopic(group), 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, s)
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("retry-me")).WithTag("t1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, group, topic, rec, func(m *primitive.MessageExt) consumer.ConsumeResult {
		if m.ReconsumeTimes == 0 {
			return consumer.ConsumeRetryLater
		}
		return consumer.ConsumeSuccess
	})
	waitFor(t, 10*time.Second, func() string {
		if n := len(rec.ByBody()["retry-me"]); n < 2 {
			return fmt.Sprintf("delivered %d times, want 2", n)
		}
		return ""
	}, rec.Changed)

	ds := rec.Deliveries()
	first, again := ds[0].Msg, ds[1].Msg
	if again.ReconsumeTimes != 1 {
		t.Errorf("redelivery ReconsumeTimes = %d, want 1", again.ReconsumeTimes)
	}
	if again.Topic != topic || again.Queue.Topic != rocketmqtest.RetryTopic(group) || again.Queue.QueueId != 0 {
		t.Errorf("redelivery topic %q from queue %v, want topic %q pulled from %s queue 0", again.Topic, again.Queue, topic, rocketmqtest.RetryTopic(group))
	}
	if again.MsgId != res.MsgID || string(again.Body) != "retry-me" || again.GetTags() != "t1" {
		t.Errorf("redelivery id %q body %q tags %q, want %q retry-me t1", again.MsgId, again.Body, again.GetTags(), res.MsgID)
	}
	want := map[string]string{
		"RETRY_TOPIC":       topic,
		"REAL_TOPIC":        rocketmqtest.RetryTopic(group),
		"REAL_QID":          "0",
		"DELAY":             "3",
		"WAIT":              "false",
		"CLUSTER":           rocketmqtest.DefaultClusterName,
		"ORIGIN_MESSAGE_ID": first.OffsetMsgId,
	}
	for k, v := range want {
		if got := again.GetProperty(k); got != v {
			t.Errorf("redelivery property %s = %q, want %q", k, got, v)
		}
	}
}

func TestRetryExhaustedGoesToDLQ(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithDelayLevels(10*time.Millisecond))
	const topic, group = "dlq", "dlq-group"
	for _, tp := range []string{topic, rocketmqtest.RetryTopic(group)} {
		if err := s.CreateTopic(tp, 1); err != nil {
			t.Fatal(err)
		}
	}
	p := newProducer(t, s)
	sendAll(t, p, topic, []string{"poison"})
	newPushConsumer(t, s, group, topic, nil, func(*primitive.MessageExt) consumer.ConsumeResult {
		return consumer.ConsumeRetryLater
	}, consumer.WithMaxReconsumeTimes(2))
	waitFor(t, 10*time.Second, func() string {
		if n := len(s.Messages(rocketmqtest.DLQTopic(group))); n != 1 {
			return fmt.Sprintf("%d messages in the DLQ, want 1", n)
		}
		return ""
	}, nil)
	if got := s.Messages(rocketmqtest.DLQTopic(group))[0].ReconsumeTimes; got != 3 {
		t.Errorf("DLQ message ReconsumeTimes = %d, want 3", got)
	}
}
