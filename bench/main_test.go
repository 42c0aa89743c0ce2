package bench

import (
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go logs every connection and rebalance at info level.
	rlog.SetLogLevel("error")
	// Servers, connections and consumers the benchmarks and tests start
	// must all be gone at the end; only the client's own leftovers are
	// ignored.
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}
