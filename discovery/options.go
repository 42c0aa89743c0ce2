package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Option configures NewResolver, Wrap, NewTransport and WatchLanes.
// Options that do not concern one of them are ignored by it; a nil Option
// is ignored. Building an Option never panics: a bad argument is kept, and
// the constructor returns it as an error naming the option
// ("discovery: WithX(...): ...").
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// badOption carries a bad argument's error to the constructor.
type badOption struct{ err error }

func (b badOption) apply(o *options) {
	if o.err == nil {
		o.err = b.err
	}
}

type options struct {
	scheme      string
	lanes       Lanes
	base        http.RoundTripper
	maxAttempts int
	firstWait   time.Duration
	report      func(error)
	sc          string
	err         error // the first bad option's
}

// Defaults.
const (
	DefaultScheme      = "taglane"
	DefaultMaxAttempts = 3
	// DefaultFirstStateWait bounds how long a request waits for the first
	// state of its service from the registry (a new Transport, an etcd
	// registry connecting).
	DefaultFirstStateWait = 5 * time.Second
)

// newOptions resolves opts once; the error is the first bad option's.
func newOptions(opts []Option) (*options, error) {
	o := &options{
		scheme:      DefaultScheme,
		base:        http.DefaultTransport,
		maxAttempts: DefaultMaxAttempts,
		firstWait:   DefaultFirstStateWait,
		report:      func(error) {},
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	return o, nil
}

// WithScheme sets the URL scheme of the resolver that NewResolver builds
// (default "taglane": target "taglane:///orders"), or overrides the scheme
// of the builder Wrap wraps. It must be an RFC 3986 scheme: a letter, then
// letters, digits, '+', '-' or '.'; gRPC matches it lowercased.
func WithScheme(s string) Option {
	if !validScheme(s) {
		return badOption{fmt.Errorf("discovery: WithScheme(%s): want a letter, then letters, digits, '+', '-' or '.'", quote(s))}
	}
	return optionFunc(func(o *options) { o.scheme = s })
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// WithLanes sets this client's own lane definitions. Definitions stored in
// the registry take precedence (see Lanes.Over): the registry's fallback
// when it sets one, its chain for each lane it defines. Definitions that
// Lanes.Check refuses are the constructor's error.
func WithLanes(l Lanes) Option {
	if err := l.Check(); err != nil {
		return badOption{fmt.Errorf("discovery: WithLanes: %w", err)}
	}
	return optionFunc(func(o *options) { o.lanes = l.Over(Lanes{}) })
}

// WithBase sets the RoundTripper a Transport sends routed requests with
// (default http.DefaultTransport). Put the tag-injecting httpmw transport
// here, or the Transport inside it. nil is an error.
func WithBase(rt http.RoundTripper) Option {
	if rt == nil {
		return badOption{errors.New("discovery: WithBase(nil): want a RoundTripper")}
	}
	return optionFunc(func(o *options) { o.base = rt })
}

// WithMaxAttempts bounds how many instances a Transport tries for one
// request when an instance is unreachable (default 3; 1: no retry; less
// is an error).
func WithMaxAttempts(n int) Option {
	if n < 1 {
		return badOption{fmt.Errorf("discovery: WithMaxAttempts(%d): want at least 1", n)}
	}
	return optionFunc(func(o *options) { o.maxAttempts = n })
}

// WithFirstStateWait bounds how long a request waits for the first state
// of its service (default DefaultFirstStateWait; 0: fail at once when
// there is none yet; negative is an error).
func WithFirstStateWait(d time.Duration) Option {
	if d < 0 {
		return badOption{fmt.Errorf("discovery: WithFirstStateWait(%v): negative", d)}
	}
	return optionFunc(func(o *options) { o.firstWait = d })
}

// WithErrorHandler receives what the resolver, the wrapper and the
// Transport leave out and why: an endpoint whose tag cannot be read (it is
// not routed to at all), a service config from the wrapped resolver that
// selected another balancer (rewritten to keep lane routing), an instance
// a Transport found unreachable. nil keeps the default, which drops them.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(o *options) {
		if f != nil {
			o.report = f
		}
	})
}

// WithServiceConfig sets the service config NewResolver publishes, in
// JSON, for settings other than the balancer (methodConfig, retryPolicy,
// healthCheckConfig): its loadBalancingConfig is replaced by the lane
// balancer's with the lane definitions in force. "" means none; JSON that
// is not an object is an error.
func WithServiceConfig(js string) Option {
	if js == "" {
		return optionFunc(func(o *options) { o.sc = "" }) // none, the default
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &obj); err != nil || obj == nil {
		if err == nil {
			err = errors.New("want a JSON object")
		}
		return badOption{fmt.Errorf("discovery: WithServiceConfig(%s): %w", quote(js), err)}
	}
	return optionFunc(func(o *options) { o.sc = js })
}
