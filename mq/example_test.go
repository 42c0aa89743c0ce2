package mq_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// A wrapped producer stamps the context's tag into every message.
func ExampleWrapProducer() {
	srv, err := rocketmqtest.Run() // or a real name server
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	raw, err := rocketmq.NewProducer(
		producer.WithNameServer([]string{srv.NameServer()}),
		producer.WithInstanceName("example-producer"),
	)
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
	for _, m := range srv.Messages("orders") {
		fmt.Printf("%s: x-tag=%s\n", m.Body, m.GetProperty("x-tag"))
	}
	// Output: order 42: x-tag=feature-x
}
