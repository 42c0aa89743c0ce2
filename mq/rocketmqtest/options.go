package rocketmqtest

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// Limits and defaults, named after the RocketMQ settings they stand for.
const (
	// DefaultQueues is the queue count of auto-created topics: the
	// client's defaultTopicQueueNums, which a real broker honours.
	DefaultQueues = 4
	// MaxBrokers bounds WithBrokers; each broker is a listening socket.
	MaxBrokers = 16
	// MaxQueues bounds WithQueues and CreateTopic.
	MaxQueues = 1024
	// DefaultClusterName is brokerClusterName's default.
	DefaultClusterName = "DefaultCluster"
	// DefaultChannelExpiry is how long a broker keeps a consumer or
	// producer that stopped heartbeating on a live connection (120 s in
	// RocketMQ's ClientHousekeepingService).
	DefaultChannelExpiry = 120 * time.Second
	// DefaultIdleTimeout is how long a connection may go without a frame
	// in either direction before the server closes it
	// (serverChannelMaxIdleTimeSeconds, 120 s).
	DefaultIdleTimeout = 120 * time.Second
	// DefaultFrameBytesInFlight bounds the memory that partly received
	// frames hold across every connection of a Server; see
	// WithFrameBytesInFlight.
	DefaultFrameBytesInFlight = 128 << 20
	// DefaultMaxConns caps the open client connections of a Server, name
	// server and brokers together; see WithMaxConns.
	DefaultMaxConns = 4096
	// MinFrameBytesInFlight is the smallest WithFrameBytesInFlight: one
	// frame of the largest size (16 MiB) must fit.
	MinFrameBytesInFlight = remoting.DefaultMaxFrameSize
)

// DefaultDelayLevels is messageDelayLevel's default: "1s 5s 10s 30s 1m 2m 3m
// 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h". Level n waits DefaultDelayLevels[n-1].
var DefaultDelayLevels = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// Option configures Run (and RunT). A nil Option is ignored. Building an
// Option never panics: a bad argument is Run's error, naming the option
// ("rocketmqtest: WithX(...): ...").
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	brokers       int
	queues        int
	delayLevels   []time.Duration
	cluster       string
	autoCreate    bool
	channelExpiry time.Duration
	idleTimeout   time.Duration
	frameBytes    int64
	maxConns      int
	nsAddr        string
	brokerAddrs   []string
	retainMsgs    int
	retainBytes   int64
	logf          func(format string, args ...any)
}

func defaultConfig() config {
	return config{
		brokers:       1,
		queues:        DefaultQueues,
		delayLevels:   DefaultDelayLevels,
		cluster:       DefaultClusterName,
		autoCreate:    true,
		channelExpiry: DefaultChannelExpiry,
		idleTimeout:   DefaultIdleTimeout,
		frameBytes:    DefaultFrameBytesInFlight,
		maxConns:      DefaultMaxConns,
		nsAddr:        "127.0.0.1:0",
	}
}

// brokerAddr is where broker i listens.
func (c *config) brokerAddr(i int) string {
	if i < len(c.brokerAddrs) {
		return c.brokerAddrs[i]
	}
	return "127.0.0.1:0"
}

// WithBrokers runs n master brokers (broker-a, broker-b, ...), each on its
// own address, all in the name server's routes. The default is 1.
func WithBrokers(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > MaxBrokers {
			return fmt.Errorf("rocketmqtest: WithBrokers(%d): outside [1, %d]", n, MaxBrokers)
		}
		c.brokers = n
		return nil
	})
}

// WithQueues sets the read/write queue count of topics a broker creates on
// the fly (auto-created topics) and of CreateTopic with queues <= 0. The
// default is DefaultQueues. Note that a v2.1.2 producer sending to a topic
// that does not exist yet uses the route of TBW102 capped at its
// DefaultTopicQueueNums (4) until its next 30 s route refresh.
func WithQueues(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > MaxQueues {
			return fmt.Errorf("rocketmqtest: WithQueues(%d): outside [1, %d]", n, MaxQueues)
		}
		c.queues = n
		return nil
	})
}

// WithDelayLevels replaces the delay level table (DefaultDelayLevels). It
// governs delayed messages and redelivery after ConsumeRetryLater: a
// send-back with delay level 0 uses level 3 + the message's reconsume
// count, like RocketMQ. Levels past the end of the table use its last entry,
// so WithDelayLevels(100*time.Millisecond) makes every delay 100 ms.
func WithDelayLevels(levels ...time.Duration) Option {
	return optionFunc(func(c *config) error {
		if len(levels) == 0 {
			return errors.New("rocketmqtest: WithDelayLevels(): empty table")
		}
		for i, d := range levels {
			if d < 0 {
				return fmt.Errorf("rocketmqtest: WithDelayLevels: level %d is negative (%v)", i+1, d)
			}
		}
		c.delayLevels = append([]time.Duration(nil), levels...)
		return nil
	})
}

// WithClusterName sets brokerClusterName, which routes carry and every stored
// message gets as its CLUSTER property. The default is DefaultClusterName.
func WithClusterName(name string) Option {
	return optionFunc(func(c *config) error {
		if name == "" {
			return errors.New(`rocketmqtest: WithClusterName(""): empty`)
		}
		c.cluster = name
		return nil
	})
}

// WithAutoCreateTopics sets autoCreateTopicEnable (default true): whether a
// send to an unknown topic creates it, through the TBW102 route.
func WithAutoCreateTopics(enable bool) Option {
	return optionFunc(func(c *config) error {
		c.autoCreate = enable
		return nil
	})
}

// WithChannelExpiry sets how long a broker keeps a consumer or producer
// whose connection stays open but who stopped heartbeating (default 120 s,
// as in RocketMQ). On expiry the broker drops the client and closes its
// connection without notifying the rest of its group (no code 40, as on a
// real 4.9.4): they take its queues at their next periodic rebalance, within
// 20 s. rocketmq-client-go v2.1.2 heartbeats every 30 s, so an expiry below
// that drops live clients between heartbeats.
func WithChannelExpiry(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rocketmqtest: WithChannelExpiry(%v): not positive", d)
		}
		c.channelExpiry = d
		return nil
	})
}

// WithLogf sends the server's own diagnostics (malformed frames, closed
// connections) to logf, t.Logf for instance. By default they are dropped.
func WithLogf(logf func(format string, args ...any)) Option {
	return optionFunc(func(c *config) error {
		c.logf = logf
		return nil
	})
}

// WithIdleTimeout sets how long a connection may stay without a frame in
// either direction before the server closes it (default 120 s, RocketMQ's
// serverChannelMaxIdleTimeSeconds). A held pull does not count as traffic
// while it waits, as on the real broker. Closing is a normal close: the
// client's groups are dropped and their other members notified; the client
// reconnects on its next request and rejoins at its next heartbeat.
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rocketmqtest: WithIdleTimeout(%v): not positive", d)
		}
		c.idleTimeout = d
		return nil
	})
}

// WithFrameBytesInFlight bounds the memory that partly received frames hold
// across all connections (default DefaultFrameBytesInFlight, at least
// MinFrameBytesInFlight). A frame's buffer grows with the bytes that arrive,
// so a peer that announces 16 MiB and sends nothing costs 16 KiB, not
// 16 MiB; when a frame needs more and the bound is reached, its connection
// is closed (and logged), as for a malformed frame, and the others go on.
func WithFrameBytesInFlight(n int64) Option {
	return optionFunc(func(c *config) error {
		if n < MinFrameBytesInFlight {
			return fmt.Errorf("rocketmqtest: WithFrameBytesInFlight(%d): below %d", n, MinFrameBytesInFlight)
		}
		c.frameBytes = n
		return nil
	})
}

// WithMaxConns caps the client connections open at once across the name
// server and the brokers (default DefaultMaxConns). Each costs two
// goroutines and some 32 KiB of buffers, so without a cap a peer opening
// connections in a loop could take the test process's memory. A connection
// accepted beyond the cap is closed at once (and logged); the client sees
// EOF and may retry, as with a real broker refusing a channel. The real
// broker has no such cap of its own (the operating system's file limit
// plays that part).
func WithMaxConns(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("rocketmqtest: WithMaxConns(%d): below 1", n)
		}
		c.maxConns = n
		return nil
	})
}

// WithNameServerAddr makes the name server listen on addr ("host:port";
// default "127.0.0.1:0", a free port). Clients find it with NameServer.
func WithNameServerAddr(addr string) Option {
	return optionFunc(func(c *config) error {
		if err := checkListenAddr(addr); err != nil {
			return fmt.Errorf("rocketmqtest: WithNameServerAddr: %w", err)
		}
		c.nsAddr = addr
		return nil
	})
}

// WithBrokerAddrs makes broker i listen on addrs[i] (default
// "127.0.0.1:0" each). Routes announce the address the broker bound, so the
// host must be one clients can reach: 0.0.0.0 would be announced as is.
// There may be fewer addresses than brokers, not more.
func WithBrokerAddrs(addrs ...string) Option {
	return optionFunc(func(c *config) error {
		if len(addrs) > MaxBrokers {
			return fmt.Errorf("rocketmqtest: WithBrokerAddrs: %d addresses, at most %d", len(addrs), MaxBrokers)
		}
		for i, a := range addrs {
			if err := checkListenAddr(a); err != nil {
				return fmt.Errorf("rocketmqtest: WithBrokerAddrs: address %d: %w", i, err)
			}
		}
		c.brokerAddrs = append([]string(nil), addrs...)
		return nil
	})
}

// checkListenAddr accepts "host:port" with a literal IP host, which is what
// routes announce and what the stored messages' store host encodes.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", trim(addr), err)
	}
	if net.ParseIP(host).To4() == nil {
		return fmt.Errorf("%q: host must be an IPv4 address", trim(addr))
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port: %w", trim(addr), err)
	}
	return nil
}

// trim bounds a bad value quoted in an error.
func trim(s string) string {
	const n = 64
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// WithRetention makes every queue keep at most messages messages and bytes
// bytes of stored messages (0: no limit on that measure; both 0, the
// default, keep everything). Older messages are deleted as new ones arrive,
// the newest always stays: the queue's min offset moves up, as when a real
// broker deletes expired commit log files (there a whole file at a time,
// here message by message). A consumer behind the min offset gets what a
// real broker answers: PULL_OFFSET_MOVED with nextBeginOffset at the min
// offset, and a group that never committed reads back 22 QUERY_NOT_FOUND.
// Use it to run the server for long with bounded memory (cmd/minimq).
func WithRetention(messages int, bytes int64) Option {
	return optionFunc(func(c *config) error {
		if messages < 0 || bytes < 0 {
			return fmt.Errorf("rocketmqtest: WithRetention(%d, %d): negative", messages, bytes)
		}
		c.retainMsgs, c.retainBytes = messages, bytes
		return nil
	})
}
