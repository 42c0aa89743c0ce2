// Command minimq runs the embedded RocketMQ name server and broker of
// mq/rocketmqtest as a standalone process, for local development with any
// RocketMQ client, in any language: it starts in milliseconds in a few MB,
// where a real 4.9.4 broker takes seconds and some 300 MB.
//
//	go run github.com/taglane/taglane/mq/cmd/minimq -addr 127.0.0.1:9876
//
// It prints where it listens, one line per socket:
//
//	minimq: nameserver 127.0.0.1:9876
//	minimq: broker broker-a 127.0.0.1:10911
//	minimq: ready
//
// and runs until SIGINT or SIGTERM, then closes every connection and exits
// 0. Port 0 picks a free port; the lines above say which.
//
// It is not a RocketMQ for production: everything lives in memory and is
// gone when it stops (no persistence across restarts), there is no slave,
// no transactional messages and no ACL. Each queue keeps its newest
// messages up to -retain-messages and -retain-bytes; older ones are deleted
// and consumers behind them are moved on, as a real broker does when it
// deletes commit log files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run serves until ctx ends and returns the exit code: 0 after a clean
// stop, 2 for bad flags, 1 when the server cannot start.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("minimq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr        = fs.String("addr", "127.0.0.1:9876", "name server listen address (host:port, IPv4 host; port 0 picks one)")
		brokerAddrs = fs.String("broker-addrs", "127.0.0.1:10911", "comma-separated listen addresses of the brokers, in order; brokers without one pick a free port on 127.0.0.1")
		brokers     = fs.Int("brokers", 1, "number of master brokers (broker-a, broker-b, ...)")
		queues      = fs.Int("queues", rocketmqtest.DefaultQueues, "queues of auto-created topics")
		cluster     = fs.String("cluster", rocketmqtest.DefaultClusterName, "broker cluster name")
		autoCreate  = fs.Bool("auto-create-topics", true, "create topics on their first send (autoCreateTopicEnable)")
		retainMsgs  = fs.Int("retain-messages", 0, "messages each queue keeps, 0 for no limit")
		retainBytes = fs.Int64("retain-bytes", 64<<20, "bytes of messages each queue keeps, 0 for no limit")
		idle        = fs.Duration("idle", rocketmqtest.DefaultIdleTimeout, "close connections without traffic for this long")
		expiry      = fs.Duration("channel-expiry", rocketmqtest.DefaultChannelExpiry, "drop clients that stopped heartbeating for this long")
		maxConns    = fs.Int("max-conns", rocketmqtest.DefaultMaxConns, "client connections open at once, name server and brokers together; more are closed at once")
		verbose     = fs.Bool("v", false, "log the server's diagnostics (malformed frames, closed connections) to stderr")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "minimq: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var baddrs []string
	if *brokerAddrs != "" {
		baddrs = strings.Split(*brokerAddrs, ",")
		if *brokers >= 0 && len(baddrs) > *brokers {
			baddrs = baddrs[:*brokers]
		}
	}
	opts := []rocketmqtest.Option{
		rocketmqtest.WithNameServerAddr(*addr),
		rocketmqtest.WithBrokers(*brokers),
		rocketmqtest.WithBrokerAddrs(baddrs...),
		rocketmqtest.WithQueues(*queues),
		rocketmqtest.WithClusterName(*cluster),
		rocketmqtest.WithAutoCreateTopics(*autoCreate),
		rocketmqtest.WithRetention(*retainMsgs, *retainBytes),
		rocketmqtest.WithIdleTimeout(*idle),
		rocketmqtest.WithChannelExpiry(*expiry),
		rocketmqtest.WithMaxConns(*maxConns),
	}
	if *verbose {
		opts = append(opts, rocketmqtest.WithLogf(func(format string, args ...any) {
			fmt.Fprintf(stderr, time.Now().Format(time.TimeOnly)+" "+format+"\n", args...)
		}))
	}
	s, err := rocketmqtest.Run(opts...)
	if err != nil {
		if msg, ok := flagError(fs, err); ok {
			fmt.Fprintf(stderr, "minimq: %s\n", msg)
			fs.Usage()
			return 2
		}
		fmt.Fprintf(stderr, "minimq: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "minimq: nameserver %s\n", s.NameServer())
	for _, b := range s.Brokers() {
		fmt.Fprintf(stdout, "minimq: broker %s %s\n", b.Name, b.Addr)
	}
	fmt.Fprintln(stdout, "minimq: ready")
	<-ctx.Done()
	fmt.Fprintln(stdout, "minimq: stopping")
	s.Close()
	return 0
}

// optionFlags names the flags behind each rocketmqtest option minimq sets,
// so a value the server refuses is reported as the flag the user typed.
var optionFlags = map[string][]string{
	"WithNameServerAddr": {"addr"},
	"WithBrokerAddrs":    {"broker-addrs"},
	"WithBrokers":        {"brokers"},
	"WithQueues":         {"queues"},
	"WithClusterName":    {"cluster"},
	"WithRetention":      {"retain-messages", "retain-bytes"},
	"WithIdleTimeout":    {"idle"},
	"WithChannelExpiry":  {"channel-expiry"},
	"WithMaxConns":       {"max-conns"},
}

// flagError rewrites an option error of rocketmqtest ("rocketmqtest:
// WithQueues(0): outside [1, 1024]") as the flags' ("-queues 0: outside
// [1, 1024]"). ok is false for errors that are not about an option (a port
// in use): those are start failures, not bad flags.
func flagError(fs *flag.FlagSet, err error) (msg string, ok bool) {
	rest, found := strings.CutPrefix(err.Error(), "rocketmqtest: ")
	if !found {
		return "", false
	}
	name := rest
	if i := strings.IndexAny(rest, "(:"); i >= 0 {
		name = rest[:i]
	}
	flags, found := optionFlags[name]
	if !found {
		return "", false
	}
	rest = strings.TrimPrefix(rest, name)
	if strings.HasPrefix(rest, "(") {
		if i := strings.Index(rest, ")"); i >= 0 {
			rest = rest[i+1:]
		}
	}
	rest = strings.TrimPrefix(rest, ": ")
	var named []string
	for _, f := range flags {
		named = append(named, fmt.Sprintf("-%s %s", f, fs.Lookup(f).Value))
	}
	return fmt.Sprintf("invalid %s: %s", strings.Join(named, " "), rest), true
}
