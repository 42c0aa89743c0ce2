package rocketmqtest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestSmoke(t *testing.T) {
	s := rocketmqtest.RunT(t)
	p, err := producer.NewDefaultProducer(producer.WithNameServer([]string{s.NameServer()}), producer.WithInstanceName("p1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for i := range 10 {
		r, err := p.SendSync(context.Background(), primitive.NewMessage("smoke", []byte(fmt.Sprint(i))))
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	c, err := consumer.NewPushConsumer(consumer.WithNameServer([]string{s.NameServer()}), consumer.WithGroupName("g1"), consumer.WithInstance("c1"))
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe("smoke", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)] = true
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 10 {
			t.Log("all received in", time.Until(deadline))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("got %d", len(got))
}
