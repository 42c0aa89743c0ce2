package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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

	mu   sync.Mutex
	seen map[int][]Hop
}

var _ bus = (*rocketBus)(nil)

func startBus(ctx context.Context, cfg config, w *world) (_ *rocketBus, err error) {
	rlog.SetLogLevel("error")
	b := &rocketBus{seen: map[int][]Hop{}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	ns := cfg.NameServer
	if ns == "" {
		if b.broker, err = rocketmqtest.Run(); err != nil {
			return nil, err
		}
		if err := b.broker.CreateTopic(topic, 4); err != nil {
			return nil, err
		}
		ns = b.broker.NameServer()
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
	b.producer = mq.NewProducer(p)

	// A short refresh interval makes the demo's takeover quick; the
	// defaults suit a real environment.
	common := []mq.Option{mq.WithNameServer(ns), mq.WithObserver(w.ledger.observe), mq.WithRefreshInterval(250 * time.Millisecond)}
	if b.stable, err = b.startConsumer(tagctx.Tag{}, common); err != nil {
		return nil, err
	}
	if b.lane, err = b.startConsumer(laneX, common); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *rocketBus) startConsumer(node tagctx.Tag, common []mq.Option) (*mq.Consumer, error) {
	c, err := mq.NewConsumer("notifier", append(common, mq.WithNodeTag(node))...)
	if err != nil {
		return nil, err
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		hop := hopOf(ctx, "notifier", node, "rocketmq")
		hop.HandedOver = mq.HandedOver(ctx)
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range msgs {
			id, err := strconv.Atoi(string(m.Body))
			if err != nil {
				continue // not one of the demo's messages
			}
			b.seen[id] = append(b.seen[id], hop)
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return nil, err
	}
	return c, c.Start()
}

func (b *rocketBus) publish(ctx context.Context, id int) error {
	_, err := b.producer.SendSync(ctx, primitive.NewMessage(topic, []byte(strconv.Itoa(id))))
	return err
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
