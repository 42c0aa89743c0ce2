package mq

import (
	"sync"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

func msgAt(topic, broker string, queue int, offset int64) *primitive.MessageExt {
	m := &primitive.MessageExt{QueueOffset: offset}
	m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: broker, QueueId: queue}
	return m
}

// TestHandledSetPositions: a handled position is its queue's, topic
// included, so a message handled on one topic (or redelivered from the
// group's retry topic) never stands for the one at the same broker, queue
// ID and offset of another topic.
func TestHandledSetPositions(t *testing.T) {
	h := &handledSet{m: map[msgPos]struct{}{}}
	h.add(msgAt("orders", "broker-a", 0, 5))
	h.add(msgAt("%RETRY%svc", "broker-a", 1, 7))
	h.add(&primitive.MessageExt{QueueOffset: 9}) // no queue: not remembered
	for _, tc := range []struct {
		name string
		pos  msgPos
		want bool
	}{
		{"the handled one", msgPos{"orders", "broker-a", 0, 5}, true},
		{"same position, other topic", msgPos{"payments", "broker-a", 0, 5}, false},
		{"same position as a retry", msgPos{"orders", "broker-a", 1, 7}, false},
		{"the retry itself", msgPos{"%RETRY%svc", "broker-a", 1, 7}, true},
		{"other broker", msgPos{"orders", "broker-b", 0, 5}, false},
		{"other offset", msgPos{"orders", "broker-a", 0, 6}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.has(tc.pos); got != tc.want {
				t.Errorf("has(%+v) = %v, want %v", tc.pos, got, tc.want)
			}
		})
	}
}

// BenchmarkHandledSet is what the leader pays per message it handles for
// a lane whose takeover is pending (add, on the consume path) plus one
// takeover lookup (has): "topic" is the set as it is, "no topic" the same
// set keyed as before, without the topic: the baseline.
func BenchmarkHandledSet(b *testing.B) {
	msgs := make([]*primitive.MessageExt, 4096)
	for i := range msgs {
		msgs[i] = msgAt("orders", "broker-a", i%8, int64(i))
	}
	b.Run("topic", func(b *testing.B) {
		h := &handledSet{m: map[msgPos]struct{}{}}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := msgs[i%len(msgs)]
			h.add(m)
			if !h.has(msgPos{m.Queue.Topic, m.Queue.BrokerName, m.Queue.QueueId, m.QueueOffset}) {
				b.Fatal("not found")
			}
		}
	})
	type oldPos struct {
		broker string
		queue  int
		offset int64
	}
	b.Run("no topic", func(b *testing.B) {
		var mu sync.Mutex
		set := map[oldPos]struct{}{}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m := msgs[i%len(msgs)]
			mu.Lock()
			if len(set) < maxTracked {
				set[oldPos{m.Queue.BrokerName, m.Queue.QueueId, m.QueueOffset}] = struct{}{}
			}
			mu.Unlock()
			mu.Lock()
			_, ok := set[oldPos{m.Queue.BrokerName, m.Queue.QueueId, m.QueueOffset}]
			mu.Unlock()
			if !ok {
				b.Fatal("not found")
			}
		}
	})
}
