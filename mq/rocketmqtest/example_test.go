package rocketmqtest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// Inspect what the broker stored, as a consumer would decode it.
func ExampleServer_Messages() {
	s, err := rocketmqtest.Run(rocketmqtest.WithClusterName("test-cluster"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-messages"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	msg := primitive.NewMessage("audit", []byte("login")).WithTag("user")
	if _, err := p.SendSync(context.Background(), msg); err != nil {
		log.Fatal(err)
	}
	for _, m := range s.Messages("audit") {
		fmt.Println(string(m.Body), m.GetTags(), m.GetProperty("CLUSTER"), m.QueueOffset)
	}
	// Output:
	// login user test-cluster 0
}

// Make the name server refuse routes, then recover.
func ExampleServer_FailRequests() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-faults"),
		producer.WithRetry(0),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()

	s.FailRequests(rocketmqtest.SendMessage, rocketmqtest.Fault{Code: rocketmqtest.SystemBusy, Remark: "too busy"})
	_, err = p.SendSync(context.Background(), primitive.NewMessage("jobs", []byte("j1")))
	fmt.Println(err)

	s.ClearFaults()
	res, err := p.SendSync(context.Background(), primitive.NewMessage("jobs", []byte("j1")))
	fmt.Println(res.Status == primitive.SendOK, err)
	// Output:
	// CODE: 2, DESC: too busy
	// true <nil>
}

// Shorten the delay levels so that retries and delayed messages arrive in
// milliseconds instead of RocketMQ's 1s 5s 10s 30s 1m ...
func ExampleWithDelayLevels() {
	s, err := rocketmqtest.Run(rocketmqtest.WithDelayLevels(10 * time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-delay"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	msg := primitive.NewMessage("reminders", []byte("later")).WithDelayTimeLevel(3)
	if _, err := p.SendSync(context.Background(), msg); err != nil {
		log.Fatal(err)
	}
	for range 500 { // bounded: 5 s
		if ms := s.Messages("reminders"); len(ms) == 1 {
			fmt.Println(string(ms[0].Body), ms[0].GetProperty("DELAY"))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// later 3
}

// Find out which consumers of a group are online, as the mq lanes do.
func ExampleServer_OnlineConsumers() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(len(s.OnlineConsumers("billing")), s.ConsumerGroups("orders"))
	// Output:
	// 0 []
}

// Keep the newest three messages of each queue: older ones are deleted and
// the queue's min offset moves up, as on a broker that deleted old files.
func ExampleWithRetention() {
	s, err := rocketmqtest.Run(rocketmqtest.WithRetention(3, 0))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("metrics", 1); err != nil {
		log.Fatal(err)
	}
	p, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{s.NameServer()}),
		producer.WithInstanceName("example-retention"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	for _, body := range []string{"m0", "m1", "m2", "m3", "m4"} {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage("metrics", []byte(body))); err != nil {
			log.Fatal(err)
		}
	}
	q := s.Queues("metrics")[0]
	fmt.Println("offsets", s.MinOffset(q), "to", s.MaxOffset(q))
	for _, m := range s.QueueMessages(q) {
		fmt.Println(m.QueueOffset, string(m.Body))
	}
	// Output:
	// offsets 2 to 5
	// 2 m2
	// 3 m3
	// 4 m4
}
