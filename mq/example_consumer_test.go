//go:build !race

// The consumer example runs rocketmq-client-go's push consumer, which races
// with itself under the race detector (see race_test.go).

package mq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// A stable consumer handles a lane's message while the lane has no
// consumer online; the handler's context carries the message's tag.
func ExampleNewConsumer() {
	srv, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.CreateTopic("orders", 4); err != nil {
		log.Fatal(err)
	}

	got := make(chan string, 1)
	c, err := mq.NewConsumer("orders-service",
		mq.WithNameServer(srv.NameServer()),
		mq.WithNode(tagctx.Tag{}), // stable; the default is tagctx.Node()
		mq.WithObserver(func(_ context.Context, o tagctx.Observation) {
			fmt.Printf("route proof: traffic %q, node %q, %s\n", o.Traffic, o.Node, o.Route)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	err = c.Subscribe("orders", consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				got <- fmt.Sprintf("%s handled %q with tag %q", c.Group(), m.Body, tagctx.From(ctx))
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()

	raw, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServer()}),
		producer.WithInstanceName("example-consumer-producer"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := mq.WrapProducer(raw)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	if _, err := p.SendSync(ctx, primitive.NewMessage("orders", []byte("order 42"))); err != nil {
		log.Fatal(err)
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	// Output:
	// route proof: traffic "feature-x", node "", fallback
	// orders-service handled "order 42" with tag "feature-x"
}

// A handler that must not act on stale data checks whether its messages
// were handed over late from a lane that went offline.
func ExampleHandedOver() {
	handle := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if mq.HandedOver(ctx) {
				log.Printf("%s: late, from offline lane %q; queued %v", m.MsgId, tagctx.From(ctx),
					time.Since(time.UnixMilli(m.BornTimestamp)))
			}
			// ... handle m ...
		}
		return consumer.ConsumeSuccess, nil
	}
	c, err := mq.NewConsumer("notifier", mq.WithNameServer("127.0.0.1:9876"))
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Subscribe("orders", consumer.MessageSelector{}, handle)
}

// A lane consumer's Start returns once the stable consumers see it, so
// messages of its tag sent from then on go to the lane only. WaitVisible
// tells the same for a consumer started with WithStartWait(0).
func ExampleConsumer_WaitVisible() {
	srv, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.CreateTopic("orders", 4); err != nil {
		log.Fatal(err)
	}
	handle := func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return consumer.ConsumeSuccess, nil
	}
	start := func(tag tagctx.Tag, opts ...mq.Option) *mq.Consumer {
		c, err := mq.NewConsumer("orders-service", append([]mq.Option{mq.WithNameServer(srv.NameServer()), mq.WithNode(tag)}, opts...)...)
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Subscribe("orders", consumer.MessageSelector{}, handle); err != nil {
			log.Fatal(err)
		}
		if err := c.Start(); err != nil {
			log.Fatal(err)
		}
		return c
	}
	stable := start(tagctx.Tag{})
	defer stable.Shutdown()
	lane := start(tagctx.MustParse("feature-x"), mq.WithStartWait(0))
	defer lane.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println("stable sees the lane:", lane.WaitVisible(ctx) == nil)
	// Output: stable sees the lane: true
}

// A lane consumer of feature-x handles the messages of feature-x2 while
// feature-x2 has no consumer online: its chain is feature-x2 -> feature-x
// -> stable. Every consumer of the base group gets the same chains.
func ExampleWithParents_handled() {
	srv, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.CreateTopic("orders", 4); err != nil {
		log.Fatal(err)
	}
	x, x2 := tagctx.MustParse("feature-x"), tagctx.MustParse("feature-x2")

	got := make(chan string, 1)
	c, err := mq.NewConsumer("orders-service",
		mq.WithNameServer(srv.NameServer()),
		mq.WithNode(x),
		mq.WithParents(x2, x),
		mq.WithObserver(func(_ context.Context, o tagctx.Observation) {
			fmt.Printf("route proof: traffic %q, node %q, %s\n", o.Traffic, o.Node, o.Route)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	err = c.Subscribe("orders", consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				got <- fmt.Sprintf("%s handled %q with tag %q", c.Group(), m.Body, tagctx.From(ctx))
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()

	raw, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.NameServer()}),
		producer.WithInstanceName("example-parents-producer"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := mq.WrapProducer(raw)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	if _, err := p.SendSync(tagctx.With(context.Background(), x2), primitive.NewMessage("orders", []byte("order 43"))); err != nil {
		log.Fatal(err)
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}

	// Output:
	// route proof: traffic "feature-x2", node "feature-x", fallback
	// feature-x_orders-service handled "order 43" with tag "feature-x2"
}
