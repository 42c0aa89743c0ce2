package rocketmqtest_test

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go logs every connection and rebalance through
	// logrus at info level; tests only want its errors.
	rlog.SetLogLevel("error")
	if os.Getenv("ROCKETMQTEST_NOLEAK") != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m, leakOptions()...)
}

// leakOptions ignores goroutines rocketmq-client-go v2.1.2 leaves behind
// after Shutdown, and only those; every goroutine of the server itself must
// be gone once Close returns.
func leakOptions() []goleak.Option {
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
