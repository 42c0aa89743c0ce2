package mq

import (
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/tagctx"
)

// verdict is what a consumer does with one message.
type verdict uint8

const (
	// handle: give it to the user's handler.
	handle verdict = iota
	// skip: ack it unhandled; it belongs to another consumer group.
	skip
)

// view is one published liveness reading of a stable consumer. It is never
// modified after publication, so the hot path reads it through an
// atomic.Pointer without a lock.
type view struct {
	online map[tagctx.Tag]struct{}
	// until is when the view stops being fresh: the start of the refresh
	// that produced it plus the staleness bound.
	until time.Time
}

// onlineAt returns the lanes to skip at now: none when the view is stale,
// because a stable consumer that cannot see the lanes must handle their
// messages (a duplicate is acceptable, a loss is not).
func (v *view) onlineAt(now time.Time) map[tagctx.Tag]struct{} {
	if v == nil || !now.Before(v.until) {
		return nil
	}
	return v.online
}

// filter decides per message. It is immutable.
type filter struct {
	key  string
	lane tagctx.Tag // zero for a stable consumer
}

// decide returns the message's tag, the verdict, and, for a present but
// invalid tag, why it was rejected (the message is then untagged).
// online is the stable consumer's set of online lanes (nil: none or stale).
func (f *filter) decide(m *primitive.MessageExt, online map[tagctx.Tag]struct{}) (tagctx.Tag, verdict, error) {
	raw := m.GetProperty(f.key)
	if raw == "" {
		if f.lane.IsZero() {
			return tagctx.Tag{}, handle, nil
		}
		return tagctx.Tag{}, skip, nil
	}
	t, err := tagctx.Parse(raw)
	if err != nil {
		// Invalid input is never routed into a lane: stable handles it
		// as untagged and reports why.
		if f.lane.IsZero() {
			return tagctx.Tag{}, handle, err
		}
		return tagctx.Tag{}, skip, err
	}
	if !f.lane.IsZero() {
		if t == f.lane {
			return t, handle, nil
		}
		return t, skip, nil
	}
	// A redelivery from the group's own retry topic was a message this
	// group decided to handle; the lane's group will never see it.
	if m.ReconsumeTimes > 0 {
		return t, handle, nil
	}
	if _, ok := online[t]; ok {
		return t, skip, nil
	}
	return t, handle, nil
}
