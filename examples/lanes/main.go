// Command lanes runs taglane end to end in one process on loopback: an HTTP
// gateway, a chain of gRPC services with stable and lane instances, and
// RocketMQ producers and consumers on the embedded broker. It sends stable
// and tagged traffic, takes a lane consumer offline mid-run, prints which
// instance served every hop and every message, and exits non-zero if
// anything was misrouted or lost. With -namesrv it runs against a real
// RocketMQ: it creates its topic there first, and counts only its own run's
// messages, so it can run again and again on the same broker.
//
//	go run ./examples/lanes
//	go run ./examples/lanes -requests 30 -namesrv 127.0.0.1:9876 -etcd 127.0.0.1:2379
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.Requests, "requests", 12, "requests to send before the lane consumer goes offline (and as many after)")
	flag.StringVar(&cfg.NameServer, "namesrv", "", "RocketMQ name server address (host:port) to use instead of the embedded broker; the demo creates its topic there")
	flag.StringVar(&cfg.Etcd, "etcd", "", "etcd address (host:port) to register and discover instances in, instead of an embedded etcd")
	flag.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "give up waiting for messages after this long")
	flag.Parse()
	cfg.Out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lanes:", err)
		os.Exit(1)
	}
	if !sum.ok() {
		os.Exit(1)
	}
}
