package etcd_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taglane/taglane/discovery"
)

// BenchmarkWatchFanOut: one registration, and the time until each of 100
// clients (each with its own etcd connection and watch) has it.
func BenchmarkWatchFanOut(b *testing.B) {
	const clients = 100
	srv := startEtcd(b)
	ctx := context.Background()
	var mu sync.Mutex
	var want int
	var have [clients]int
	cond := sync.NewCond(&mu)
	for i := range clients {
		reg := newRegistry(b, newClient(b, srv))
		stop, err := reg.Watch("fan", func(s discovery.State) {
			mu.Lock()
			have[i] = len(s.Instances)
			cond.Broadcast()
			mu.Unlock()
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(stop)
	}
	reg := newRegistry(b, newClient(b, srv))
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		r, err := reg.Register(ctx, discovery.Instance{Service: "fan", Addr: fmt.Sprintf("10.0.%d.%d:80", n/250, n%250)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close(context.Background()) })
		mu.Lock()
		want = n
		timedOut := false
		timer := time.AfterFunc(30*time.Second, func() {
			mu.Lock()
			timedOut = true
			cond.Broadcast()
			mu.Unlock()
		})
		for !all(have[:], want) && !timedOut {
			cond.Wait()
		}
		mu.Unlock()
		timer.Stop()
		if timedOut {
			b.Fatalf("registration %d not seen by every watcher after 30s", n)
		}
	}
}

func all(have []int, want int) bool {
	for _, h := range have {
		if h < want {
			return false
		}
	}
	return true
}
