package mq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/tagctx"
)

// retryPrefix is RocketMQ's retry topic prefix (MixAll.RETRY_GROUP_TOPIC_PREFIX).
const retryPrefix = "%RETRY%"

// seed gives a lane group that never consumed a topic the stable group's
// committed offsets on every queue, so the lane starts where stable is: no
// replay of history, no gap. "Never consumed" cannot be read from
// QUERY_CONSUMER_OFFSET, which answers 0 for an unknown group; a group that
// consumed or committed is listed by QUERY_TOPIC_CONSUME_BY_WHO.
//
// A listed lane resumes from its own offsets, except on a queue the broker
// answers 22 QUERY_NOT_FOUND for (it has none there, and retention deleted
// offset 0): a seed cut short by the lane's death, or a queue added since.
// There the push consumer would start at the queue's max offset, above
// what stable, behind by a backlog, skips for the lane once it sees it;
// such a queue is seeded as a new lane's. (Where offset 0 is still stored,
// the broker answers 0 and the lane replays the queue: duplicates only.)
func (c *Consumer) seed(ctx context.Context) error {
	for _, s := range c.topics() {
		bs, err := c.admin.Route(ctx, s.topic)
		if err != nil {
			return fmt.Errorf("mq: seed lane group %q: %w", c.group, err)
		}
		for _, b := range bs {
			groups, err := c.admin.ConsumeByWho(ctx, b.Addr, s.topic)
			if err != nil {
				return fmt.Errorf("mq: seed lane group %q: %w", c.group, err)
			}
			listed := slices.Contains(groups, c.group)
			stablePresent := slices.Contains(groups, c.stable)
			for id := range b.Queues {
				q := admin.Queue{Addr: b.Addr, Topic: s.topic, ID: id}
				if listed {
					_, err := c.admin.CommittedOffset(ctx, q, c.group)
					if err == nil {
						continue // a restarted lane resumes from its own offsets
					}
					if !errors.Is(err, admin.ErrOffsetNotFound) {
						return fmt.Errorf("mq: seed lane group %q: %w", c.group, err)
					}
				}
				off, err := c.seedOffset(ctx, q, stablePresent)
				if err == nil {
					err = c.admin.UpdateOffset(ctx, q, c.group, off)
				}
				if err != nil {
					return fmt.Errorf("mq: seed lane group %q: %w", c.group, err)
				}
			}
		}
	}
	return nil
}

// seedOffset is where a lane starts on q: the stable group's committed
// offset; the queue's min offset if stable has none there yet (its
// consumer starts at the max offset of some earlier moment, not below the
// min: a replay, no gap); the max offset if no stable group consumes the
// topic on that broker (nobody owes this lane history; ConsumeFromLastOffset).
func (c *Consumer) seedOffset(ctx context.Context, q admin.Queue, stablePresent bool) (int64, error) {
	if !stablePresent {
		return c.admin.MaxOffset(ctx, q)
	}
	off, err := c.admin.CommittedOffset(ctx, q, c.stable)
	if errors.Is(err, admin.ErrOffsetNotFound) {
		return c.admin.MinOffset(ctx, q)
	}
	return off, err
}

// takeoverDelay is how long the leader waits, after the end of the refresh
// whose answer first said a lane is offline, before it reads the queues'
// max offsets and hands the lane's messages over. Every stable instance
// skips a lane's tag only on an "online" answer from a refresh that started
// before the lane left the brokers' list, hence before that end, and only
// for the staleness bound after that start (on its own clock). So once the
// delay has passed, no stable instance skips the tag any more, and every
// message one skipped was stored before, below the max offsets the takeover
// reads. The margin covers clock-rate differences and timer latency.
func (c *Consumer) takeoverDelay() time.Duration {
	return c.cfg.staleness + c.cfg.takeoverMargin
}

// takeoverTick does the leader's work for every offline lane. It returns
// how long to wait for the next tick: the refresh interval, or less when a
// pending takeover falls due sooner, so a takeover starts when its delay
// has passed rather than up to a refresh interval later.
func (c *Consumer) takeoverTick() time.Duration {
	next := c.cfg.refresh
	if !c.leader.Load() || !c.fresh() {
		return next
	}
	type job struct {
		tag     tagctx.Tag
		group   string
		pending bool
		written map[admin.Queue]int64
		handled *handledSet
		gen     uint64
	}
	now := time.Now()
	var jobs []job
	c.mu.Lock()
	for t, ls := range c.lanes {
		if ls.online {
			continue
		}
		if wait := c.takeoverDelay() - now.Sub(ls.offlineSince); ls.pending && wait <= 0 {
			jobs = append(jobs, job{tag: t, group: ls.group, pending: true, handled: ls.handled, gen: ls.gen})
		} else if ls.pending {
			next = min(next, max(wait, MinRefreshInterval))
		} else if ls.settled {
			jobs = append(jobs, job{tag: t, group: ls.group, written: ls.written, gen: ls.gen})
		}
	}
	c.mu.Unlock()
	for _, j := range jobs {
		select {
		case <-c.done:
			return next
		default:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if j.pending {
			written, err := c.takeover(ctx, j.tag, j.group, j.handled)
			c.mu.Lock()
			if ls := c.lanes[j.tag]; ls != nil && !ls.online && ls.gen == j.gen && err == nil {
				c.takeovers.Add(1)
				if ls.unwatched {
					// A lane instance may have lived unseen during the
					// wait and had its tag skipped past the max offsets
					// read: a new offline period, taken over after the
					// full delay from the offsets moved here.
					ls.turnOffline(time.Now())
				} else {
					// The tracking stops with the next view: what this
					// instance handles from now on is above the offsets
					// the takeover moved the lane to.
					ls.pending, ls.settled, ls.written, ls.handled = false, true, written, nil
				}
			}
			c.mu.Unlock()
		} else {
			still := func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				ls := c.lanes[j.tag]
				// The last answer must be recent enough that, with the
				// probe keepUp just made, no lane instance whose Start
				// returned could have lived unseen since: a refresh
				// held up (a pause) has not yet published its lapse.
				return ls != nil && !ls.online && ls.settled && ls.gen == j.gen &&
					time.Since(ls.seenStart) <= c.watchGap()
			}
			// An error leaves some queue for the next tick; what keepUp
			// wrote meanwhile is in written.
			written, relive, _ := c.keepUp(ctx, j.group, j.written, still)
			c.mu.Lock()
			if ls := c.lanes[j.tag]; ls != nil && !ls.online && ls.settled && ls.gen == j.gen {
				switch {
				case relive:
					// It lived and died between two refreshes: a new
					// offline period, taken over after the full delay.
					ls.turnOffline(time.Now())
				case written != nil:
					// What keepUp wrote, even if another queue failed:
					// an offset moved here but not remembered would look
					// like the lane's own commit next tick (a false
					// relive, a full takeover again: duplicates).
					ls.written = written
				}
			}
			c.mu.Unlock()
		}
		cancel()
	}
	return next
}

func (c *Consumer) fresh() bool {
	v := c.view.Load()
	return v != nil && time.Now().Before(v.until)
}

// takeover hands the offline lane's messages to the stable handler: on
// every queue, those of its tag from the lane group's committed offset to
// the queue's max offset, then the lane group's retry backlog; each queue's
// lane offset is moved past what was handed over. A handler failure stops
// that queue there, to be retried at the next tick.
func (c *Consumer) takeover(ctx context.Context, t tagctx.Tag, laneGroup string, done *handledSet) (map[admin.Queue]int64, error) {
	written := map[admin.Queue]int64{}
	var errs []error
	for _, s := range c.topics() {
		bs, err := c.admin.Route(ctx, s.topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, b := range bs {
			for id := range b.Queues {
				q := admin.Queue{Addr: b.Addr, Topic: s.topic, ID: id}
				off, ok, err := c.handoverQueue(ctx, q, b.Name, s.expr, t, laneGroup, done)
				if ok {
					written[q] = off
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := c.drainRetry(ctx, laneGroup); err != nil {
		errs = append(errs, err)
	}
	return written, errors.Join(errs...)
}

// drainRetry hands over everything in the lane group's retry topic up to
// its max offset. Retries still waiting in the broker's schedule surface
// later, so the leader calls it on every tick while the lane stays offline.
func (c *Consumer) drainRetry(ctx context.Context, laneGroup string) error {
	topic := retryPrefix + laneGroup
	bs, err := c.admin.Route(ctx, topic)
	if errors.Is(err, admin.ErrTopicNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bs {
		for id := range b.Queues {
			q := admin.Queue{Addr: b.Addr, Topic: topic, ID: id}
			if _, _, err := c.handoverQueue(ctx, q, b.Name, "*", tagctx.Tag{}, laneGroup, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// handoverQueue hands over q from the lane group's committed offset to the
// queue's max offset (see handover) and moves the lane group's offset past
// what was handed over. It returns the lane offset it leaves, and whether
// that offset is known (read, and written if it moved).
func (c *Consumer) handoverQueue(ctx context.Context, q admin.Queue, brokerName, expr string, t tagctx.Tag, laneGroup string, done *handledSet) (int64, bool, error) {
	lo, err := c.admin.CommittedOffset(ctx, q, laneGroup)
	if errors.Is(err, admin.ErrOffsetNotFound) {
		// The lane group has no offset here and retention deleted offset
		// 0: what the lane consumed there, if anything, is unknown, so
		// everything still stored is handed over (duplicates, no gap).
		lo, err = c.admin.MinOffset(ctx, q)
	}
	if err != nil {
		return 0, false, err
	}
	hi, err := c.admin.MaxOffset(ctx, q)
	if err != nil {
		return 0, false, err
	}
	reached, err := c.handover(ctx, q, brokerName, expr, t, lo, hi, done)
	if reached > lo {
		if uerr := c.admin.UpdateOffset(ctx, q, laneGroup, reached); uerr != nil {
			return 0, false, errors.Join(uerr, err)
		}
	}
	return max(reached, lo), true, err
}

type handedOverKey struct{}

// HandedOver reports whether the messages a handler (or an observer) is
// given were handed over to stable from a lane that went offline: skipped
// by stable while the lane was online, not consumed by the lane, and
// delivered late, once, by one stable instance. Their route is fallback,
// like any message of a tag with no lane online; this tells the late ones
// apart, for logs and for handlers that care about ordering.
func HandedOver(ctx context.Context) bool {
	v, _ := ctx.Value(handedOverKey{}).(bool)
	return v
}

// handover pulls [lo, hi) of q and hands the messages of tag t (all
// messages, for the zero t: a lane's retry topic holds only what the lane
// handled) to the stable handler, grouped by tag, leaving out those done
// lists (this instance handled them itself). It returns the offset up to
// which everything was handed over.
func (c *Consumer) handover(ctx context.Context, q admin.Queue, brokerName, expr string, t tagctx.Tag, lo, hi int64, done *handledSet) (int64, error) {
	off := lo
	hctx := context.WithValue(ctx, handedOverKey{}, true)
	for off < hi {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		r, err := c.admin.Pull(ctx, q, brokerName, c.stable, expr, off, c.cfg.handoverBatch)
		if err != nil {
			return off, err
		}
		if len(r.Msgs) == 0 {
			if r.Next <= off {
				// The broker gives nothing below the max offset read
				// before: settling here would leave [off, hi) to no one.
				return off, fmt.Errorf("mq: hand over %s: no message at %d, below the max offset %d", q, off, hi)
			}
			off = min(r.Next, hi)
			continue
		}
		var groups []tagGroup
		next := off
		for _, m := range r.Msgs {
			if m.QueueOffset >= hi {
				break
			}
			next = m.QueueOffset + 1
			mt, _, rej := c.filter.decide(m, nil)
			if !t.IsZero() && (rej != nil || mt != t) {
				continue
			}
			if done != nil && done.has(msgPos{q.Topic, brokerName, q.ID, m.QueueOffset}) {
				c.notHandedOver.Add(1)
				continue
			}
			i := 0
			for ; i < len(groups); i++ {
				if groups[i].tag == mt && (groups[i].rejected == nil) == (rej == nil) {
					break
				}
			}
			if i == len(groups) {
				groups = append(groups, tagGroup{tag: mt, rejected: rej})
			}
			groups[i].msgs = append(groups[i].msgs, m)
		}
		if next == off {
			next = min(r.Next, hi)
		}
		for _, g := range groups {
			topic := g.msgs[0].Topic
			s := c.subscriptionOf(topic)
			if s == nil {
				return off, fmt.Errorf("mq: hand over %s: no handler for topic %q", q, topic)
			}
			res, err := c.deliver(hctx, s, g.tag, g.rejected, tagctx.RouteFallback, g.msgs)
			if err == nil && res != consumer.ConsumeSuccess {
				err = fmt.Errorf("mq: hand over %s at %d: handler asked to retry", q, off)
			}
			if err != nil {
				return off, err
			}
			c.redelivered.Add(uint64(len(g.msgs)))
		}
		off = next
	}
	return off, nil
}

// keepUp runs while a settled lane stays offline: it drains the lane's
// retry topic and moves the lane's offsets up to the stable group's
// committed offsets, which stable reached handling the tag itself, so a
// lane restarted later does not replay them. relive reports that someone
// else moved the lane's offsets (the lane lived between two refreshes), or
// that the routes now hold a queue the takeover did not cover: its skipped
// messages need a full takeover again. still reports whether
// this instance's state still has the lane settled in the same offline
// period.
//
// Why moving up to stable's committed offsets loses nothing: the takeover
// covered every message skipped in this offline period (see
// takeoverDelay), and since then no stable instance skipped the tag, the
// lane being offline. Below stable's committed offset every message was
// consumed, so handled. A lane that comes back resumes from the offsets
// written here, and stable skips for it only messages it had not consumed
// yet, at or above its committed offset.
func (c *Consumer) keepUp(ctx context.Context, laneGroup string, written map[admin.Queue]int64, still func() bool) (map[admin.Queue]int64, bool, error) {
	// A queue the takeover did not cover (its broker was missing from the
	// route then, or the topic grew since) may hold messages stable skipped
	// for the lane: hand over in full again, now that it is there.
	if routes, ok := c.brokersOf(ctx); ok {
		for topic, bs := range routes {
			for _, b := range bs {
				for id := range b.Queues {
					if _, covered := written[admin.Queue{Addr: b.Addr, Topic: topic, ID: id}]; !covered {
						return nil, true, nil
					}
				}
			}
		}
	}
	var errs []error
	if err := c.drainRetry(ctx, laneGroup); err != nil {
		errs = append(errs, err)
	}
	type move struct {
		q  admin.Queue
		to int64
	}
	var moves []move
	checked := time.Now()
	next := make(map[admin.Queue]int64, len(written))
	for q, w := range written {
		next[q] = w
		lane, err := c.admin.CommittedOffset(ctx, q, laneGroup)
		if errors.Is(err, admin.ErrOffsetNotFound) {
			// The takeover found nothing to move here (an empty queue
			// whose offset 0 retention deleted, or never stored) and no
			// lane instance committed since: nothing to tell, nothing
			// to keep up (a restarted lane seeds such a queue).
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if lane != w {
			return nil, true, nil
		}
		st, err := c.admin.CommittedOffset(ctx, q, c.stable)
		if errors.Is(err, admin.ErrOffsetNotFound) {
			// Stable never committed here and retention deleted offset
			// 0 (22 QUERY_NOT_FOUND): stable reached nothing on this
			// queue to keep up with yet. Leaving the lane's offset is
			// safe (a restarted lane replays, duplicates at worst).
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st > lane {
			moves = append(moves, move{q, st})
		}
	}
	if len(moves) == 0 {
		return next, false, errors.Join(errs...)
	}
	// Read liveness again after the stable offsets: if the lane is still
	// offline now, and was all along, no stable instance skipped its tag
	// below them.
	routes, _ := c.brokersOf(ctx)
	if l, _ := c.probe(ctx, laneGroup, addrsOf(routes)); l != offline || !still() {
		return written, false, errors.Join(errs...)
	}
	if time.Since(checked) > c.cfg.staleness {
		// This instance was paused (or the brokers slow) for longer than
		// the staleness bound since it read the offsets: the lane may have
		// lived meanwhile. Write nothing; hand over in full again.
		return nil, true, nil
	}
	for _, m := range moves {
		if err := c.admin.UpdateOffset(ctx, m.q, laneGroup, m.to); err != nil {
			errs = append(errs, err)
			continue
		}
		next[m.q] = m.to
	}
	return next, false, errors.Join(errs...)
}
