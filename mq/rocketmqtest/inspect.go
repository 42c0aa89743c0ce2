package rocketmqtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// CreateTopic creates a topic with the given read/write queue count (the
// WithQueues value if queues <= 0) and perm 6 on every broker, like
// mqadmin updateTopic. An existing topic is resized. Use it for topics a
// consumer subscribes to before anything is sent: rocketmq-client-go refuses
// to start a consumer of a topic without a route.
func (s *Server) CreateTopic(topic string, queues int) error {
	if queues <= 0 {
		queues = s.cfg.queues
	}
	if queues > MaxQueues {
		return fmt.Errorf("rocketmqtest: queue count %d outside [1, %d]", queues, MaxQueues)
	}
	if !validTopic(topic) {
		return fmt.Errorf("rocketmqtest: invalid topic name %q", topic)
	}
	if s.closing.Load() {
		return errClosed
	}
	for _, b := range s.brokers {
		b.createTopic(topic, queues, permRW)
	}
	return nil
}

func (s *Server) broker(name string) *broker {
	for _, b := range s.brokers {
		if b.name == name {
			return b
		}
	}
	return nil
}

// Queues lists the queues of a topic on every broker.
func (s *Server) Queues(topic string) []primitive.MessageQueue {
	var out []primitive.MessageQueue
	for _, b := range s.brokers {
		b.mu.Lock()
		if t := b.topics[topic]; t != nil {
			for i := range t.queues {
				out = append(out, primitive.MessageQueue{Topic: topic, BrokerName: b.name, QueueId: i})
			}
		}
		b.mu.Unlock()
	}
	return out
}

// Messages returns the stored messages of a topic, broker by broker, queue
// by queue, in offset order, decoded as a consumer would see them (without
// the MIN_OFFSET/MAX_OFFSET properties the client adds).
func (s *Server) Messages(topic string) []*primitive.MessageExt {
	var out []*primitive.MessageExt
	for _, mq := range s.Queues(topic) {
		out = append(out, s.QueueMessages(mq)...)
	}
	return out
}

// QueueMessages returns the stored messages of one queue in offset order,
// from its min offset on.
func (s *Server) QueueMessages(mq primitive.MessageQueue) []*primitive.MessageExt {
	b := s.broker(mq.BrokerName)
	if b == nil {
		return nil
	}
	var data []byte
	b.mu.Lock()
	if q := b.queueLocked(mq.Topic, int64(mq.QueueId)); q != nil {
		for _, m := range q.msgs {
			data = append(data, m.data...)
		}
	}
	b.mu.Unlock()
	if len(data) == 0 {
		return nil
	}
	msgs := primitive.DecodeMessage(data)
	for _, m := range msgs {
		m.Queue = &primitive.MessageQueue{Topic: mq.Topic, BrokerName: mq.BrokerName, QueueId: mq.QueueId}
	}
	return msgs
}

// MaxOffset returns the offset the next message of the queue will get.
func (s *Server) MaxOffset(mq primitive.MessageQueue) int64 {
	b := s.broker(mq.BrokerName)
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.queueLocked(mq.Topic, int64(mq.QueueId)); q != nil {
		return q.maxOffset()
	}
	return 0
}

// MinOffset returns the offset of the oldest message the queue still holds:
// 0 unless retention (WithRetention) deleted messages.
func (s *Server) MinOffset(mq primitive.MessageQueue) int64 {
	b := s.broker(mq.BrokerName)
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.queueLocked(mq.Topic, int64(mq.QueueId)); q != nil {
		return q.min
	}
	return 0
}

// CommittedOffset returns the offset a group committed on a queue, and
// whether it committed one at all.
func (s *Server) CommittedOffset(group string, mq primitive.MessageQueue) (int64, bool) {
	b := s.broker(mq.BrokerName)
	if b == nil {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	off, ok := b.offsets[offsetKey(mq.Topic, group)][mq.QueueId]
	return off, ok
}

// SetCommittedOffset commits an offset for a group on a queue, as an
// UPDATE_CONSUMER_OFFSET request would.
func (s *Server) SetCommittedOffset(group string, mq primitive.MessageQueue, offset int64) error {
	b := s.broker(mq.BrokerName)
	if b == nil {
		return fmt.Errorf("rocketmqtest: no broker named %q", mq.BrokerName)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.commitOffsetLocked(group, mq.Topic, mq.QueueId, offset)
	return nil
}

// OnlineConsumers returns the client IDs of the group's live members on
// any broker, sorted: what GET_CONSUMER_LIST_BY_GROUP answers.
func (s *Server) OnlineConsumers(group string) []string {
	return s.union(func(b *broker) []string { return b.consumerIDs(group) })
}

// ConsumerGroups returns the groups that consume a topic on any broker,
// sorted: groups subscribed to it now and groups with offsets on it, the
// union QUERY_TOPIC_CONSUME_BY_WHO answers.
func (s *Server) ConsumerGroups(topic string) []string {
	return s.union(func(b *broker) []string { return b.consumeByWho(topic) })
}

// union returns what f answers on every broker, sorted, without repeats.
func (s *Server) union(f func(*broker) []string) []string {
	var out []string
	for _, b := range s.brokers {
		out = append(out, f(b)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RetryTopic returns the retry topic of a consumer group.
func RetryTopic(group string) string {
	if strings.HasPrefix(group, retryPrefix) {
		return group
	}
	return retryPrefix + group
}

// DLQTopic returns the dead-letter topic of a consumer group.
func DLQTopic(group string) string { return dlqPrefix + group }
