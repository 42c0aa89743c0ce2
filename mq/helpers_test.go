package mq_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// Test timing: refresh liveness fast, so a lane's going offline is seen
// and taken over within about a second and a half. The staleness bound is
// generous: on a loaded machine a refresh can take a few hundred
// milliseconds, and a stale view makes stable handle every tag (safe, but
// the tests that check "the lane only" would see duplicates).
const (
	testRefresh   = 50 * time.Millisecond
	testStaleness = time.Second
	testMargin    = 200 * time.Millisecond
)

var instanceSeq atomic.Int64

func instance(name string) string {
	return fmt.Sprintf("%s-%d", name, instanceSeq.Add(1))
}

// newProducer starts a producer on s, wrapped by mq.WrapProducer with opts.
func newProducer(t testing.TB, s *rocketmqtest.Server, opts ...mq.Option) rocketmq.Producer {
	t.Helper()
	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName(instance("producer")),
		producer.WithRetry(2),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	wp, err := mq.WrapProducer(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return wp
}

// waitFor polls cond until it returns "" or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		why := cond()
		if why == "" {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("after %v: %s", timeout, why)
		case <-tick.C:
		}
	}
}

// testOpts are the options every test consumer gets.
func testOpts(s *rocketmqtest.Server, extra ...mq.Option) []mq.Option {
	return append([]mq.Option{
		mq.WithNameServer(s.NameServer()),
		mq.WithRefreshInterval(testRefresh),
		mq.WithStaleness(testStaleness),
		mq.WithTakeoverMargin(testMargin),
		mq.WithAdminTimeout(time.Second),
	}, extra...)
}

// startConsumer starts a consumer of base on topic in role tag ("" for
// stable) whose handler is h (the recorder's if nil). It is shut down when
// the test ends, unless the test did it first.
func startConsumer(t testing.TB, s *rocketmqtest.Server, base, topic, tag string, h mq.Handler, rec *rocketmqtest.Recorder, extra ...mq.Option) *mq.Consumer {
	t.Helper()
	skipIfClientRaces(t)
	var nodeTag tagctx.Tag
	name := "stable"
	if tag != "" {
		nodeTag = tagctx.MustParse(tag)
		name = tag
	}
	opts := testOpts(s, append([]mq.Option{mq.WithNode(nodeTag), mq.WithInstanceName(instance(base + "-" + name))}, extra...)...)
	c, err := mq.NewConsumer(base, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = rec.Handler(name)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	return c
}

// waitOnline waits until the stable consumer sees exactly the lanes want.
func waitOnline(t testing.TB, c *mq.Consumer, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, 10*time.Second, func() string {
		var got []string
		for _, tag := range c.Online() {
			got = append(got, tag.String())
		}
		if slices.Equal(got, want) {
			return ""
		}
		return fmt.Sprintf("stable sees lanes %q online, want %q", got, want)
	})
}

// clientID finds the client ID the broker knows a consumer by.
func clientID(t testing.TB, s *rocketmqtest.Server, c *mq.Consumer) string {
	t.Helper()
	var id string
	waitFor(t, 5*time.Second, func() string {
		for _, m := range s.OnlineConsumers(c.Group()) {
			if strings.HasSuffix(m, "@"+c.InstanceName()) {
				id = m
				return ""
			}
		}
		return fmt.Sprintf("%q not online in group %q", c.InstanceName(), c.Group())
	})
	return id
}

// send sends one message per body with tag ("" for untagged).
func send(t testing.TB, p rocketmq.Producer, topic, tag string, bodies []string) {
	t.Helper()
	ctx := tagctx.WithUntagged(context.Background())
	if tag != "" {
		ctx = tagctx.With(context.Background(), tagctx.MustParse(tag))
	}
	for _, b := range bodies {
		if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(b))); err != nil {
			t.Fatalf("send %q: %v", b, err)
		}
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// stream sends messages round-robin over tags ("" for untagged) in the
// background, one per tick, until stopped.
type stream struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	sent map[string][]string // tag -> bodies, in send order
	n    int
}

func startStream(t testing.TB, p rocketmq.Producer, topic, prefix string, every time.Duration, tags ...string) *stream {
	st := &stream{stop: make(chan struct{}), done: make(chan struct{}), sent: map[string][]string{}}
	go func() {
		defer close(st.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-st.stop:
				return
			case <-tick.C:
			}
			tag := tags[i%len(tags)]
			ctx := tagctx.WithUntagged(context.Background())
			name := "untagged"
			if tag != "" {
				ctx, name = tagctx.With(context.Background(), tagctx.MustParse(tag)), tag
			}
			body := fmt.Sprintf("%s-%s-%05d", prefix, name, i)
			if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body))); err != nil {
				t.Errorf("send %q: %v", body, err)
				continue
			}
			st.mu.Lock()
			st.sent[tag] = append(st.sent[tag], body)
			st.n++
			st.mu.Unlock()
		}
	}()
	t.Cleanup(st.halt)
	return st
}

func (st *stream) halt() {
	select {
	case <-st.stop:
	default:
		close(st.stop)
	}
	<-st.done
}

// count returns how many messages were sent so far.
func (st *stream) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.n
}

// bodies stops the stream and returns what it sent with tag.
func (st *stream) bodies(tag string) []string {
	st.halt()
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.sent[tag])
}

// waitSent waits until the stream sent n more messages.
func (st *stream) waitSent(t testing.TB, n int) {
	t.Helper()
	target := st.count() + n
	waitFor(t, 20*time.Second, func() string {
		if c := st.count(); c < target {
			return fmt.Sprintf("stream sent %d of %d", c, target)
		}
		return ""
	})
}

// gate makes a lane handler die like a crashed process: from kill on, it
// handles nothing and never returns until the test ends, or until its
// context is done: a parent lane's takeover calls the handler with a
// context that its Shutdown cancels, and crash calls Shutdown (a killed
// process runs nothing more, so it cannot be held up by its handler).
type gate struct {
	dead    atomic.Bool
	release chan struct{}
}

func newGate(t testing.TB) *gate {
	g := &gate{release: make(chan struct{})}
	t.Cleanup(func() { close(g.release) })
	return g
}

func (g *gate) wrap(h mq.Handler) mq.Handler {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		if g.dead.Load() {
			select {
			case <-g.release:
			case <-ctx.Done():
			}
			return consumer.ConsumeRetryLater, nil
		}
		return h(ctx, msgs...)
	}
}

// crash kills a consumer: its handler freezes (g, if not nil), the broker
// drops its connections at once (as the kernel closes a killed process's
// sockets), and Shutdown keeps the frozen client from reconnecting and
// rejoining at its next heartbeat. Its offsets stay where its handler got.
// KillClient, not DropClient: a heartbeat the client had in flight can
// still rejoin after Shutdown, on a connection nobody closes (see
// rocketmqtest.Server.KillClient), which a killed process cannot.
func crash(t testing.TB, s *rocketmqtest.Server, c *mq.Consumer, g *gate) {
	t.Helper()
	id := clientID(t, s, c)
	if g != nil {
		g.dead.Store(true)
	}
	if s.KillClient(id) == 0 {
		t.Fatalf("KillClient(%q) closed no connection", id)
	}
	c.Shutdown()
}
