package discovery

import (
	"net/http"
	"time"
)

// Option configures NewResolver, Wrap and NewTransport. Options that do
// not concern one of them are ignored by it.
type Option func(*options)

type options struct {
	scheme      string
	lanes       Lanes
	base        http.RoundTripper
	maxAttempts int
	firstWait   time.Duration
	report      func(error)
	sc          string
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

func newOptions(opts []Option) *options {
	o := &options{
		scheme:      DefaultScheme,
		base:        http.DefaultTransport,
		maxAttempts: DefaultMaxAttempts,
		firstWait:   DefaultFirstStateWait,
		report:      func(error) {},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithScheme sets the URL scheme of the resolver that NewResolver builds
// (default "taglane": target "taglane:///orders"), or overrides the scheme
// of the builder Wrap wraps.
func WithScheme(s string) Option { return func(o *options) { o.scheme = s } }

// WithLanes sets this client's own lane definitions. Definitions stored in
// the registry take precedence (see Lanes.Over): the registry's fallback
// when it sets one, its chain for each lane it defines.
func WithLanes(l Lanes) Option { return func(o *options) { o.lanes = l.Over(Lanes{}) } }

// WithBase sets the RoundTripper a Transport sends routed requests with
// (default http.DefaultTransport). Put the tag-injecting httpmw transport
// here, or the Transport inside it.
func WithBase(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// WithMaxAttempts bounds how many instances a Transport tries for one
// request when an instance is unreachable (default 3; 1: no retry).
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithFirstStateWait bounds how long a request waits for the first state
// of its service (default DefaultFirstStateWait).
func WithFirstStateWait(d time.Duration) Option { return func(o *options) { o.firstWait = d } }

// WithErrorHandler receives what the resolver, the wrapper and the
// Transport leave out and why: an endpoint whose tag cannot be read (it is
// not routed to at all), a service config from the wrapped resolver that
// selected another balancer (rewritten to keep lane routing), an instance
// a Transport found unreachable.
func WithErrorHandler(f func(error)) Option {
	return func(o *options) {
		if f != nil {
			o.report = f
		}
	}
}

// WithServiceConfig sets the service config NewResolver publishes, in
// JSON, for settings other than the balancer (methodConfig, retryPolicy,
// healthCheckConfig): its loadBalancingConfig is replaced by the lane
// balancer's with the lane definitions in force.
func WithServiceConfig(js string) Option { return func(o *options) { o.sc = js } }
