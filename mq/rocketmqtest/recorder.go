package rocketmqtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Recorder collects what consumers' handlers received, so a test can wait
// for its messages and assert who got them and how often. It is safe for
// concurrent use; the zero Recorder is ready.
//
//	rec := new(rocketmqtest.Recorder)
//	_ = c1.Subscribe("orders", consumer.MessageSelector{}, rec.Handler("c1"))
//	_ = c2.Subscribe("orders", consumer.MessageSelector{}, rec.Handler("c2"))
//	// ... start the consumers, send bodies "a" and "b" ...
//	rec.WaitBodies(t, 10*time.Second, "a", "b")
//	if n := rec.Duplicates("a", "b"); n != 0 {
//		t.Errorf("%d duplicates", n)
//	}
type Recorder struct {
	mu      sync.Mutex
	all     []Delivery
	changed chan struct{} // closed by the next Record; nil until asked for
}

// Delivery is one message as a handler received it.
type Delivery struct {
	Consumer string // the name given to Handler or Record
	Msg      *primitive.MessageExt
	Batch    int // how many messages the handler call held
	// Ctx is the handler's context, for assertions on what it carried
	// (a traffic tag, say). Do not use it to make calls: its handler has
	// returned.
	Ctx context.Context
}

// Body returns the message body as a string.
func (d Delivery) Body() string { return string(d.Msg.Body) }

// Handler returns a push consumer handler that records every message under
// name and acknowledges it.
func (r *Recorder) Handler(name string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		r.Record(ctx, name, msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

// Record records msgs as one handler call of the consumer name, for
// handlers that do more than acknowledge.
func (r *Recorder) Record(ctx context.Context, name string, msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	for _, m := range msgs {
		r.all = append(r.all, Delivery{Consumer: name, Msg: m, Batch: len(msgs), Ctx: ctx})
	}
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// Changed returns a channel closed when messages are next recorded. A test
// waiting for a condition of its own takes the channel, checks the
// condition, and waits on the channel if it does not hold yet: nothing
// recorded in between is missed, and it never sleeps.
func (r *Recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// Deliveries returns every delivery so far, in the order recorded.
func (r *Recorder) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// ByBody maps each body received to the consumers that received it, in
// order; a body received twice by one consumer appears twice.
func (r *Recorder) ByBody() map[string][]string {
	out := map[string][]string{}
	for _, d := range r.Deliveries() {
		out[d.Body()] = append(out[d.Body()], d.Consumer)
	}
	return out
}

// Missing returns the bodies not received yet.
func (r *Recorder) Missing(bodies ...string) []string {
	got := r.ByBody()
	var missing []string
	for _, b := range bodies {
		if len(got[b]) == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// Duplicates counts the extra receipts of bodies: a body received three
// times counts two.
func (r *Recorder) Duplicates(bodies ...string) int {
	got := r.ByBody()
	n := 0
	for _, b := range bodies {
		if k := len(got[b]); k > 1 {
			n += k - 1
		}
	}
	return n
}

// Wait waits until every one of bodies was received at least once, or
// until ctx is done; the error then says how many are missing, and the
// first.
func (r *Recorder) Wait(ctx context.Context, bodies ...string) error {
	for {
		changed := r.Changed()
		missing := r.Missing(bodies...)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("rocketmqtest: %d of %d messages not received, first %q: %w",
				len(missing), len(bodies), missing[0], context.Cause(ctx))
		}
	}
}

// WaitBodies is Wait for a test: it fails t if timeout passes first.
func (r *Recorder) WaitBodies(t testing.TB, timeout time.Duration, bodies ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.Wait(ctx, bodies...); err != nil {
		t.Fatalf("after %v: %v", timeout, err)
	}
}
