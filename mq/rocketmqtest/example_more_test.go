package rocketmqtest_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func ExampleRun() {
	s, err := rocketmqtest.Run() // one name server and one broker on 127.0.0.1
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(len(s.Brokers()), s.NameServer() != "")
	// Output: 1 true
}

// In a test, RunT closes the server when the test ends.
func ExampleRunT() {
	var t *testing.T // the test's own (compiled, not run: no Output)
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	_ = s.NameServer() // producer.WithNameServer([]string{s.NameServer()})
}

func ExampleWithBrokers() {
	s, err := rocketmqtest.Run(rocketmqtest.WithBrokers(2))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 2); err != nil { // on every broker
		log.Fatal(err)
	}
	for _, q := range s.Queues("orders") {
		fmt.Println(q.BrokerName, q.QueueId)
	}
	_, err = rocketmqtest.Run(rocketmqtest.WithBrokers(0))
	fmt.Println(err)
	// Output:
	// broker-a 0
	// broker-a 1
	// broker-b 0
	// broker-b 1
	// rocketmqtest: WithBrokers(0): outside [1, 16]
}

// The queue count of topics the broker creates on first send.
func ExampleWithQueues() {
	s, err := rocketmqtest.Run(rocketmqtest.WithQueues(2))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{s.NameServer()}), producer.WithInstanceName("example-queues"))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("new-topic", []byte("hi"))); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(s.Queues("new-topic")))
	// Output: 2
}

// With auto-creation off, as on a broker started with
// autoCreateTopicEnable=false, only the topics a test creates exist: a send
// to any other topic fails.
func ExampleWithAutoCreateTopics() {
	s, err := rocketmqtest.Run(rocketmqtest.WithAutoCreateTopics(false))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println(slices.Contains(s.Topics(), "orders"), slices.Contains(s.Topics(), "new-topic"))
	// Output: true false
}

func ExampleWithClusterName() {
	_, err := rocketmqtest.Run(rocketmqtest.WithClusterName(""))
	fmt.Println(err != nil)
	// Output: true
}

// Route the broker's log lines to the test log.
func ExampleWithLogf() {
	var t *testing.T // the test's own (compiled, not run: no Output)
	rocketmqtest.RunT(t, rocketmqtest.WithLogf(t.Logf))
}

// How long a consumer connection that stopped heartbeating stays listed.
func ExampleWithChannelExpiry() {
	s, err := rocketmqtest.Run(rocketmqtest.WithChannelExpiry(2 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_, err = rocketmqtest.Run(rocketmqtest.WithChannelExpiry(-time.Second))
	fmt.Println(err != nil)
	// Output: true
}

func ExampleServer_CreateTopic() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 4); err != nil {
		log.Fatal(err)
	}
	q := s.Queues("orders")
	fmt.Println(len(q), s.MaxOffset(q[0]))
	// Output: 4 0
}

// Seed a group's position, as an operator's reset would, and read it back.
func ExampleServer_SetCommittedOffset() {
	s, err := rocketmqtest.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateTopic("orders", 1); err != nil {
		log.Fatal(err)
	}
	q := s.Queues("orders")[0]
	_, ok := s.CommittedOffset("billing", q)
	fmt.Println(ok)
	if err := s.SetCommittedOffset("billing", q, 0); err != nil {
		log.Fatal(err)
	}
	off, ok := s.CommittedOffset("billing", q)
	fmt.Println(off, ok)
	// Output:
	// false
	// 0 true
}

func ExampleRetryTopic() {
	fmt.Println(rocketmqtest.RetryTopic("billing"), rocketmqtest.DLQTopic("billing"))
	// Output: %RETRY%billing %DLQ%billing
}

// A package's TestMain that checks for leaked goroutines, leaving out the
// ones rocketmq-client-go v2.1.2 never stops.
func ExampleIgnoreClientGoroutines() {
	var m *testing.M // TestMain's own (compiled, not run: no Output)
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}

// Tests that run push consumers skip under -race: the client races with
// itself. They run in the plain pass.
func ExampleSkipIfClientRaces() {
	var t *testing.T // the test's own (compiled, not run: no Output)
	rocketmqtest.SkipIfClientRaces(t)
}
