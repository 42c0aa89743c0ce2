package mq

import (
	"slices"
	"sync"
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
	// track holds, for offline lanes whose takeover is pending, the
	// messages of their tag this instance handled itself, so the takeover
	// does not hand them over again.
	track map[tagctx.Tag]*handledSet
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

// noteHandled records that this instance handled m of tag t, if t is an
// offline lane awaiting its takeover.
func (v *view) noteHandled(t tagctx.Tag, m *primitive.MessageExt) {
	if v == nil || len(v.track) == 0 || t.IsZero() {
		return
	}
	if h := v.track[t]; h != nil {
		h.add(m)
	}
}

// filter decides per message. It is immutable.
type filter struct {
	key  string
	lane tagctx.Tag // zero for a stable consumer
	// below maps each lane whose messages this consumer may handle in
	// another's place to the lanes whose consumers come before it: the
	// lane itself and its parents up to this consumer's lane (excluded),
	// or, for stable, its whole chain. Stable handles any lane's messages,
	// so a lane with no chain is absent there and stands for itself; a
	// lane consumer handles only its descendants', the lanes listed.
	below map[tagctx.Tag][]tagctx.Tag
	// parents is every lane's parent chain, for the route proof.
	parents map[tagctx.Tag][]tagctx.Tag
}

// newFilter precomputes below from the chains (checked: a tree), so a
// decision costs a map lookup and a walk of one chain, and no allocation.
func newFilter(key string, lane tagctx.Tag, chains map[tagctx.Tag][]tagctx.Tag) filter {
	f := filter{key: key, lane: lane, parents: chains}
	for t, chain := range chains {
		seg := append([]tagctx.Tag{t}, chain...)
		if !lane.IsZero() {
			i := slices.Index(chain, lane)
			if i < 0 {
				continue
			}
			seg = seg[:i+1]
		}
		if f.below == nil {
			f.below = map[tagctx.Tag][]tagctx.Tag{}
		}
		f.below[t] = seg
	}
	return f
}

// handler reports whether this consumer handles other lanes' messages
// when they are offline: stable, and a lane that is some chain's parent.
// Such a consumer watches those lanes and takes them over.
func (f *filter) handler() bool { return f.lane.IsZero() || len(f.below) > 0 }

// watches reports whether t is a lane this consumer handles in its place.
func (f *filter) watches(t tagctx.Tag) bool {
	if t.IsZero() || t == f.lane {
		return false
	}
	if f.lane.IsZero() {
		return true
	}
	_, ok := f.below[t]
	return ok
}

// segment returns the lanes whose consumers come before this one for
// messages of t (t first): t's lane and its parents below this consumer.
// It does not allocate for a chain; a lone lane gets a fresh slice.
func (f *filter) segment(t tagctx.Tag) []tagctx.Tag {
	if seg, ok := f.below[t]; ok {
		return seg
	}
	return []tagctx.Tag{t}
}

// route is the route proof of a handled message of tag t.
func (f *filter) route(t tagctx.Tag) tagctx.Route {
	if f.lane.IsZero() || t == f.lane {
		return tagctx.Decide(t, f.lane)
	}
	return tagctx.Decide(t, f.lane, f.parents[t]...)
}

// decide returns the message's tag, the verdict, and, for a present but
// invalid tag, why it was rejected (the message is then untagged).
// online is the consumer's set of online lanes (nil: none or stale).
func (f *filter) decide(m *primitive.MessageExt, online map[tagctx.Tag]struct{}) (tagctx.Tag, verdict, error) {
	return f.decideRaw(m.GetProperty(f.key), m.ReconsumeTimes > 0, online)
}

// decideRaw is decide on the property value already read; retry says the
// message is a redelivery from the group's own retry topic.
func (f *filter) decideRaw(raw string, retry bool, online map[tagctx.Tag]struct{}) (tagctx.Tag, verdict, error) {
	var (
		t   tagctx.Tag
		err error
	)
	if raw != "" {
		t, err = tagctx.Parse(raw)
	}
	return t, f.verdict(t, err, retry, online), err
}

// verdict decides on a parsed tag: t is zero for an untagged message and
// for one whose tag was rejected (rej).
//
// A consumer skips a message of lane T that it may handle in T's place
// (stable: any; lane X: T below X in a chain) only if it believes, on a
// fresh view, that a consumer before it is online: T's or that of a parent
// of T below it. Else it handles it (route proof "fallback"). A stale view
// (online nil) handles all of them: a duplicate is acceptable, a loss is
// not.
func (f *filter) verdict(t tagctx.Tag, rej error, retry bool, online map[tagctx.Tag]struct{}) verdict {
	if !f.lane.IsZero() {
		if rej == nil && t == f.lane {
			return handle
		}
		seg, ok := f.below[t]
		if !ok || rej != nil {
			return skip // stable's, or another lane's
		}
		// A redelivery from its own retry topic was a message it decided
		// to handle; nobody else will see it.
		if retry || len(online) == 0 {
			return handle
		}
		for _, a := range seg {
			if _, ok := online[a]; ok {
				return skip
			}
		}
		return handle
	}
	// Stable: untagged and invalid input (never routed into a lane) are
	// its own. A redelivery from its own retry topic was a message it
	// decided to handle; the lane's group will never see it.
	if t.IsZero() || retry || len(online) == 0 {
		return handle
	}
	if seg, ok := f.below[t]; ok {
		for _, a := range seg {
			if _, ok := online[a]; ok {
				return skip
			}
		}
		return handle
	}
	if _, ok := online[t]; ok {
		return skip
	}
	return handle
}

// maxTracked caps a handledSet.
const maxTracked = 1 << 20

// msgPos identifies a message in a topic's queue. The topic is the queue's
// (a redelivery's is the group's retry topic, not the message's): queues
// of different topics share broker names, IDs and offsets, and a position
// of one taken for another's would make a takeover leave out a message
// nobody handled.
type msgPos struct {
	topic  string
	broker string
	queue  int
	offset int64
}

// handledSet is the positions of messages a stable instance handled for
// one offline lane before its takeover ran.
type handledSet struct {
	mu sync.Mutex
	m  map[msgPos]struct{}
}

func (h *handledSet) add(m *primitive.MessageExt) {
	if m.Queue == nil {
		return
	}
	h.mu.Lock()
	// Past the cap (a takeover that cannot complete for long), forgetting
	// costs only duplicates.
	if len(h.m) < maxTracked {
		h.m[msgPos{m.Queue.Topic, m.Queue.BrokerName, m.Queue.QueueId, m.QueueOffset}] = struct{}{}
	}
	h.mu.Unlock()
}

func (h *handledSet) has(p msgPos) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.m[p]
	return ok
}
