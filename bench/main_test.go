package bench

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	// rocketmq-client-go logs to stdout, and go test puts a test binary's
	// output in one stream: its lines would land inside benchmark lines,
	// which benchstat then drops. Its errors are counted and summed up at
	// the end instead; BENCH_MQ_LOG=1 prints them as they come.
	log := &clientLog{print: os.Getenv("BENCH_MQ_LOG") != ""}
	rlog.SetLogger(log)
	code := 0
	func() {
		defer func() {
			if n := log.errors.Load(); n > 0 {
				fmt.Fprintf(os.Stderr, "rocketmq-client-go logged %d errors and warnings (BENCH_MQ_LOG=1 prints them)\n", n)
			}
		}()
		// Servers, connections and consumers the benchmarks and tests
		// start must all be gone at the end; only the client's own
		// leftovers are ignored.
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(rocketmqtest.IgnoreClientGoroutines()...); err != nil {
				fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
				code = 1
			}
		}
	}()
	os.Exit(code)
}

// clientLog is rocketmq-client-go's logger while the benchmarks run.
type clientLog struct {
	print  bool
	errors atomic.Int64
}

func (l *clientLog) Debug(string, map[string]any) {}
func (l *clientLog) Info(string, map[string]any)  {}
func (l *clientLog) Warning(msg string, fields map[string]any) {
	l.note("warning", msg, fields)
}
func (l *clientLog) Error(msg string, fields map[string]any) { l.note("error", msg, fields) }
func (l *clientLog) Fatal(msg string, fields map[string]any) { l.note("fatal", msg, fields) }
func (l *clientLog) Level(string)                            {}
func (l *clientLog) OutputPath(string) error                 { return nil }

func (l *clientLog) note(level, msg string, fields map[string]any) {
	l.errors.Add(1)
	if l.print {
		fmt.Fprintf(os.Stderr, "rocketmq-client-go %s: %s %v\n", level, msg, fields)
	}
}
