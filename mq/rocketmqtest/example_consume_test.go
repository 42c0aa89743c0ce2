//go:build !race

package rocketmqtest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// This example runs rocketmq-client-go consumers, which race with
// themselves under -race (see skipIfClientRaces), and examples cannot skip.

// Send with the real producer, read back with the real pull consumer.
func Example() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 1); err != nil {
		log.Fatal(err)
	}

	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-producer"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("orders", []byte("order #1"))); err != nil {
		log.Fatal(err)
	}

	c, err := rocketmq.NewPullConsumer(
		consumer.WithNameServer([]string{s.NameServer()}),
		consumer.WithGroupName("billing"),
		consumer.WithInstance("example-consumer"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Subscribe("orders", consumer.MessageSelector{}); err != nil {
		log.Fatal(err)
	}
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	defer c.Shutdown()
	mq := s.Queues("orders")[0]
	res, err := c.PullFrom(context.Background(), &mq, 0, 32)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range res.GetMessageExts() {
		fmt.Printf("%s from %s queue %d\n", m.Body, m.Queue.BrokerName, m.Queue.QueueId)
	}
	// Output:
	// order #1 from broker-a queue 0
}

// Two push consumers share a group's queues; a Recorder collects what
// their handlers got, and Wait returns once every message arrived.
func ExampleRecorder() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 4); err != nil {
		log.Fatal(err)
	}

	rec := new(rocketmqtest.Recorder)
	for _, name := range []string{"billing-1", "billing-2"} {
		c, err := rocketmq.NewPushConsumer(
			consumer.WithNameServer([]string{s.NameServer()}),
			consumer.WithGroupName("billing"),
			consumer.WithInstance("example-"+name),
		)
		if err != nil {
			log.Fatal(err)
		}
		if err := c.Subscribe("orders", consumer.MessageSelector{}, rec.Handler(name)); err != nil {
			log.Fatal(err)
		}
		if err := c.Start(); err != nil {
			log.Fatal(err)
		}
		defer c.Shutdown()
	}

	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-recorder-producer"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	var bodies []string
	for i := range 20 {
		body := fmt.Sprintf("order #%d", i)
		bodies = append(bodies, body)
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("orders", []byte(body))); err != nil {
			log.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Wait(ctx, bodies...); err != nil {
		log.Fatal(err)
	}
	fmt.Println("received:", len(rec.ByBody()))
	// Output:
	// received: 20
}
