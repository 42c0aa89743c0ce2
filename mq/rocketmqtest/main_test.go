package rocketmqtest_test

import (
	"os"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go logs every connection and rebalance through
	// logrus at info level; tests only want its errors.
	rlog.SetLogLevel("error")
	if os.Getenv("ROCKETMQTEST_NOLEAK") != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}
