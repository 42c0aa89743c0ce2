package mq_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// chaosRand is a chaos test's random source: seeded from the clock, or from
// MQ_CHAOS_SEED to replay a run. The seed is logged, and again on failure.
func chaosRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("MQ_CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("MQ_CHAOS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (MQ_CHAOS_SEED=%d replays it)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with seed %d", seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 0))
}

// retries records which messages a chaos handler asked to be retried, so a
// lost one can say whether it went through a retry topic.
type retries struct {
	mu     sync.Mutex
	bodies map[string]bool
}

// handler records what it handles in rec as name, after asking, at rate, for
// a retry of a message the first time it sees it. Its random source is
// drawn from rng, so a seed replays the same choices.
func (r *retries) handler(rng *rand.Rand, rate float64, rec *rocketmqtest.Recorder, name string) mq.Handler {
	var mu sync.Mutex
	own := rand.New(rand.NewPCG(rng.Uint64(), 1))
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		fail := own.Float64() < rate
		mu.Unlock()
		if fail && msgs[0].ReconsumeTimes == 0 {
			r.mu.Lock()
			if r.bodies == nil {
				r.bodies = map[string]bool{}
			}
			for _, m := range msgs {
				r.bodies[string(m.Body)] = true
			}
			r.mu.Unlock()
			return consumer.ConsumeRetryLater, nil
		}
		rec.Record(ctx, name, msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

func (r *retries) asked(body string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[body]
}

func (r *retries) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// reportLost fails t for the first ten lost bodies, with where each was
// stored (relative to t0) and whether a handler asked to retry it, after
// logging the run's events and what each stable instance believes.
func reportLost(t *testing.T, s *rocketmqtest.Server, topics []string, t0 time.Time, events []string, lost []string, r *retries, stables []*mq.Consumer) {
	t.Helper()
	if len(lost) == 0 {
		return
	}
	for _, e := range events {
		t.Log(e)
	}
	for i, c := range stables {
		t.Logf("stable-%d: leader %v, online %v, stats %+v", i, c.Leader(), c.Online(), c.Stats())
	}
	where := map[string]string{}
	for _, topic := range topics {
		for _, m := range s.Messages(topic) {
			where[string(m.Body)] = fmt.Sprintf("%s %s/q%d@%d stored %s", topic, m.Queue.BrokerName, m.Queue.QueueId, m.QueueOffset,
				time.UnixMilli(m.StoreTimestamp).Sub(t0).Round(time.Millisecond))
		}
	}
	for i, b := range lost {
		if i == 10 {
			break
		}
		t.Errorf("lost %s at %s (a handler asked to retry it: %v)", b, where[b], r.asked(b))
	}
}

// stableTotals sums the stable instances' takeovers and redeliveries.
func stableTotals(stables []*mq.Consumer) (takeovers, redelivered uint64) {
	for _, c := range stables {
		takeovers += c.Stats().Takeovers
		redelivered += c.Stats().Redelivered
	}
	return takeovers, redelivered
}
