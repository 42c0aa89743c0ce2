package mq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/tagctx"
)

// Topic limits and defaults.
const (
	// MaxTopicLen is RocketMQ 4.9.4's limit on a topic name
	// (Validators.TOPIC_MAX_LENGTH).
	MaxTopicLen = 127
	// DefaultTopicQueues is CreateTopic's queue count per broker, the
	// brokers' own default for topics they create (defaultTopicQueueNums).
	DefaultTopicQueues = 4
	// MaxTopicQueues bounds WithTopicQueues.
	MaxTopicQueues = 1024
	// maxQuoted bounds how much of a rejected value an error quotes.
	maxQuoted = 64
)

// ErrTopicNotExist says a topic has no route on the name servers. A push
// consumer of rocketmq-client-go v2.1.2 cannot start on such a topic, even
// with the brokers' autoCreateTopicEnable: they create a topic only at its
// first send. Create it first (CreateTopic, or mqadmin updateTopic).
var ErrTopicNotExist = errors.New("mq: topic does not exist")

// clip returns at most maxQuoted bytes of s, for error messages about
// outside input.
func clip(s string) string {
	if len(s) > maxQuoted {
		return s[:maxQuoted] + "..."
	}
	return s
}

func checkTopic(topic string) error {
	switch {
	case topic == "":
		return errors.New("mq: empty topic name")
	case len(topic) > MaxTopicLen:
		return fmt.Errorf("mq: topic %q is %d characters, longer than RocketMQ's %d", clip(topic), len(topic), MaxTopicLen)
	case !validGroupChars(topic): // the same character set as groups
		return fmt.Errorf("mq: topic %q: want characters of [%%|a-zA-Z0-9_-]", clip(topic))
	}
	return nil
}

// WithTopicQueues sets CreateTopic's read and write queue count per broker
// (default DefaultTopicQueues).
func WithTopicQueues(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > MaxTopicQueues {
			return fmt.Errorf("mq: WithTopicQueues(%d): outside [1, %d]", n, MaxTopicQueues)
		}
		c.topicQueues = n
		return nil
	})
}

// WithCluster makes CreateTopic create the topic only on the master
// brokers of the named cluster (default: every master broker the name
// servers know).
func WithCluster(name string) Option {
	return optionFunc(func(c *config) error {
		if name == "" {
			return errors.New(`mq: WithCluster(""): empty`)
		}
		c.cluster = name
		return nil
	})
}

// CreateTopic creates topic on every master broker of the cluster, as
// mqadmin updateTopic -c does (UPDATE_AND_CREATE_TOPIC, code 17, on each
// master that GET_BROKER_CLUSTER_INFO, code 106, lists), with
// WithTopicQueues read and write queues and read-write permission. An
// existing topic gets those queue counts. It returns once the name servers
// route the topic to every one of those brokers, so a consumer can start
// on it at once. It is for programs that own their topics: test
// environments, demos, and consumers started before any producer.
//
//	err := mq.CreateTopic(ctx, []string{"127.0.0.1:9876"}, "orders", mq.WithTopicQueues(8))
func CreateTopic(ctx context.Context, nameServers []string, topic string, opts ...Option) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if len(nameServers) == 0 || slices.Contains(nameServers, "") {
		return fmt.Errorf("mq: CreateTopic: name servers %s: want at least one address, none empty", tagctx.Quote(strings.Join(nameServers, ",")))
	}
	cfg, err := newConfig(append([]Option{WithNameServer(nameServers...)}, opts...))
	if err != nil {
		return err
	}
	ac := admin.New(cfg.nameServers, cfg.adminTimeout)
	defer ac.Close()
	masters, err := ac.Masters(ctx)
	if err != nil {
		return fmt.Errorf("mq: create topic %q: cluster info: %w", topic, err)
	}
	if cfg.cluster != "" {
		masters = slices.DeleteFunc(masters, func(m admin.Master) bool { return m.Cluster != cfg.cluster })
	}
	if len(masters) == 0 {
		return fmt.Errorf("mq: create topic %q: the name servers %q know no master broker (cluster %q)", topic, cfg.nameServers, cfg.cluster)
	}
	var errs []error
	for _, m := range masters {
		if err := ac.CreateTopic(ctx, m.Addr, topic, cfg.topicQueues); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mq: create topic %q: %w", topic, err)
	}
	// A broker registers a new topic with the name servers as it creates
	// it; wait until the route shows every broker, bounded.
	wctx, cancel := context.WithTimeout(ctx, 4*cfg.adminTimeoutOrDefault())
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		bs, err := ac.Route(wctx, topic)
		if err == nil && routesAll(bs, masters) {
			return nil
		}
		select {
		case <-wctx.Done():
			if err == nil {
				err = errors.New("not every broker in the route yet")
			}
			return fmt.Errorf("mq: create topic %q: created on %d brokers, but the name servers do not route it: %w", topic, len(masters), errors.Join(err, context.Cause(wctx)))
		case <-tick.C:
		}
	}
}

func routesAll(bs []admin.Broker, masters []admin.Master) bool {
	for _, m := range masters {
		if !slices.ContainsFunc(bs, func(b admin.Broker) bool { return b.Addr == m.Addr }) {
			return false
		}
	}
	return true
}

// checkTopicsExist returns an error wrapping ErrTopicNotExist for the first
// subscribed topic the name servers have no route for; other failures are
// left to the push consumer's own start, which reports them.
func (c *Consumer) checkTopicsExist(ctx context.Context) error {
	for _, s := range c.topics() {
		if _, err := c.admin.Route(ctx, s.topic); errors.Is(err, admin.ErrTopicNotExist) {
			return fmt.Errorf("%w: %q on name servers %q; consumer group %q cannot start on it "+
				"(rocketmq-client-go v2.1.2 needs the topic's route at Start, and brokers create a topic only at its first send, "+
				"even with autoCreateTopicEnable): create it first with mq.CreateTopic or mqadmin updateTopic",
				ErrTopicNotExist, s.topic, c.cfg.nameServers, c.group)
		}
	}
	return nil
}
