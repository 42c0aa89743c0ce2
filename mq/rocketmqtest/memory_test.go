package rocketmqtest_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// heapBytes returns the bytes of live heap objects after a full GC: what
// the process holds, whatever the garbage collector's pacing.
func heapBytes() uint64 {
	runtime.GC()
	runtime.GC() // the second cycle frees what the first one's finalizers released
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkStoreMemory measures what the store keeps per stored message of
// 128 bytes, sent as rocketmq-client-go v2.1.2 sends a plain message
// (UNIQ_KEY and WAIT properties): the heap after a GC, before and after
// b.N sends, divided by b.N. B/msg is everything; overhead-B/msg is that
// minus the 128 body bytes.
func BenchmarkStoreMemory(b *testing.B) {
	s := rocketmqtest.RunT(b)
	const topic = "memory"
	if err := s.CreateTopic(topic, 4); err != nil {
		b.Fatal(err)
	}
	c := dial(b, s.Brokers()[0].Addr, nil)
	body := make([]byte, 128)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	ctx := context.Background()
	ext := func(i int) map[string]string {
		return map[string]string{
			"a": "pg", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(i % 4), "f": "0",
			"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0",
			"i": fmt.Sprintf("UNIQ_KEY\x017F0000010001180D2C1B%012X\x02WAIT\x01true\x02", i),
			"j": "0", "k": "false", "l": "16", "m": "false",
		}
	}
	before := heapBytes()
	b.ResetTimer()
	for i := range b.N {
		r, err := c.Invoke(ctx, remoting.NewRequest(remoting.SendMessageV2, ext(i), body))
		if err != nil || r.Code != remoting.Success {
			b.Fatalf("send: %v %v", r, err)
		}
	}
	b.StopTimer()
	after := heapBytes()
	per := (float64(after) - float64(before)) / float64(b.N)
	b.ReportMetric(per, "B/msg")
	b.ReportMetric(per-float64(len(body)), "overhead-B/msg")
	if got := s.MaxOffset(s.Queues(topic)[0]); got == 0 {
		b.Fatal("nothing stored") // keeps the store reachable until after the measure
	}
}
