package mq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/tagctx"
	"go.opentelemetry.io/otel/trace"
)

// Transport is the route proof's transport name for RocketMQ hops.
const Transport = "rocketmq"

// Handler consumes messages of one tag. A batch the push consumer delivers
// is split by tag, and Handler runs once per tag with ctx carrying that tag
// (tagctx.From), explicitly untagged for untagged and invalid-tag messages.
// ConsumeRetryLater or an error makes the whole delivered batch retry.
type Handler func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error)

// Stats counts what a consumer did with messages.
type Stats struct {
	// Handled counts messages the push consumer delivered and the handler
	// got.
	Handled uint64
	// Skipped counts messages acked without handling: they belong to
	// another consumer group (a lane's, or stable's on a lane consumer).
	Skipped uint64
	// Rejected counts messages with an invalid tag, handled as untagged.
	Rejected uint64
	// Redelivered counts messages handed over from offline lanes to the
	// handler. Some may be duplicates: at-least-once near transitions.
	Redelivered uint64
	// Takeovers counts completed lane takeovers.
	Takeovers uint64
	// NotHandedOver counts messages of an offline lane's tag a takeover
	// left out because this instance had handled them itself already.
	NotHandedOver uint64
}

type subscription struct {
	topic string
	expr  string // TAG expression for the takeover pulls
	h     Handler
	c     *Consumer // set by consumeFunc
	// slow is consumeFunc's path for batches and for messages whose
	// route proof is recorded.
	slow func(context.Context, []*primitive.MessageExt) (consumer.ConsumeResult, error)
}

// Consumer is a lane-aware push consumer: a lane consumer if its node tag is
// set, a stable consumer otherwise. See the package documentation.
type Consumer struct {
	cfg      config
	base     string
	group    string // this consumer's group
	stable   string // the stable group of base
	tag      tagctx.Tag
	instance string
	filter   filter
	admin    *admin.Client
	pc       rocketmq.PushConsumer

	view   atomic.Pointer[view]
	leader atomic.Bool

	handled, skipped, rejected, redelivered, takeovers, notHandedOver atomic.Uint64

	mu        sync.Mutex
	subs      map[string]*subscription
	lanes     map[tagctx.Tag]*laneState // stable only; guarded by mu
	started   bool
	pcStarted bool // the push consumer started: v2.1.2 panics shutting down one that did not
	stopped   bool

	done    chan struct{}
	wg      sync.WaitGroup
	visible atomic.Bool

	// pause, while set, holds the consume paths (after their decision,
	// before the ack) and the ticker loop (between a refresh's answers and
	// its publication) until it is closed: the tests freeze an instance as
	// SIGSTOP or a long GC pause would (export_test.go). Production never
	// sets it; the hot path pays one atomic load.
	pause atomic.Pointer[chan struct{}]
}

// hold blocks while the instance is paused (see Consumer.pause). Out of
// line: its select would enlarge the consume path's frame (consumeFunc).
//
//go:noinline
func (c *Consumer) hold() {
	if p := c.pause.Load(); p != nil {
		select {
		case <-*p:
		case <-c.done:
		}
	}
}

var instanceSeq atomic.Int64

// NewConsumer returns a consumer of base group (e.g. "orders"). Its role
// comes from WithNode, else tagctx.Node(): a lane consumer of tag T uses
// group "T_orders", a stable consumer WithGroupPrefix + "orders". Lane and
// stable consumers of one base must agree on the prefix: a lane seeds its
// offsets from the stable group. WithNameServer is required.
func NewConsumer(baseGroup string, opts ...Option) (*Consumer, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if len(cfg.nameServers) == 0 {
		return nil, errors.New("mq: NewConsumer needs WithNameServer for its admin queries")
	}
	stable, err := StableGroup(cfg.prefix, baseGroup)
	if err != nil {
		return nil, err
	}
	group := stable
	if !cfg.nodeTag.IsZero() {
		if group, err = LaneGroup(cfg.nodeTag, baseGroup); err != nil {
			return nil, err
		}
		if group == stable {
			return nil, fmt.Errorf("mq: lane group %q equals the stable group: prefix %q names lane %q", group, cfg.prefix, cfg.nodeTag)
		}
	}
	// Every lane of a chain has a group this consumer may probe, take
	// over or seed from.
	for lane, chain := range cfg.parents {
		for _, t := range append([]tagctx.Tag{lane}, chain...) {
			if _, err := LaneGroup(t, baseGroup); err != nil {
				return nil, fmt.Errorf("mq: WithParents(%s, %s): %w", tagctx.Quote(lane.String()), tagctx.Quote(chainString(chain)), err)
			}
		}
	}
	instance := cfg.instance
	if instance == "" {
		instance = fmt.Sprintf("taglane-%s-%d-%d", group, os.Getpid(), instanceSeq.Add(1))
	}
	// The prefilter (prefilter.go) reads c, which exists once the push
	// consumer does; its hook runs only after Start.
	var c *Consumer
	copts := append([]consumer.Option{prefilterOption(&c)}, cfg.consumerOpts...)
	copts = append(copts,
		consumer.WithNameServer(cfg.nameServers),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance),
		consumer.WithConsumerModel(consumer.Clustering),
	)
	pc, err := rocketmq.NewPushConsumer(copts...)
	if err != nil {
		return nil, fmt.Errorf("mq: push consumer of group %q: %w", group, err)
	}
	c = &Consumer{
		cfg:      cfg,
		base:     baseGroup,
		group:    group,
		stable:   stable,
		tag:      cfg.nodeTag,
		instance: instance,
		filter:   newFilter(cfg.propertyKey, cfg.nodeTag, cfg.parents),
		admin:    admin.New(cfg.nameServers, cfg.adminTimeout),
		pc:       pc,
		subs:     map[string]*subscription{},
		lanes:    map[tagctx.Tag]*laneState{},
		done:     make(chan struct{}),
	}
	return c, nil
}

// Group returns the consumer group name.
func (c *Consumer) Group() string { return c.group }

// Tag returns the lane tag; the zero Tag for a stable consumer.
func (c *Consumer) Tag() tagctx.Tag { return c.tag }

// InstanceName returns the push consumer's client instance name; the
// broker knows the consumer by "<ip>@<instance name>".
func (c *Consumer) InstanceName() string { return c.instance }

// Stats returns the counters.
func (c *Consumer) Stats() Stats {
	return Stats{
		Handled:     c.handled.Load(),
		Skipped:     c.skipped.Load(),
		Rejected:    c.rejected.Load(),
		Redelivered: c.redelivered.Load(),
		Takeovers:   c.takeovers.Load(),

		NotHandedOver: c.notHandedOver.Load(),
	}
}

// Subscribe registers h for topic; call it before Start. selector filters
// by RocketMQ tags as usual.
func (c *Consumer) Subscribe(topic string, selector consumer.MessageSelector, h Handler) error {
	if h == nil {
		return fmt.Errorf("mq: subscribe %q: nil handler", topic)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return fmt.Errorf("mq: subscribe %q after Start", topic)
	}
	if _, dup := c.subs[topic]; dup {
		return fmt.Errorf("mq: topic %q subscribed twice", topic)
	}
	expr := "*"
	if (selector.Type == "" || selector.Type == consumer.TAG) && selector.Expression != "" {
		expr = selector.Expression
	}
	s := &subscription{topic: topic, expr: expr, h: h}
	if err := c.pc.Subscribe(topic, selector, c.consumeFunc(s)); err != nil {
		return fmt.Errorf("mq: subscribe %q: %w", topic, err)
	}
	c.subs[topic] = s
	return nil
}

func (c *Consumer) topics() []*subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*subscription, 0, len(c.subs))
	for _, s := range c.subs {
		out = append(out, s)
	}
	return out
}

func (c *Consumer) subscriptionOf(topic string) *subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[topic]
}

// Start seeds a new lane group's offsets (lane consumer), reads lane
// liveness once and starts the refresh and takeover loops (stable
// consumer, and a lane consumer that is some chain's parent), then starts
// the push consumer.
func (c *Consumer) Start() error {
	c.mu.Lock()
	switch {
	case c.stopped:
		c.mu.Unlock()
		return errors.New("mq: consumer started after Shutdown")
	case c.started:
		c.mu.Unlock()
		return errors.New("mq: consumer started twice")
	}
	c.started = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*c.cfg.adminTimeoutOrDefault())
	defer cancel()
	if err := c.checkTopicsExist(ctx); err != nil {
		return err
	}
	if !c.tag.IsZero() {
		if err := c.seed(ctx); err != nil {
			return err
		}
	}
	if c.filter.handler() {
		// Stable, or a lane that is some chain's parent: it reads the
		// liveness of the lanes below it before it consumes, and takes
		// them over when they go offline.
		c.refresh(ctx)
		c.startLoops()
	}
	if err := c.pc.Start(); err != nil {
		c.stopLoops()
		return fmt.Errorf("mq: start consumer group %q: %w", c.group, err)
	}
	c.mu.Lock()
	if c.stopped {
		// Shutdown ran while the push consumer was starting: it found no
		// push consumer to stop, so this one must not outlive it.
		c.mu.Unlock()
		_ = c.pc.Shutdown()
		return fmt.Errorf("mq: consumer group %q shut down during Start", c.group)
	}
	c.pcStarted = true
	c.mu.Unlock()
	if c.tag.IsZero() || c.cfg.startWait == 0 {
		return nil
	}
	wctx, wcancel := context.WithTimeout(context.Background(), c.cfg.startWait)
	defer wcancel()
	if err := c.WaitVisible(wctx); err != nil {
		return fmt.Errorf("mq: lane consumer group %q runs, but %w", c.group, err)
	}
	return nil
}

// ErrNotVisible says a started lane consumer is not known to be seen by
// the stable consumers yet: they may still handle its tag (duplicates, not
// losses). Start returns it (wrapped) when WithStartWait passes first; the
// consumer keeps running, and Shutdown stops it as usual.
var ErrNotVisible = errors.New("mq: the stable consumers may not see this lane yet")

// WaitVisible waits until the stable consumers of this lane consumer's
// base group see it online (and the consumers of its parents, with
// WithParents: they refresh at the same interval), or until ctx is done:
// every master broker hosting its topics lists this consumer in its group
// (which its Start
// made happen with its first heartbeat), and one refresh interval plus the
// takeover margin has passed since, so every stable instance refreshing at
// that interval has read the listing. From then on, a stable instance
// skips the lane's tag, unless it cannot read liveness (then it handles
// every tag, a duplicate at worst). It assumes stable consumers use the
// same refresh interval. Start waits for it (WithStartWait). On a stable
// consumer it returns nil once Start has returned: its first liveness
// reading is part of Start.
func (c *Consumer) WaitVisible(ctx context.Context) error {
	c.mu.Lock()
	started := c.pcStarted
	c.mu.Unlock()
	switch {
	case !started:
		return fmt.Errorf("mq: WaitVisible on consumer group %q before Start", c.group)
	case c.tag.IsZero(), c.visible.Load():
		return nil
	}
	tick := time.NewTicker(max(c.cfg.refresh/5, MinRefreshInterval))
	defer tick.Stop()
	for {
		if c.listedEverywhere(ctx) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the brokers do not list %q in group %q: %w", ErrNotVisible, c.instance, c.group, context.Cause(ctx))
		case <-c.done:
			return fmt.Errorf("mq: consumer group %q shut down", c.group)
		case <-tick.C:
		}
	}
	wait := time.NewTimer(c.cfg.refresh + c.cfg.takeoverMargin)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: listed, but the stable consumers' next refresh may not have run: %w", ErrNotVisible, context.Cause(ctx))
	case <-c.done:
		return fmt.Errorf("mq: consumer group %q shut down", c.group)
	case <-wait.C:
	}
	c.visible.Store(true)
	return nil
}

// listedEverywhere reports whether every master broker hosting the
// subscribed topics lists this consumer as a member of its group.
func (c *Consumer) listedEverywhere(ctx context.Context) bool {
	routes, ok := c.brokersOf(ctx)
	addrs := addrsOf(routes)
	if !ok || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		ids, err := c.admin.ConsumerList(ctx, a, c.group)
		if err != nil || !slices.ContainsFunc(ids, func(id string) bool { return strings.HasSuffix(id, "@"+c.instance) }) {
			return false
		}
	}
	return true
}

func (cfg config) adminTimeoutOrDefault() time.Duration {
	if cfg.adminTimeout > 0 {
		return cfg.adminTimeout
	}
	return admin.DefaultTimeout
}

func (c *Consumer) stopLoops() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	c.mu.Unlock()
	close(c.done)
	c.wg.Wait()
}

// Shutdown stops the loops and the push consumer, which commits its
// offsets. Its own connection closes, so the brokers drop the group member
// at once and the stable consumers see this lane go offline.
func (c *Consumer) Shutdown() error {
	c.stopLoops()
	c.mu.Lock()
	started := c.pcStarted
	c.pcStarted = false
	c.mu.Unlock()
	var err error
	if started {
		err = c.pc.Shutdown()
	}
	c.admin.Close()
	if err != nil {
		return fmt.Errorf("mq: shutdown consumer group %q: %w", c.group, err)
	}
	return nil
}

// tagGroup is the messages of one tag within a delivered batch.
type tagGroup struct {
	tag      tagctx.Tag
	rejected error
	msgs     []*primitive.MessageExt
}

// consumeFunc returns the callback the push consumer runs for s.
//
// rocketmq-client-go v2.1.2 runs every call on a new goroutine with a
// 2 KiB stack and leaves about 360 bytes of it to the callback: its own
// frames (the goroutine's closure alone is 528 bytes) take the rest of
// what a function may use before the runtime grows the stack. Growing it
// (morestack, copystack) costs more than everything taglane does for a
// message. So the common case, one message handled with tracing off and
// no observer, keeps the deepest calls right below this closure's small
// frame: the property read (the map lookup's frames take about 260
// bytes) and tagctx.With (its allocation's mallocgc frames, about 270).
// The decision and its bookkeeping run in fastTag, whose frame is gone by
// then, and everything else (batches, rejected tags, an observer, spans,
// the misroute report) in s.slow, entered only when needed. Measure a
// change here with bench/instr-diff.sh: runtime.newstack and copystack
// must stay at the plain consumer's count. (Not inlined into Subscribe:
// the closure would be compiled as part of a function too big to inline
// into.)
//
//go:noinline
func (c *Consumer) consumeFunc(s *subscription) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	s.c = c
	// A func value: its arguments are ctx and msgs only, so the closure
	// below reserves no more spill space for it than for the handler.
	s.slow = func(ctx context.Context, msgs []*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if len(msgs) != 1 {
			return c.consumeBatch(ctx, s, msgs)
		}
		return c.consumeOne(ctx, s, msgs)
	}
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if len(msgs) == 1 {
			// filter.decide's property read, made here rather than two
			// frames down (see above); fastTag does the rest of decide.
			raw := msgs[0].GetProperty(s.c.filter.key)
			switch ctx, t, a := s.c.fastTag(ctx, msgs[0], raw); a {
			case actHandle:
				return s.h(tagctx.With(ctx, t), msgs...)
			case actSkip:
				return consumer.ConsumeSuccess, nil
			}
		}
		return s.slow(ctx, msgs)
	}
}

// act is what the single-message path does with a message.
type act uint8

const (
	actHandle act = iota // the tag's context and the handler, nothing else
	actSkip              // acked unhandled (counted)
	actSlow              // consumeOne decides it again and does all of it
)

// fastTag decides m, whose tag property reads raw, for the single-message
// path and, unless it hands m to consumeOne (which then decides anew, so
// nothing is counted twice), does the decision's bookkeeping: the
// counters, the takeover's record of handled messages, and a paused
// instance's hold between decision and ack. For a message to handle it
// returns ctx with the producer's trace context (tracing is off here) and
// the message's tag, for the caller's tagctx.With.
//
//go:noinline
func (c *Consumer) fastTag(ctx context.Context, m *primitive.MessageExt, raw string) (context.Context, tagctx.Tag, act) {
	// The proof is recorded only when someone reads it (an observer, a
	// span) or for a misroute: a stable consumer's route is matched or
	// fallback, a lane consumer's matched for its own tag; any other case
	// goes to consumeOne, where tagctx.Decide says which it is.
	if c.cfg.observer != nil || !c.cfg.tracing.off() {
		return ctx, tagctx.Tag{}, actSlow
	}
	vw := c.view.Load()
	// decide(m, online), the property already read.
	t, v, rej := c.filter.decideRaw(raw, m.ReconsumeTimes > 0, onlineNow(vw))
	if v == handle && (rej != nil || !(c.tag.IsZero() || t == c.tag)) {
		return ctx, tagctx.Tag{}, actSlow
	}
	if c.pause.Load() != nil {
		c.hold()
	}
	if v == skip {
		c.skipped.Add(1)
		return ctx, tagctx.Tag{}, actSkip
	}
	c.handled.Add(1)
	if vw != nil && len(vw.track) != 0 {
		vw.noteHandled(t, m)
	}
	// The trace context first, as deliver does: a propagator's extraction
	// (tagctx.Propagator in a composite) must not overrule this decision.
	return c.cfg.tracing.passThrough(ctx, m), t, actHandle
}

// onlineNow is vw.onlineAt(time.Now()) without reading the clock when no
// lane is online (always on a lane consumer that is no lane's parent, which
// has no view): onlineAt answers v.online or nil, empty either way then.
func onlineNow(vw *view) map[tagctx.Tag]struct{} {
	if vw == nil || len(vw.online) == 0 {
		return nil
	}
	return vw.onlineAt(time.Now())
}

// consumeOne is the single-message path in full: the decision, the
// bookkeeping and deliver.
//
//go:noinline
func (c *Consumer) consumeOne(ctx context.Context, s *subscription, msgs []*primitive.MessageExt) (consumer.ConsumeResult, error) {
	vw := c.view.Load()
	t, v, rej := c.filter.decide(msgs[0], onlineNow(vw))
	c.hold()
	if v == skip {
		c.skipped.Add(1)
		return consumer.ConsumeSuccess, nil
	}
	c.handled.Add(1)
	vw.noteHandled(t, msgs[0])
	return c.deliver(ctx, s, t, rej, c.filter.route(t), msgs)
}

// consumeBatch splits a batch by tag and runs the handler once per tag.
func (c *Consumer) consumeBatch(ctx context.Context, s *subscription, msgs []*primitive.MessageExt) (consumer.ConsumeResult, error) {
	vw := c.view.Load()
	online := onlineNow(vw)
	var groups []tagGroup
	for _, m := range msgs {
		t, v, rej := c.filter.decide(m, online)
		if v == skip {
			c.skipped.Add(1)
			continue
		}
		c.handled.Add(1)
		vw.noteHandled(t, m)
		i := 0
		for ; i < len(groups); i++ {
			if groups[i].tag == t && (groups[i].rejected == nil) == (rej == nil) {
				break
			}
		}
		if i == len(groups) {
			groups = append(groups, tagGroup{tag: t, rejected: rej})
		}
		groups[i].msgs = append(groups[i].msgs, m)
	}
	c.hold()
	result := consumer.ConsumeSuccess
	var errs []error
	for _, g := range groups {
		r, err := c.deliver(ctx, s, g.tag, g.rejected, c.filter.route(g.tag), g.msgs)
		if err != nil {
			errs = append(errs, err)
		}
		if r != consumer.ConsumeSuccess {
			result = consumer.ConsumeRetryLater
		}
	}
	return result, errors.Join(errs...)
}

// deliver runs the handler on msgs of one tag with the route proof: the
// path of batches, takeovers, rejected tags, observers and spans.
//
//go:noinline
func (c *Consumer) deliver(ctx context.Context, s *subscription, t tagctx.Tag, rejected error, route tagctx.Route, msgs []*primitive.MessageExt) (consumer.ConsumeResult, error) {
	if rejected != nil {
		c.rejected.Add(uint64(len(msgs)))
	}
	// trace.go. Before With: a propagator's extraction (tagctx.Propagator
	// in a composite) must not overrule this consumer's decision.
	ctx, span := c.cfg.tracing.process(ctx, s.topic, c.group, msgs)
	ctx = tagctx.With(ctx, t)
	// Record's frame is only paid for when someone reads the proof, or
	// when it must report a misroute (none by construction: a lane
	// consumer handles only its tag, stable only what falls back to it).
	if c.cfg.observer != nil || route == tagctx.RouteMisroute || trace.SpanFromContext(ctx).IsRecording() {
		tagctx.Record(ctx, tagctx.Observation{
			Transport: Transport, Operation: s.topic, Traffic: t, Node: c.tag, Route: route, Rejected: rejected,
		}, c.cfg.observer)
	}
	r, err := s.h(ctx, msgs...)
	endProcess(span, r, err)
	return r, err
}
