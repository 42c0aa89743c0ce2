package mq

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/taglane/taglane/tagctx"
)

// Defaults and limits of the options.
const (
	// DefaultRefreshInterval is how often a stable consumer reads the
	// liveness of lane groups from the brokers: a handful of small admin
	// requests per instance, cheap on loopback or in one data centre.
	DefaultRefreshInterval = 250 * time.Millisecond
	// DefaultOfflineAfter is how many consecutive "no consumer" answers
	// turn an online lane offline. One is enough for online: handing a
	// lane's message to it when it just died only delays it (takeover
	// hands it back), while a flapping "offline" costs duplicates.
	DefaultOfflineAfter = 2
	// DefaultStalenessFactor times the refresh interval is how old a
	// liveness view may be before a stable consumer stops trusting it and
	// handles every tag itself.
	DefaultStalenessFactor = 4
	// DefaultTakeoverMargin is added to the takeover delay, for timer and
	// scheduling latency on the stable instances and broker round trips.
	DefaultTakeoverMargin = 250 * time.Millisecond
	// DefaultStartWait bounds how long a lane consumer's Start waits for
	// the stable consumers to see it (see Consumer.WaitVisible).
	DefaultStartWait = 5 * time.Second
	// MinRefreshInterval keeps a misconfiguration from hammering brokers.
	MinRefreshInterval = 10 * time.Millisecond
	// MaxGroupLen is RocketMQ 4.9.4's limit on a group name
	// (Validators.CHARACTER_MAX_LENGTH).
	MaxGroupLen = 255
)

// Option configures WrapProducer, NewConsumer and CreateTopic. Options a
// constructor has no use for are ignored by it; a nil Option is ignored.
// Building an Option never panics: a bad argument is kept, and the
// constructor returns it as an error naming the option ("mq: WithX(...)").
type Option interface {
	apply(*config) error
}

// optionFunc is an Option whose argument is checked when it is applied.
type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	propertyKey    string
	nodeTag        tagctx.Tag
	nodeTagSet     bool
	prefix         string
	observer       tagctx.Observer
	nameServers    []string
	consumerOpts   []consumer.Option
	refresh        time.Duration
	staleness      time.Duration
	offlineAfter   int
	takeoverMargin time.Duration
	adminTimeout   time.Duration
	instance       string
	handoverBatch  int
	startWait      time.Duration
	topicQueues    int
	cluster        string
	tracing        tracing // trace.go
	// parents is each lane's parent chain (WithParents), without the lane
	// and without stable, which ends every chain.
	parents map[tagctx.Tag][]tagctx.Tag
}

func newConfig(opts []Option) (config, error) {
	c := config{
		propertyKey:    tagctx.DefaultBaggageKey,
		refresh:        DefaultRefreshInterval,
		offlineAfter:   DefaultOfflineAfter,
		takeoverMargin: DefaultTakeoverMargin,
		handoverBatch:  32,
		startWait:      DefaultStartWait,
		topicQueues:    DefaultTopicQueues,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&c); err != nil {
			return config{}, err
		}
	}
	if c.staleness == 0 {
		c.staleness = DefaultStalenessFactor * c.refresh
	}
	if c.staleness < c.refresh {
		return config{}, fmt.Errorf("mq: WithStaleness(%v): shorter than the refresh interval %v", c.staleness, c.refresh)
	}
	if !c.nodeTagSet {
		c.nodeTag = tagctx.Node()
	}
	if err := checkChains(c.parents); err != nil {
		return config{}, err
	}
	c.tracing.resolve()
	return c, nil
}

// WithPropertyKey sets the message user property carrying the tag
// (default tagctx.DefaultBaggageKey, "x-tag").
func WithPropertyKey(key string) Option {
	return optionFunc(func(c *config) error {
		if key == "" {
			return errors.New(`mq: WithPropertyKey(""): empty`)
		}
		c.propertyKey = key
		return nil
	})
}

// WithNode sets the consumer's role explicitly: a lane consumer of tag,
// or, with the zero Tag, a stable consumer. The default is tagctx.Node().
// It is the node tag of the instance, named as in httpmw and rpc.
func WithNode(tag tagctx.Tag) Option {
	return optionFunc(func(c *config) error {
		c.nodeTag, c.nodeTagSet = tag, true
		return nil
	})
}

// WithNodeTag is WithNode.
//
// Deprecated: use WithNode, the name every taglane package uses.
func WithNodeTag(tag tagctx.Tag) Option { return WithNode(tag) }

// WithGroupPrefix prefixes the stable group (e.g. "test_" makes base group
// "orders" the stable group "test_orders"). Lane groups are always
// "<tag>_<base>".
func WithGroupPrefix(prefix string) Option {
	return optionFunc(func(c *config) error {
		if prefix != "" && !validGroupChars(prefix) {
			return fmt.Errorf("mq: WithGroupPrefix(%s): want characters of [%%|a-zA-Z0-9_-]", tagctx.Quote(prefix))
		}
		c.prefix = prefix
		return nil
	})
}

// WithObserver receives the route proof of every handled message group.
func WithObserver(o tagctx.Observer) Option {
	return optionFunc(func(c *config) error {
		c.observer = o
		return nil
	})
}

// WithNameServer sets the name servers. NewConsumer needs them for its own
// admin queries (liveness, offsets) and passes them on to the push consumer.
func WithNameServer(addrs ...string) Option {
	return optionFunc(func(c *config) error {
		if len(addrs) == 0 || slices.Contains(addrs, "") {
			return fmt.Errorf("mq: WithNameServer(%s): want at least one address, none empty", tagctx.Quote(strings.Join(addrs, ",")))
		}
		c.nameServers = slices.Clone(addrs)
		return nil
	})
}

// WithConsumerOptions passes options to the underlying push consumer
// (credentials, batch size, ...). The group name, the client instance and
// the message model are the lanes' to set: a later consumer.WithGroupName,
// consumer.WithInstance or consumer.WithConsumerModel here is overridden.
// A consumer.WithFilterMessageHook here replaces the consumer's own hook,
// which skips messages before they are consumed (see the package
// documentation): yours run, and the skips cost a little more.
func WithConsumerOptions(opts ...consumer.Option) Option {
	return optionFunc(func(c *config) error {
		c.consumerOpts = append(c.consumerOpts, opts...)
		return nil
	})
}

// WithRefreshInterval sets how often a stable consumer reads lane liveness
// (default DefaultRefreshInterval; at least MinRefreshInterval).
func WithRefreshInterval(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < MinRefreshInterval {
			return fmt.Errorf("mq: WithRefreshInterval(%v): below %v", d, MinRefreshInterval)
		}
		c.refresh = d
		return nil
	})
}

// WithStaleness sets how old a liveness view may get before a stable
// consumer handles every tag itself (default DefaultStalenessFactor times
// the refresh interval).
func WithStaleness(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("mq: WithStaleness(%v): must be positive", d)
		}
		c.staleness = d
		return nil
	})
}

// WithOfflineAfter sets how many consecutive offline answers make an online
// lane offline (default DefaultOfflineAfter).
func WithOfflineAfter(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("mq: WithOfflineAfter(%d): must be at least 1", n)
		}
		c.offlineAfter = n
		return nil
	})
}

// WithTakeoverMargin sets the margin added to the takeover delay (default
// DefaultTakeoverMargin).
func WithTakeoverMargin(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("mq: WithTakeoverMargin(%v): negative", d)
		}
		c.takeoverMargin = d
		return nil
	})
}

// WithAdminTimeout bounds each admin request (default 3 s).
func WithAdminTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("mq: WithAdminTimeout(%v): must be positive", d)
		}
		c.adminTimeout = d
		return nil
	})
}

// WithInstanceName sets the push consumer's client instance name, which
// must be unique in the process (default: generated). The lanes need a
// connection of their own per consumer: on a shared one, a stopped group
// stays "online" for about two minutes.
func WithInstanceName(name string) Option {
	return optionFunc(func(c *config) error {
		if name == "" {
			return errors.New(`mq: WithInstanceName(""): empty`)
		}
		c.instance = name
		return nil
	})
}

// WithStartWait bounds how long a lane consumer's Start waits until the
// stable consumers see it (default DefaultStartWait); 0 makes Start return
// as soon as the push consumer runs, and WaitVisible tells when stable
// sees it.
func WithStartWait(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("mq: WithStartWait(%v): negative", d)
		}
		c.startWait = d
		return nil
	})
}

// WithParents declares that messages of lane may be handled by the lanes
// in parents, in order, before stable: a chain such as feature-x2 ->
// feature-x -> stable. A message of lane's tag goes to lane's consumers;
// when lane has none online, to those of the first parent that has; when
// none has, to stable. Nothing is lost in between: the consumers of every
// lane that is some chain's parent watch the lanes below it, and take
// their messages over when they go offline, as stable does (see the
// package documentation). Like rpc.WithParents, with one more rule: chains
// form a tree, so a parent's own chain is the rest of the chain (give
// WithParents(x2, x, y) together with WithParents(x, y)); a parent with no
// WithParents of its own falls back to stable, so it must be the last.
//
// Every consumer of a base group, stable and lanes, must be given the same
// chains: each one decides from them which messages are its own and
// which lanes it watches and takes over, so a consumer that does not know
// a chain can skip messages that no other consumer handles or hands over. Later calls for the same lane replace
// earlier ones. NewConsumer fails on a chain for stable (the zero Tag), a
// chain that names stable or repeats a lane, chains that disagree or form
// a cycle, and a lane whose group name RocketMQ would refuse.
func WithParents(lane tagctx.Tag, parents ...tagctx.Tag) Option {
	parents = slices.Clone(parents)
	return optionFunc(func(c *config) error {
		if err := tagctx.CheckChain(lane, parents); err != nil {
			return fmt.Errorf("mq: WithParents(%s, %s): %w", tagctx.Quote(lane.String()), tagctx.Quote(chainString(parents)), err)
		}
		if c.parents == nil {
			c.parents = make(map[tagctx.Tag][]tagctx.Tag)
		}
		c.parents[lane] = parents
		return nil
	})
}

// checkChains checks that the chains form a tree rooted at stable: each
// parent's own chain is the rest of the chain that names it. The lanes
// then agree on who handles what, and taking a lane's messages over is
// the job of exactly one group at a time (the first online one up its
// chain): with disagreeing chains, a lane's handler could be handed, from
// the lane's retry topic, messages of a lane whose chain does not name it.
func checkChains(chains map[tagctx.Tag][]tagctx.Tag) error {
	lanes := slices.SortedFunc(maps.Keys(chains), func(a, b tagctx.Tag) int { return strings.Compare(a.String(), b.String()) })
	for _, lane := range lanes {
		chain := chains[lane]
		for i, p := range chain {
			want, got := chain[i+1:], chains[p]
			if slices.Contains(got, lane) {
				return fmt.Errorf("mq: WithParents(%s, %s): a cycle: %q has %q in its own chain %s", tagctx.Quote(lane.String()),
					tagctx.Quote(chainString(chain)), p.String(), lane.String(), tagctx.Quote(chainString(got)))
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("mq: WithParents(%s, %s): parent %q has the chain %s, want the rest of this one, %s: chains must form a tree (add WithParents(%s, %s))",
					tagctx.Quote(lane.String()), tagctx.Quote(chainString(chain)), p.String(), tagctx.Quote(chainString(got)),
					tagctx.Quote(chainString(want)), tagctx.Quote(p.String()), tagctx.Quote(chainString(want)))
			}
		}
	}
	return nil
}

func chainString(parents []tagctx.Tag) string {
	s := make([]string, len(parents))
	for i, p := range parents {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
