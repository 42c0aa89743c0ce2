package mq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// A program that owns its topic creates it before its consumers start: a
// fresh broker has no route for it until the first send.
func ExampleCreateTopic() {
	srv, err := rocketmqtest.Run(rocketmqtest.WithBrokers(2), rocketmqtest.WithAutoCreateTopics(false))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mq.CreateTopic(ctx, []string{srv.NameServer()}, "orders", mq.WithTopicQueues(2)); err != nil {
		log.Fatal(err)
	}
	for _, q := range srv.Queues("orders") {
		fmt.Println(q.BrokerName, q.QueueId)
	}
	// Output:
	// broker-a 0
	// broker-a 1
	// broker-b 0
	// broker-b 1
}

// TestStartOnMissingTopic: on a broker that creates no topic for consumers
// (a fresh real broker), Start names the topic and the remedy; after
// CreateTopic the same setup starts and consumes.
func TestStartOnMissingTopic(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2), rocketmqtest.WithAutoCreateTopics(false))
	const topic = "not-yet"
	for _, tag := range []string{"", "blue"} {
		c, err := mq.NewConsumer("svc", testOpts(s, mq.WithNode(tagOrZero(tag)), mq.WithInstanceName(instance("missing")))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe(topic, consumer.MessageSelector{}, nop); err != nil {
			t.Fatal(err)
		}
		err = c.Start()
		c.Shutdown()
		if !errors.Is(err, mq.ErrTopicNotExist) || !strings.Contains(err.Error(), `"not-yet"`) || !strings.Contains(err.Error(), "mq.CreateTopic") {
			t.Errorf("Start (tag %q) on a missing topic: %v, want ErrTopicNotExist naming %q and mq.CreateTopic", tag, err, topic)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mq.CreateTopic(ctx, []string{s.NameServer()}, topic, mq.WithTopicQueues(3)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Queues(topic)); n != 6 {
		t.Errorf("queues after CreateTopic: %d, want 3 on each of 2 brokers", n)
	}
	// Creating it again is an update, not an error.
	if err := mq.CreateTopic(ctx, []string{s.NameServer()}, topic, mq.WithTopicQueues(3)); err != nil {
		t.Errorf("CreateTopic of an existing topic: %v", err)
	}
	rec := new(rocketmqtest.Recorder)
	startConsumer(t, s, "svc", topic, "", nil, rec)
	p := newProducer(t, s)
	msgs := bodies("created", 20)
	send(t, p, topic, "", msgs)
	rec.WaitBodies(t, 20*time.Second, msgs...)
}

func tagOrZero(tag string) tagctx.Tag {
	if tag == "" {
		return tagctx.Tag{}
	}
	return tagctx.MustParse(tag)
}

func nop(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return consumer.ConsumeSuccess, nil
}

func TestCreateTopicErrors(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	ns := []string{s.NameServer()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name        string
		nameServers []string
		topic       string
		opts        []mq.Option
		want        string
	}{
		{name: "empty topic", nameServers: ns, topic: "", want: "mq: empty topic name"},
		{name: "long topic", nameServers: ns, topic: strings.Repeat("t", 200), want: `longer than RocketMQ's 127`},
		{name: "bad characters", nameServers: ns, topic: "orders/eu", want: `mq: topic "orders/eu": want characters`},
		{name: "no name server", topic: "orders", want: `mq: CreateTopic: name servers "": want at least one address, none empty`},
		{name: "zero queues", nameServers: ns, topic: "orders", opts: []mq.Option{mq.WithTopicQueues(0)}, want: "mq: WithTopicQueues(0): outside [1, "},
		{name: "unknown cluster", nameServers: ns, topic: "orders", opts: []mq.Option{mq.WithCluster("nope")}, want: `know no master broker (cluster "nope")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mq.CreateTopic(ctx, tc.nameServers, tc.topic, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CreateTopic: %v, want an error containing %q", err, tc.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: the rejected value is not clipped", len(err.Error()))
			}
		})
	}
	if len(s.Queues("orders")) != 0 {
		t.Error("a rejected CreateTopic created the topic")
	}
}

// TestShutdownDuringStart: a Shutdown that runs while Start is still
// starting the push consumer leaves nothing running (goleak in TestMain
// checks the client's goroutines), and Start says what happened.
func TestShutdownDuringStart(t *testing.T) {
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mq.CreateTopic(ctx, []string{s.NameServer()}, "racing"); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		c, err := mq.NewConsumer("svc", testOpts(s, mq.WithInstanceName(instance("racing")))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("racing", consumer.MessageSelector{}, nop); err != nil {
			t.Fatal(err)
		}
		started := make(chan error, 1)
		go func() { started <- c.Start() }()
		if i%2 == 0 {
			runtime.Gosched()
		}
		if err := c.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		err = <-started
		t.Logf("Start: %v", err)
		if err != nil && !strings.Contains(err.Error(), "Shutdown") && !strings.Contains(err.Error(), "shut down") {
			t.Errorf("Start racing Shutdown: %v", err)
		}
	}
}
