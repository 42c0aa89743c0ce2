package mq

import (
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/hooks"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// The prefilter skips messages on the pull goroutine. rocketmq-client-go
// v2.1.2 runs every FilterMessageHook on each pulled batch before the
// batch reaches the process queue, and only what the hook returns is
// consumed: a message dropped there never gets the goroutine, the three
// context allocations, the property write and the ack round the client
// spends on every message it hands to the callback. A lane consumer skips
// everything but its tag, and a stable consumer every message of an online
// lane, so this is most of their work.
//
// Offsets: the client commits the smallest offset still in the process
// queue, or one past the largest offset put into it once it is empty. A
// message dropped from the middle of a batch never holds that back, but
// dropping a batch's last message (or all of it) would leave the group's
// committed offset behind until a later message is consumed. So the last
// message always goes the normal way, where the consume path decides it
// again; then the committed offset advances exactly as without the hook.
// See the package documentation for why skipping earlier loses nothing.

// prefilterOption installs c's prefilter as the push consumer's filter
// hook. NewConsumer puts it before the options of WithConsumerOptions, so a
// consumer.WithFilterMessageHook there replaces it (v2.1.2 keeps only the
// last list set): the user's hooks run, and every message is decided on
// the consume path as without the prefilter, so only the saving is lost.
func prefilterOption(c **Consumer) consumer.Option {
	return consumer.WithFilterMessageHook([]hooks.FilterMessageHook{
		func(fc *hooks.FilterMessageContext) ([]*primitive.MessageExt, error) {
			return (*c).prefilter(fc.Msg), nil
		},
	})
}

// prefilter returns msgs without the ones c skips, except the last one.
// It allocates only when it drops something.
func (c *Consumer) prefilter(msgs []*primitive.MessageExt) []*primitive.MessageExt {
	if len(msgs) < 2 {
		return msgs
	}
	online := onlineNow(c.view.Load())
	if c.tag.IsZero() && len(online) == 0 {
		// A stable consumer skips only online lanes' tags: nothing to
		// read. (Its retries and untagged messages are handled anyway.)
		return msgs
	}
	var kept []*primitive.MessageExt
	last := len(msgs) - 1
	for i, m := range msgs[:last] {
		if _, v, _ := c.filter.decide(m, online); v == skip {
			if kept == nil {
				kept = make([]*primitive.MessageExt, i, len(msgs)-1)
				copy(kept, msgs[:i])
			}
			c.skipped.Add(1)
			continue
		}
		if kept != nil {
			kept = append(kept, m)
		}
	}
	if kept == nil {
		return msgs
	}
	// As the consume path does between its decision and the ack: a
	// frozen instance (tests: Freeze) holds what it decided to skip.
	if c.pause.Load() != nil {
		c.hold()
	}
	return append(kept, msgs[last])
}
