package mq_test

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go logs every connection and rebalance at info level.
	rlog.SetLogLevel("error")
	if os.Getenv("MQ_NOLEAK") != "" {
		os.Exit(m.Run())
	}
	// Every goroutine of this package must be gone once Shutdown returns;
	// only the client's own leftovers are ignored.
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}

// skipIfClientRaces skips a test that runs rocketmq-client-go push consumers
// under the race detector, where the client races with itself (see
// rocketmqtest.SkipIfClientRaces). This package's own concurrency (view
// publication, liveness, takeover) is race-tested by the tests that do not
// start a push consumer. MQ_RACE_CLIENT=1 runs them anyway, to see the
// client's race for oneself.
func skipIfClientRaces(t testing.TB) {
	t.Helper()
	if os.Getenv("MQ_RACE_CLIENT") == "" {
		rocketmqtest.SkipIfClientRaces(t)
	}
}
