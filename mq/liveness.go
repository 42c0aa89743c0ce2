package mq

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/tagctx"
)

// laneState is what a handler consumer (stable, or a lane that is some
// chain's parent) knows about one lane group below it: the lane's own
// liveness, and the takeover of its tag by this consumer's group. The
// refresh loop owns the liveness fields, the takeover loop the rest; both
// under Consumer.mu.
type laneState struct {
	group  string
	online bool // the lane's own state, with hysteresis
	// onlineAt is the start of the last refresh that answered "online":
	// the belief's timestamp. The hot path skips the lane's tag only until
	// onlineAt + staleness; an "offline" answer inside the hysteresis does
	// not re-confirm it.
	onlineAt time.Time
	// seen is the end of the last refresh with a definite answer: a longer
	// gap than the staleness bound before the next one means nobody here
	// watched the lane meanwhile (a pause, failing refreshes).
	seen time.Time
	// seenStart is the start of that refresh. A lane instance listed for
	// longer than the watch gap (see watchGap) is seen by one of two
	// consecutive answers whose refreshes span at most that, end to start.
	seenStart   time.Time
	offlineN    int       // consecutive offline answers while online
	offlineFrom time.Time // end of the first of those answers
	// offAt is the end of the first answer of the lane's own current
	// offline period.
	offAt time.Time

	// The takeover of the lane's tag by this consumer's group. It acts on
	// what the group must handle: the lane's messages are its own once
	// neither the lane nor any parent of it below this group is online
	// (covered false). An "offline period" of the takeover starts when the
	// last of those goes offline.
	covered bool
	// offlineSince is the end of the first answer of this offline period:
	// the answer that said the last of those lanes is offline.
	offlineSince time.Time
	// unwatched: during this offline period two consecutive answers about
	// one of those lanes spanned more than the watch gap, so a lane
	// instance may have lived unseen in between, and had the tag skipped
	// past what the pending takeover reads. The takeover then does not
	// settle the lane: a new offline period, handed over in full, follows
	// it.
	unwatched bool
	// pending: the lane's skipped messages may not have been handed over.
	pending bool
	// settled: the takeover completed; while the lane stays offline the
	// leader drains its retry topic and keeps its offsets up with its
	// group's.
	settled bool
	// written is the offset the leader last wrote per queue, to notice a
	// lane that lived between two refreshes and committed on its own.
	written map[admin.Queue]int64
	// handled is what this instance handled of the lane's tag while the
	// takeover was pending (nil otherwise).
	handled *handledSet
	// gen counts offline periods, so a takeover that finishes after the
	// lane came back and went away again does not settle the new period.
	gen uint64
}

// turnOffline starts an offline period of the takeover at at (the end of
// the refresh whose answer first said so) with a takeover pending.
func (ls *laneState) turnOffline(at time.Time) {
	ls.covered = false
	ls.offlineSince, ls.pending, ls.settled, ls.written, ls.unwatched = at, true, false, nil, false
	ls.handled = &handledSet{m: map[msgPos]struct{}{}}
	ls.gen++
}

// cover ends the takeover's offline period: a lane of the segment is
// online, and handles the tag.
func (ls *laneState) cover() {
	ls.covered, ls.pending, ls.settled, ls.written, ls.handled = true, false, false, nil, nil
}

// event is what one refresh answer changed about a lane's own liveness,
// for the takeovers of the lanes at or below it.
type event uint8

const (
	evNone event = iota
	// evOff: the lane turned offline (after the hysteresis).
	evOff
	// evOffMissed: evOff, and an instance may have lived unseen between
	// two of the hysteresis' offline answers.
	evOffMissed
	// evUnwatched: a lapse between two answers about the lane longer
	// than the watch gap.
	evUnwatched
	// evGap: nobody here watched the lane for longer than the staleness
	// bound (or it was first seen offline): it may have lived meanwhile
	// and had its tag and its descendants' skipped. The strongest event:
	// of several in one segment, the largest acts.
	evGap
)

// liveness is the answer for one lane group across brokers.
type liveness uint8

const (
	unknown liveness = iota
	online
	offline
)

// probe asks every broker for group's members: online if any lists one,
// offline only if every broker answers "no consumer" (code 1), unknown
// otherwise (a timeout or transport error says nothing).
func (c *Consumer) probe(ctx context.Context, group string, addrs []string) (liveness, []string) {
	if len(addrs) == 0 {
		return unknown, nil
	}
	var members []string
	allOffline := true
	for _, a := range addrs {
		ids, err := c.admin.ConsumerList(ctx, a, group)
		switch {
		case err == nil:
			members = append(members, ids...)
			allOffline = false
		case errors.Is(err, admin.ErrNoConsumer):
		default:
			allOffline = false
		}
	}
	switch {
	case len(members) > 0:
		slices.Sort(members)
		return online, slices.Compact(members)
	case allOffline:
		return offline, nil
	}
	return unknown, nil
}

// brokersOf returns the master brokers hosting every subscribed topic, by
// topic, and whether every route came back.
func (c *Consumer) brokersOf(ctx context.Context) (map[string][]admin.Broker, bool) {
	out := map[string][]admin.Broker{}
	ok := true
	for _, s := range c.topics() {
		bs, err := c.admin.Route(ctx, s.topic)
		if err != nil {
			ok = false
			continue
		}
		out[s.topic] = bs
	}
	return out, ok
}

func addrsOf(routes map[string][]admin.Broker) []string {
	var addrs []string
	for _, bs := range routes {
		for _, b := range bs {
			addrs = append(addrs, b.Addr)
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

// startLoops runs a handler consumer's liveness refresh and takeover tick
// every refresh interval until stopLoops.
func (c *Consumer) startLoops() {
	c.wg.Add(2)
	go c.every(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.staleness)
		defer cancel()
		c.refresh(ctx)
	})
	go c.takeoverLoop()
}

// takeoverLoop runs the takeover tick, as often as takeoverTick asks.
func (c *Consumer) takeoverLoop() {
	defer c.wg.Done()
	t := time.NewTimer(c.cfg.refresh)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.hold()
		t.Reset(c.takeoverTick())
	}
}

func (c *Consumer) every(f func()) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.refresh)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.hold()
		f()
	}
}

// refresh reads the lane groups of every subscribed topic and their
// liveness, applies hysteresis, works out leadership, and publishes a new
// view. The view is fresh only if every route and group list came back.
func (c *Consumer) refresh(ctx context.Context) {
	start := time.Now()
	routes, ok := c.brokersOf(ctx)
	addrs := addrsOf(routes)
	lanes := map[tagctx.Tag]string{}
	for topic, bs := range routes {
		for _, b := range bs {
			groups, err := c.admin.ConsumeByWho(ctx, b.Addr, topic)
			if err != nil {
				ok = false
				continue
			}
			for _, g := range groups {
				if g == c.group {
					continue
				}
				if t, isLane := laneOf(g, c.base); isLane && c.filter.watches(t) {
					lanes[t] = g
				}
			}
		}
	}
	// A known lane missing from the list (no live subscription, no
	// offsets) is still probed: it is what a lane that died before its
	// first commit looks like.
	c.mu.Lock()
	for t, ls := range c.lanes {
		if _, ok := lanes[t]; !ok {
			lanes[t] = ls.group
		}
	}
	c.mu.Unlock()
	answers := make(map[tagctx.Tag]liveness, len(lanes))
	for t, g := range lanes {
		answers[t], _ = c.probe(ctx, g, addrs)
	}
	// Leadership: the member of this group with the smallest client ID,
	// which every instance computes alike from the same list.
	st, members := c.probe(ctx, c.group, addrs)
	switch st {
	case online:
		c.leader.Store(strings.HasSuffix(members[0], "@"+c.instance))
	case offline:
		c.leader.Store(false)
	}
	// Every answer above reached this instance before end: a lane the
	// brokers no longer list was gone before end.
	end := time.Now()
	c.hold()

	c.mu.Lock()
	events := make(map[tagctx.Tag]event, len(lanes))
	for t, g := range lanes {
		ls := c.lanes[t]
		a := answers[t]
		if a == unknown {
			continue // an unknown answer keeps the last known state
		}
		if ls == nil {
			// Its takeover starts covered: the reconciliation below
			// starts an offline period if the lanes before this group
			// are all offline.
			ls = &laneState{group: g, covered: true}
			c.lanes[t] = ls
			if a == offline {
				// First seen offline: its skipped messages, if any,
				// were never handed over (all instances may have
				// restarted since), and it may have lived unseen.
				ls.offAt = end
				events[t] = evGap
			}
		}
		gap := !ls.seen.IsZero() && end.Sub(ls.seen) > c.cfg.staleness
		unwatched := !ls.seenStart.IsZero() && end.Sub(ls.seenStart) > c.watchGap()
		ls.seen, ls.seenStart = end, start
		switch a {
		case online:
			ls.onlineAt = start
			ls.online = true
			ls.offlineN = 0
		case offline:
			switch {
			case ls.online:
				if ls.offlineN == 0 || gap {
					ls.offlineN, ls.offlineFrom = 0, end
				}
				// An instance unseen between two offline answers of
				// the hysteresis lived after the first one, which
				// the takeover delay counts from.
				missed := unwatched && ls.offlineN > 0
				ls.offlineN++
				if ls.offlineN >= c.cfg.offlineAfter {
					ls.online, ls.offlineN, ls.offAt = false, 0, ls.offlineFrom
					events[t] = evOff
					if missed {
						events[t] = evOffMissed
					}
				}
			case gap:
				events[t] = evGap
			case unwatched:
				events[t] = evUnwatched
			}
		}
	}
	c.reconcile(end, events)
	next := &view{online: map[tagctx.Tag]struct{}{}}
	until := start.Add(c.cfg.staleness)
	for t, ls := range c.lanes {
		switch {
		case ls.online:
			// A lane only counts as online until its last "online" answer
			// is older than the staleness bound, whatever the refreshes
			// since said or failed to say: it may have died meanwhile, and
			// the takeover only waits that long for every stable instance.
			// It stays online in the state, so the takeover still waits
			// for a definite "offline".
			lu := ls.onlineAt.Add(c.cfg.staleness)
			if !lu.After(end) {
				continue
			}
			until = minTime(until, lu)
			next.online[t] = struct{}{}
		case !ls.covered && ls.handled != nil && c.leader.Load():
			// Only the leader runs takeovers, so only it needs to
			// remember what it handled itself.
			if next.track == nil {
				next.track = map[tagctx.Tag]*handledSet{}
			}
			next.track[t] = ls.handled
		}
	}
	c.mu.Unlock()
	if old := c.view.Load(); ok {
		next.until = until
	} else if old != nil {
		// An incomplete refresh keeps the old freshness and the last
		// known state of the lanes it could not read (unknown keeps).
		next.until = minTime(old.until, until)
	}
	c.view.Store(next)
}

// reconcile brings the takeover of every lane this consumer watches in
// line with the lanes' own liveness after a refresh that ended at end:
// a lane's tag is this group's to handle, and to take over, once neither
// the lane nor any parent of it below this group is online. events holds
// what the refresh changed per lane; a lane's event acts on the takeovers
// of the lanes at or below it. Called with c.mu held.
func (c *Consumer) reconcile(end time.Time, events map[tagctx.Tag]event) {
	for t, ls := range c.lanes {
		seg := c.filter.segment(t)
		covered := false
		at := time.Time{}
		ev := evNone
		for _, a := range seg {
			as := c.lanes[a]
			if as == nil {
				continue // never listed: never online, nothing skipped for it
			}
			if as.online {
				covered = true
			}
			if as.offAt.After(at) {
				at = as.offAt
			}
			ev = max(ev, events[a])
		}
		switch {
		case covered:
			if !ls.covered {
				ls.cover()
			}
		case ls.covered:
			// The last lane before this group went offline (or the
			// lane is new here): a new offline period, since the end
			// of the answer that said so.
			if at.IsZero() || ev == evGap {
				at = end
			}
			ls.turnOffline(at)
			ls.unwatched = ev == evOffMissed || ev == evUnwatched
		case ev == evGap && ls.pending:
			// Nobody here watched a lane of the segment for longer than
			// the staleness bound: it may have lived meanwhile and had
			// the tag skipped, so the wait starts again.
			ls.offlineSince = end
		case ev == evUnwatched && ls.pending:
			// A shorter lapse: an instance may have lived unseen and had
			// the tag skipped, possibly past the max offsets the takeover
			// reads; the takeover goes on, and another follows it (see
			// laneState.unwatched).
			ls.unwatched = true
		case ev == evGap || ev == evUnwatched:
			// The same after a completed takeover: keeping the lane's
			// offsets up could move them past what was skipped for it.
			// A new offline period, handed over in full (duplicates at
			// worst).
			ls.turnOffline(end)
		}
	}
}

// watchGap is the longest span, from the start of one refresh to the end
// of the next, over which two consecutive answers about a lane are sure to
// see any lane instance whose Start returned: WaitVisible keeps a starting
// lane listed on every broker for a refresh interval plus the takeover
// margin before it returns, so a probe falls inside that listing. A longer
// span (a pause, a slow or failing refresh) may hide a whole lane life.
func (c *Consumer) watchGap() time.Duration {
	return c.cfg.refresh + c.cfg.takeoverMargin
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Online returns the lanes a stable consumer (or a lane consumer that is
// some chain's parent: the lanes below it) currently believes online, and
// skips the messages of, sorted; nil when its view is stale. For tests and
// diagnostics.
func (c *Consumer) Online() []tagctx.Tag {
	on := c.view.Load().onlineAt(time.Now())
	if on == nil {
		return nil
	}
	return slices.SortedFunc(maps.Keys(on), func(a, b tagctx.Tag) int { return strings.Compare(a.String(), b.String()) })
}

// Leader reports whether this consumer (stable, or a lane that is some
// chain's parent) is its group's takeover leader in its latest view.
func (c *Consumer) Leader() bool { return c.leader.Load() }
