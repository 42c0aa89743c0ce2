package rocketmqtest_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// BenchmarkProduceConsume measures the server end to end through the real
// client: an async producer keeps up to 256 sends in flight, one push
// consumer with default options receives everything. The producer side of
// rocketmq-client-go is the bottleneck (four write syscalls and several
// goroutines per send). On a starved machine a send may outlive the
// client's 3 s async timeout, and v2.1.2 then panics in its own callback
// (producer.go sendAsync dereferences the nil response).
func BenchmarkProduceConsume(b *testing.B) {
	s := rocketmqtest.RunT(b)
	const topic = "bench"
	if err := s.CreateTopic(topic, 4); err != nil {
		b.Fatal(err)
	}
	p := newProducer(b, s)
	var received atomic.Int64
	all := make(chan struct{})
	target := int64(b.N)
	newPushConsumer(b, s, "bench-group", topic, nil, func(*primitive.MessageExt) consumer.ConsumeResult {
		if received.Add(1) == target {
			close(all)
		}
		return consumer.ConsumeSuccess
	})
	sem := make(chan struct{}, 256)
	var nerr atomic.Int64
	failed := make(chan error, 1)
	body := []byte("a benchmark message of some 40 bytes....")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sem <- struct{}{}
		msg := primitive.NewMessage(topic, body).WithKeys([]string{strconv.Itoa(i)})
		err := p.SendAsync(ctx, func(_ context.Context, _ *primitive.SendResult, err error) {
			<-sem
			if err != nil {
				nerr.Add(1)
				select {
				case failed <- err:
				default:
				}
			}
		}, msg)
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case err := <-failed:
		b.Fatal(err)
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d", received.Load(), b.N)
	}
	b.StopTimer()
	if n := nerr.Load(); n > 0 {
		b.Fatalf("%d sends failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkStart measures Run + Close: a name server and a broker, started
// and torn down.
func BenchmarkStart(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s, err := rocketmqtest.Run()
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkServerSendPull measures the server alone: raw SEND_MESSAGE_V2
// requests over mq/internal/remoting from parallel goroutines, then one
// pull of each 32 messages back, without rocketmq-client-go's overhead.
func BenchmarkServerSendPull(b *testing.B) {
	s := rocketmqtest.RunT(b)
	if err := s.CreateTopic("raw", 4); err != nil {
		b.Fatal(err)
	}
	c := dial(b, s.Brokers()[0].Addr, nil)
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			q := strconv.Itoa(int(i % 4))
			r, err := c.Invoke(context.Background(), remoting.NewRequest(remoting.SendMessageV2, map[string]string{
				"a": "pg", "b": "raw", "e": q, "f": "0", "g": "0", "h": "0", "i": "UNIQ_KEY\x01x\x02", "j": "0", "m": "false",
			}, []byte("a benchmark message of some 40 bytes....")))
			if err != nil || r.Code != remoting.Success {
				b.Fatalf("send: %v %v", r, err)
			}
			if i%32 == 0 {
				off, _ := strconv.ParseInt(r.ExtFields["queueOffset"], 10, 64)
				r, err := c.Invoke(context.Background(), remoting.NewRequest(remoting.PullMessage, map[string]string{
					"consumerGroup": "g", "topic": "raw", "queueId": q, "queueOffset": strconv.FormatInt(max(off-31, 0), 10),
					"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0",
				}, nil))
				if err != nil || r.Code != remoting.Success {
					b.Fatalf("pull: %v %v", r, err)
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
