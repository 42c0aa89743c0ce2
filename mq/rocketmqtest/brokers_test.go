package rocketmqtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestTwoBrokers(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	bs := s.Brokers()
	if len(bs) != 2 || bs[0].Name != "broker-a" || bs[1].Name != "broker-b" || bs[0].Addr == bs[1].Addr {
		t.Fatalf("brokers %v, want broker-a and broker-b on their own addresses", bs)
	}
	const topic, group = "two", "two-group"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Queues(topic)); n != 8 {
		t.Fatalf("%d queues, want 4 on each broker", n)
	}
	p := newProducer(t, s)
	want := bodies("two", 80)
	sendAll(t, p, topic, want)
	perBroker := map[string]int{}
	for _, m := range s.Messages(topic) {
		perBroker[m.Queue.BrokerName]++
	}
	if perBroker["broker-a"] != 40 || perBroker["broker-b"] != 40 {
		t.Errorf("messages per broker %v, want 40 each (round robin over 8 queues)", perBroker)
	}
	rec := new(rocketmqtest.Recorder)
	c := newPushConsumer(t, s, group, topic, rec, nil)
	rec.WaitBodies(t, 10*time.Second, want...)
	fromBroker := map[string]bool{}
	for _, d := range rec.Deliveries() {
		fromBroker[d.Msg.Queue.BrokerName] = true
	}
	if !fromBroker["broker-a"] || !fromBroker["broker-b"] {
		t.Errorf("consumed from brokers %v, want both", fromBroker)
	}
	// The consumer heartbeats to every broker: each knows it.
	id := clientID(t, s, group, c.name)
	waitFor(t, 5*time.Second, func() string {
		got := s.OnlineConsumers(group)
		if len(got) != 1 || got[0] != id {
			return fmt.Sprintf("online %v, want [%s]", got, id)
		}
		return ""
	}, nil)
}
