package rocketmqtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Two facts about rocketmq-client-go v2.1.2 that every test suite driving it
// meets, whatever it tests.

// IgnoreClientGoroutines returns goleak options that ignore the goroutines
// rocketmq-client-go v2.1.2 leaves running after Shutdown, and only those,
// so goleak still catches your own:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
//	}
func IgnoreClientGoroutines() []goleak.Option {
	return []goleak.Option{
		// The client starts its timers through primitive.WithRecover and
		// many of them sleep before looking at their done channel: 10 s
		// (name server refresh, offset persistence), 1 s (heartbeat),
		// 15 min (cleanExpiredMsg), hours (statistics).
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		// A pull held by the broker when the consumer shuts down: the client
		// closes the connection but waits for its 30 s request timeout.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*ResponseFuture).waitResponse"),
		// Pull loops sleeping (3 s after an error) before noticing shutdown.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*pushConsumer).pullMessage"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/consumer.(*defaultPullConsumer).pullMessage"),
		// Rebalances queued behind one that waits for its 3 s request
		// timeout on a connection Shutdown closed.
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceImmediately"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceIfNotPaused"),
		// A package-level cache in the client with a janitor that never stops.
		goleak.IgnoreAnyFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	}
}

// SkipIfClientRaces skips t when the race detector is on.
// rocketmq-client-go v2.1.2 races with itself: a rebalance that changes a
// consumer's queues writes SubscriptionData.SubVersion
// (consumer/push_consumer.go, messageQueueChanged) while its route and
// heartbeat timers read it (internal/model.go, SubscriptionData.Clone)
// without a lock. Every consumer start and every NOTIFY_CONSUMER_IDS_CHANGED
// rebalances, so a test running push consumers fails under -race at random,
// inside the client. Call it first in such tests, and run them without -race
// too.
func SkipIfClientRaces(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("rocketmq-client-go v2.1.2 has a data race between rebalance and its timers; run without -race")
	}
}
