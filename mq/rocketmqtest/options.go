package rocketmqtest

import (
	"fmt"
	"time"
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
)

// DefaultDelayLevels is messageDelayLevel's default: "1s 5s 10s 30s 1m 2m 3m
// 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h". Level n waits DefaultDelayLevels[n-1].
var DefaultDelayLevels = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// Option configures Run.
type Option func(*config) error

type config struct {
	brokers       int
	queues        int
	delayLevels   []time.Duration
	cluster       string
	autoCreate    bool
	channelExpiry time.Duration
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
	}
}

// WithBrokers runs n master brokers (broker-a, broker-b, ...), each on its
// own address, all in the name server's routes. The default is 1.
func WithBrokers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxBrokers {
			return fmt.Errorf("rocketmqtest: broker count %d outside [1, %d]", n, MaxBrokers)
		}
		c.brokers = n
		return nil
	}
}

// WithQueues sets the read/write queue count of topics a broker creates on
// the fly (auto-created topics) and of CreateTopic with queues <= 0. The
// default is DefaultQueues. Note that a v2.1.2 producer sending to a topic
// that does not exist yet uses the route of TBW102 capped at its
// DefaultTopicQueueNums (4) until its next 30 s route refresh.
func WithQueues(n int) Option {
	return func(c *config) error {
		if n < 1 || n > MaxQueues {
			return fmt.Errorf("rocketmqtest: queue count %d outside [1, %d]", n, MaxQueues)
		}
		c.queues = n
		return nil
	}
}

// WithDelayLevels replaces the delay level table (DefaultDelayLevels). It
// governs delayed messages and redelivery after ConsumeRetryLater: a
// send-back with delay level 0 uses level 3 + the message's reconsume
// count, like RocketMQ. Levels past the end of the table use its last entry,
// so WithDelayLevels(100*time.Millisecond) makes every delay 100 ms.
func WithDelayLevels(levels ...time.Duration) Option {
	return func(c *config) error {
		if len(levels) == 0 {
			return fmt.Errorf("rocketmqtest: empty delay level table")
		}
		for i, d := range levels {
			if d < 0 {
				return fmt.Errorf("rocketmqtest: delay level %d is negative (%v)", i+1, d)
			}
		}
		c.delayLevels = append([]time.Duration(nil), levels...)
		return nil
	}
}

// WithClusterName sets brokerClusterName, which routes carry and every stored
// message gets as its CLUSTER property. The default is DefaultClusterName.
func WithClusterName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return fmt.Errorf("rocketmqtest: empty cluster name")
		}
		c.cluster = name
		return nil
	}
}

// WithAutoCreateTopics sets autoCreateTopicEnable (default true): whether a
// send to an unknown topic creates it, through the TBW102 route.
func WithAutoCreateTopics(enable bool) Option {
	return func(c *config) error {
		c.autoCreate = enable
		return nil
	}
}

// WithChannelExpiry sets how long a broker keeps a consumer or producer
// whose connection stays open but who stopped heartbeating (default 120 s,
// as in RocketMQ). On expiry the broker drops the client and closes its
// connection.
func WithChannelExpiry(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("rocketmqtest: channel expiry %v is not positive", d)
		}
		c.channelExpiry = d
		return nil
	}
}

// WithLogf sends the server's own diagnostics (malformed frames, closed
// connections) to logf, t.Logf for instance. By default they are dropped.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *config) error {
		c.logf = logf
		return nil
	}
}
