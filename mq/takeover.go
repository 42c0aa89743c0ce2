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
			var ancestors []string // this lane's parents' groups that have offsets here
			for _, p := range c.cfg.parents[c.tag] {
				if g, err := LaneGroup(p, c.base); err == nil && slices.Contains(groups, g) {
					ancestors = append(ancestors, g)
				}
			}
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
				off, err := c.seedOffset(ctx, q, stablePresent, ancestors)
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
//
// With parents (WithParents), the minimum of that and of every parent
// group's committed offset, the parents listed in ancestors (those with
// offsets on q's broker), online or not. An online parent skips this
// lane's messages from where it is once it sees the lane, which may be
// below stable; an offline one's offsets are where its handler kept them
// up to, or where its pending takeover will start, and that takeover hands
// over only the parent's own tag: this lane's messages that stable skipped
// while the parent was online, and the parent did not consume, are above
// the parent's offsets, and only this lane consumes them once it is online
// (its own takeover by stable, which would have covered them, ends when
// it comes online). The minimum replays what some group handled already
// (duplicates), never starts above what one skipped.
func (c *Consumer) seedOffset(ctx context.Context, q admin.Queue, stablePresent bool, ancestors []string) (int64, error) {
	var (
		off int64
		err error
	)
	if !stablePresent {
		off, err = c.admin.MaxOffset(ctx, q)
	} else {
		off, err = c.admin.CommittedOffset(ctx, q, c.stable)
		if errors.Is(err, admin.ErrOffsetNotFound) {
			off, err = c.admin.MinOffset(ctx, q)
		}
	}
	for _, g := range ancestors {
		if err != nil {
			break
		}
		var a int64
		a, err = c.admin.CommittedOffset(ctx, q, g)
		if errors.Is(err, admin.ErrOffsetNotFound) {
			a, err = c.admin.MinOffset(ctx, q)
		}
		off = min(off, a)
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

// takeoverTick does the leader's work for every offline lane whose tag is
// now this group's to handle. It returns how long to wait for the next
// tick: the refresh interval, or less when a pending takeover falls due
// sooner, so a takeover starts when its delay has passed rather than up to
// a refresh interval later.
func (c *Consumer) takeoverTick() time.Duration {
	next := c.cfg.refresh
	if !c.leader.Load() || !c.fresh() {
		return next
	}
	type job struct {
		tag     tagctx.Tag
		group   string
		depth   int // lanes in its segment: the parents' jobs go first
		pending bool
		written map[admin.Queue]int64
		handled *handledSet
		desc    map[tagctx.Tag]string
		probe   []string
		gen     uint64
	}
	now := time.Now()
	var jobs []job
	c.mu.Lock()
	for t, ls := range c.lanes {
		if ls.covered {
			continue
		}
		seg := c.filter.segment(t)
		if wait := c.takeoverDelay() - now.Sub(ls.offlineSince); ls.pending && wait <= 0 {
			jobs = append(jobs, job{tag: t, group: ls.group, depth: len(seg), pending: true, handled: ls.handled,
				desc: c.descendants(t), gen: ls.gen})
		} else if ls.pending {
			next = min(next, max(wait, MinRefreshInterval))
		} else if ls.settled && !c.anyPending(seg[1:]) {
			// A parent whose own takeover is still pending has not
			// been checked for a life between two refreshes (its
			// keep-up does that): the lane's offsets wait for it.
			jobs = append(jobs, job{tag: t, group: ls.group, depth: len(seg), written: ls.written, probe: c.groupsOf(seg[1:]), gen: ls.gen})
		}
	}
	c.mu.Unlock()
	// A parent's keep-up that finds the parent lived unseen starts new
	// offline periods below it before their own keep-ups could move their
	// offsets.
	slices.SortFunc(jobs, func(a, b job) int { return a.depth - b.depth })
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
			written, err := c.takeover(ctx, j.tag, j.group, j.handled, j.desc)
			c.mu.Lock()
			if ls := c.lanes[j.tag]; ls != nil && !ls.covered && ls.gen == j.gen && err == nil {
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
				if ls == nil || ls.covered || !ls.settled || ls.gen != j.gen {
					return false
				}
				// The last answers must be recent enough that, with the
				// probe keepUp just made, no instance of the lane or of
				// a parent below this group whose Start returned could
				// have lived unseen since: a refresh held up (a pause)
				// has not yet published its lapse.
				for _, a := range c.filter.segment(j.tag) {
					if as := c.lanes[a]; as != nil && time.Since(as.seenStart) > c.watchGap() {
						return false
					}
				}
				return true
			}
			// An error leaves some queue for the next tick; what keepUp
			// wrote meanwhile is in written.
			written, relive, _ := c.keepUp(ctx, j.group, j.probe, j.written, still)
			c.mu.Lock()
			if ls := c.lanes[j.tag]; ls != nil && !ls.covered && ls.settled && ls.gen == j.gen {
				switch {
				case relive:
					// It lived and died between two refreshes: a new
					// offline period, taken over after the full delay.
					// So for every lane below it that this group
					// handles: while it lived, instances here may have
					// skipped their tags too.
					now := time.Now()
					ls.turnOffline(now)
					for t, ds := range c.lanes {
						if t != j.tag && !ds.covered && slices.Contains(c.filter.segment(t), j.tag) {
							ds.turnOffline(now)
						}
					}
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

// descendants returns the lanes below lane t in the chains (t in their
// chain) that this instance has never seen listed, by group, leaving out
// those it sees handled by a parent of theirs below t (online). A takeover
// of t hands their messages over too: while t was online, this group
// skipped them for t, and a lane that never had a consumer has no state
// here and no takeover of its own. A lane seen listed has both: its own
// takeover by this group, from its own offsets, runs whenever t's would
// (its lanes before this group include t's), so handing its messages over
// with t's would only repeat them. Called with c.mu held.
func (c *Consumer) descendants(t tagctx.Tag) map[tagctx.Tag]string {
	var out map[tagctx.Tag]string
	for d, chain := range c.cfg.parents {
		i := slices.Index(chain, t)
		if i < 0 || c.lanes[d] != nil {
			continue
		}
		covered := false
		for _, a := range append([]tagctx.Tag{d}, chain[:i]...) {
			if as := c.lanes[a]; as != nil && as.online {
				covered = true
			}
		}
		if covered {
			continue
		}
		g, err := LaneGroup(d, c.base)
		if err != nil {
			continue // checked by NewConsumer
		}
		if out == nil {
			out = map[tagctx.Tag]string{}
		}
		out[d] = g
	}
	return out
}

// anyPending reports whether one of lanes has a takeover pending here.
// Called with c.mu held.
func (c *Consumer) anyPending(lanes []tagctx.Tag) bool {
	for _, a := range lanes {
		if as := c.lanes[a]; as != nil && as.pending {
			return true
		}
	}
	return false
}

// groupsOf returns the groups of lanes.
func (c *Consumer) groupsOf(lanes []tagctx.Tag) []string {
	out := make([]string, 0, len(lanes))
	for _, t := range lanes {
		if g, err := LaneGroup(t, c.base); err == nil {
			out = append(out, g)
		}
	}
	return out
}

func (c *Consumer) fresh() bool {
	v := c.view.Load()
	return v != nil && time.Now().Before(v.until)
}

// takeover hands the offline lane's messages to this consumer's handler
// (stable's, or a parent lane's): on every queue, those of its tag from
// the lane group's committed offset to the queue's max offset, and those
// of the descendants in desc (lanes below it never seen listed) from
// there or their own group's offset, whichever is higher; then the lane
// group's retry backlog. Each queue's lane offset is moved past what was
// handed over. A handler failure stops that queue there, to be retried at
// the next tick.
func (c *Consumer) takeover(ctx context.Context, t tagctx.Tag, laneGroup string, done *handledSet, desc map[tagctx.Tag]string) (map[admin.Queue]int64, error) {
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
				off, ok, err := c.handoverQueue(ctx, q, b.Name, s.expr, t, laneGroup, done, desc)
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
			if _, _, err := c.handoverQueue(ctx, q, b.Name, "*", tagctx.Tag{}, laneGroup, nil, nil); err != nil {
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
func (c *Consumer) handoverQueue(ctx context.Context, q admin.Queue, brokerName, expr string, t tagctx.Tag, laneGroup string, done *handledSet, desc map[tagctx.Tag]string) (int64, bool, error) {
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
	// A descendant's messages from its own group's committed offset on:
	// below it, its group consumed them, or its takeover handed them over,
	// or its handler handled them and kept its offsets up (only while no
	// lane between them was online). A group that never committed reads
	// back as 0 (4.9.4), or 22 where retention deleted offset 0: from 0.
	var from map[tagctx.Tag]int64
	for d, g := range desc {
		off, err := c.admin.CommittedOffset(ctx, q, g)
		if errors.Is(err, admin.ErrOffsetNotFound) {
			off, err = 0, nil
		}
		if err != nil {
			return 0, false, err
		}
		if from == nil {
			from = make(map[tagctx.Tag]int64, len(desc))
		}
		from[d] = off
	}
	reached, err := c.handover(ctx, q, brokerName, expr, t, from, lo, hi, done)
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
// handled), and those of the descendants in from at or above their
// offsets, to this consumer's handler, grouped by tag, leaving out those
// done lists (this instance handled them itself). It returns the offset
// up to which everything was handed over.
func (c *Consumer) handover(ctx context.Context, q admin.Queue, brokerName, expr string, t tagctx.Tag, from map[tagctx.Tag]int64, lo, hi int64, done *handledSet) (int64, error) {
	off := lo
	hctx := context.WithValue(ctx, handedOverKey{}, true)
	for off < hi {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		r, err := c.admin.Pull(ctx, q, brokerName, c.group, expr, off, c.cfg.handoverBatch)
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
				if d, ok := from[mt]; rej != nil || !ok || m.QueueOffset < d {
					continue
				}
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
// retry topic and moves the lane's offsets up to this consumer's group's
// committed offsets, which it reached handling the tag itself, so a
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
//
// The same holds for a parent lane's group in stable's place (its own
// committed offsets), and for stable when the lane has parents, as long
// as they too are offline: probe holds their groups, and keepUp writes
// nothing unless every one of them answers "offline" after the offsets
// were read. While one is online this group skips the lane's tag, and
// its state has the lane covered, not settled: no keep-up runs.
func (c *Consumer) keepUp(ctx context.Context, laneGroup string, probe []string, written map[admin.Queue]int64, still func() bool) (map[admin.Queue]int64, bool, error) {
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
		st, err := c.admin.CommittedOffset(ctx, q, c.group)
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
	// With parents, so must every lane between it and this group be: a
	// lane skips nothing of its descendants' while it is offline.
	routes, _ := c.brokersOf(ctx)
	for _, g := range append([]string{laneGroup}, probe...) {
		if l, _ := c.probe(ctx, g, addrsOf(routes)); l != offline {
			return written, false, errors.Join(errs...)
		}
	}
	if !still() {
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
