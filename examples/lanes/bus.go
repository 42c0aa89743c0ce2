package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

const topic = "order-events"

// rocketBus publishes order events through a lane-stamping producer and
// consumes them with a stable notifier and a feature-x lane notifier.
type rocketBus struct {
	broker   *rocketmqtest.Server // nil with a real name server
	producer rocketmq.Producer
	stable   *mq.Consumer
	lane     *mq.Consumer

	// run prefixes every message body, so a run on a broker that still
	// holds an earlier run's messages (replayed after a lost commit, or
	// handed over from a lane group's old offsets) counts only its own.
	run    string
	ledger *ledger

	mu      sync.Mutex
	seen    map[int][]Hop
	foreign int // messages of other runs (or not the demo's) handled and ignored
}

var _ bus = (*rocketBus)(nil)

func startBus(ctx context.Context, cfg config, w *world) (_ *rocketBus, err error) {
	rlog.SetLogLevel("error")
	b := &rocketBus{seen: map[int][]Hop{}, run: runID(), ledger: &w.ledger}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	ns := cfg.NameServer
	if ns == "" {
		// Like a fresh real broker: no topic appears for consumers.
		if b.broker, err = rocketmqtest.Run(rocketmqtest.WithAutoCreateTopics(false)); err != nil {
			return nil, err
		}
		ns = b.broker.NameServer()
	}
	// The demo owns its topic. A push consumer cannot start on a topic
	// that does not exist yet, and a broker creates one only at its first
	// send, so create it (or update it) on every master broker first.
	if err := mq.CreateTopic(ctx, []string{ns}, topic); err != nil {
		return nil, err
	}

	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{ns}),
		producer.WithGroupName("demo_orders_producer"),
		producer.WithInstanceName("demo-orders-producer"),
		producer.WithRetry(2))
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	if b.producer, err = mq.WrapProducer(p); err != nil {
		return nil, err
	}

	// The consumers report their route proof per handled batch; the
	// handler counts hops per message (a handed-over batch of k messages
	// is k hops), so the observer here only collects misroutes and
	// rejected tags.
	common := []mq.Option{mq.WithNameServer(ns), mq.WithObserver(w.ledger.observeBatch)}
	if b.stable, err = b.startConsumer(tagctx.Tag{}, common); err != nil {
		return nil, err
	}
	if b.lane, err = b.startConsumer(laneX, common); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *rocketBus) startConsumer(node tagctx.Tag, common []mq.Option) (*mq.Consumer, error) {
	c, err := mq.NewConsumer("notifier", append(common, mq.WithNode(node))...)
	if err != nil {
		return nil, err
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		hop := hopOf(ctx, "notifier", node, "rocketmq")
		hop.HandedOver = mq.HandedOver(ctx)
		b.mu.Lock()
		defer b.mu.Unlock()
		n := 0
		for _, m := range msgs {
			id, ok := b.idOf(m.Body)
			if !ok {
				b.foreign++ // another run's message, or not the demo's
				continue
			}
			b.seen[id] = append(b.seen[id], hop)
			n++
		}
		b.ledger.messageHops(n, hop.Route == tagctx.RouteFallback.String())
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return nil, err
	}
	return c, c.Start()
}

func (b *rocketBus) publish(ctx context.Context, id int) error {
	_, err := b.producer.SendSync(ctx, primitive.NewMessage(topic, []byte(b.run+strconv.Itoa(id))))
	return err
}

// runID returns a body prefix unique to this run.
func runID() string {
	var r [6]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "run-" + hex.EncodeToString(r[:]) + "-"
}

// idOf returns the id of a message of this run.
func (b *rocketBus) idOf(body []byte) (int, bool) {
	rest, ok := strings.CutPrefix(string(body), b.run)
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(rest)
	return id, err == nil
}

// waitReady waits until the stable notifier sees the lane notifier online,
// so the first phase shows lane messages going to the lane.
func (b *rocketBus) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !slices.Contains(b.stable.Online(), laneX) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the stable notifier did not see notifier@%s online: %w", laneX, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

func (b *rocketBus) stopLane() error { return b.lane.Shutdown() }

func (b *rocketBus) delivered() map[int][]Hop {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int][]Hop, len(b.seen))
	for id, hops := range b.seen {
		out[id] = slices.Clone(hops)
	}
	return out
}

func (b *rocketBus) redelivered() int { return int(b.stable.Stats().Redelivered) }

func (b *rocketBus) others() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.foreign
}

func (b *rocketBus) close() {
	for _, c := range []*mq.Consumer{b.lane, b.stable} {
		if c != nil {
			_ = c.Shutdown()
		}
	}
	if b.producer != nil {
		_ = b.producer.Shutdown()
	}
	if b.broker != nil {
		_ = b.broker.Close()
	}
}
