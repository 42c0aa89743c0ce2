package httpmw

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/taglane/taglane/tagctx"
)

// Option configures the server middleware (New, Middleware, Handler). A nil
// Option is ignored.
type Option interface {
	applyServer(*serverConfig)
}

// TransportOption configures Transport and NewTransport. A nil
// TransportOption is ignored.
type TransportOption interface {
	applyTransport(*wireConfig)
}

// WireOption names the tag on the wire. It configures both sides, so a
// server and a client built from the same WireOptions agree.
type WireOption interface {
	Option
	TransportOption
}

// wireConfig is what both sides share: where the tag travels.
type wireConfig struct {
	headers    []string // as given; canonicalized by validate
	baggageKey string
}

type serverConfig struct {
	wire          wireConfig
	hostPattern   string
	trust         tagctx.Trust
	forwardedFor  bool
	rejectInvalid bool
	observer      tagctx.Observer
	routeHeader   bool
	node          tagctx.Tag
	nodeSet       bool
	strict        bool
}

func defaultWire() wireConfig {
	return wireConfig{
		headers:    []string{tagctx.DefaultHeader},
		baggageKey: tagctx.DefaultBaggageKey,
	}
}

type serverOption func(*serverConfig)

func (f serverOption) applyServer(c *serverConfig) { f(c) }

type wireOption func(*wireConfig)

func (f wireOption) applyServer(c *serverConfig)  { f(&c.wire) }
func (f wireOption) applyTransport(c *wireConfig) { f(c) }

// WithHeaders sets the tag header names, replacing the default X-Tag. The
// server reads them in the order given and the first one present decides
// (some existing systems send a bare "tag" header: list it after X-Tag).
// Transport writes the first name and removes the others from outgoing
// requests; an explicit untagged decision goes out as the first name with
// an empty value (the untagged mark). With no names at all the tag travels
// only in baggage, and "untagged" cannot be said on the wire: a later hop
// must then not read a host pattern.
func WithHeaders(names ...string) WireOption {
	names = append([]string(nil), names...)
	return wireOption(func(c *wireConfig) { c.headers = names })
}

// WithBaggageKey sets the W3C baggage member that carries the tag; the
// default is tagctx.DefaultBaggageKey ("x-tag").
func WithBaggageKey(key string) WireOption {
	return wireOption(func(c *wireConfig) { c.baggageKey = key })
}

// WithHostPattern also takes the tag from the request's host name, for
// wildcard-domain test environments where a browser cannot set headers:
// with "app-{tag}.test.example.com", a request for
// app-feature-x.test.example.com:8080 carries feature-x. The pattern must
// contain "{tag}" exactly once and otherwise only [a-z0-9.-]; matching
// ignores the port and case. Off by default. The host ranks below headers
// and baggage. An empty pattern leaves it off.
func WithHostPattern(pattern string) Option {
	return serverOption(func(c *serverConfig) { c.hostPattern = pattern })
}

// WithTrust sets which inbound tags are believed. The default,
// tagctx.TrustAll, suits test environments. tagctx.TrustNone (strip) is
// for production edges. Under any policy, a tag that is not accepted is
// removed (tag headers and baggage member) from the request the handler
// sees and from the context's OpenTelemetry baggage, so neither a later
// tagctx.Propagator.Extract nor a handler forwarding what it received can
// take it back. With TrustTags or TrustNetworks a refused tag leaves the
// request untagged, reported to the observer with an error matching
// ErrUntrusted; it is never answered with 400, as the caller sent a
// well-formed tag.
//
// Under any policy but TrustAll the decision is final for every request,
// "untagged" included: the context is always marked, and Transport writes
// the untagged mark (an empty tag header), so a later hop does not take a
// lane from a forwarded Host or baggage. Under TrustAll an untagged
// request with no tag source at all is left undecided (free on a stable
// node), and a later hop's host pattern may still read its Host: the
// caller could have sent X-Tag anyway.
func WithTrust(t tagctx.Trust) Option {
	return serverOption(func(c *serverConfig) { c.trust = t })
}

// WithForwardedFor makes tagctx.TrustNetworks judge the peer by the last
// address in X-Forwarded-For (the one the nearest proxy appended) instead
// of the connection's address. Off by default. Only use it when every
// request passes through a proxy that appends to X-Forwarded-For: without
// one, any caller can claim a trusted address. A request without
// X-Forwarded-For fails closed: its tag is refused, since the connection's
// address is then the proxy's own.
func WithForwardedFor() Option {
	return serverOption(func(c *serverConfig) { c.forwardedFor = true })
}

// WithRejectInvalid answers a request whose tag is invalid or whose tag
// headers are over the limits with 400 Bad Request and a one-line reason,
// instead of serving it as untagged (the default). Untrusted tags are not
// rejected (see WithTrust).
func WithRejectInvalid() Option {
	return serverOption(func(c *serverConfig) { c.rejectInvalid = true })
}

// WithObserver receives the route proof of every request, with the reason
// an inbound tag was not accepted in Observation.Rejected. Without an
// observer that reason is only on the request's span, as an EventRejected
// event. The observer runs when the handler returns, so that
// Observation.Operation can be the route pattern a router inside set
// (http.ServeMux, chi), else the request path.
func WithObserver(o tagctx.Observer) Option {
	return serverOption(func(c *serverConfig) { c.observer = o })
}

// WithRouteHeader echoes the route proof in the RouteHeader response
// header, for debugging with curl. Off by default: it tells callers which
// lanes exist.
func WithRouteHeader() Option {
	return serverOption(func(c *serverConfig) { c.routeHeader = true })
}

// WithNode sets the node tag of the instance behind this middleware, for
// processes that host several instances (tests, demos). By default it is
// tagctx.Node(), read on every request.
func WithNode(t tagctx.Tag) Option {
	return serverOption(func(c *serverConfig) { c.node, c.nodeSet = t, true })
}

// WithStrict makes the server refuse a request it should not serve, a
// misroute: traffic of another lane (not the node's lane, not a parent),
// or stable traffic on a lane instance. It answers 421 Misdirected Request
// with RefusedHeader, so stale discovery (a lane-a address now held by a
// lane-b instance) cannot cross lanes; the client should pick another
// instance. The observer gets the refusal with the zero Route (no lane
// served it) and Rejected matching ErrMisdirected. Off by default: a
// misroute is then served and reported.
func WithStrict() Option {
	return serverOption(func(c *serverConfig) { c.strict = true })
}

// validate canonicalizes the header names and checks every name, so a typo
// fails at start-up rather than silently never matching.
func (c *wireConfig) validate() error {
	seen := make(map[string]bool, len(c.headers))
	canon := make([]string, 0, len(c.headers))
	for _, name := range c.headers {
		if !isToken(name) {
			return fmt.Errorf("httpmw: WithHeaders(%s): not a valid HTTP token", tagctx.Quote(name))
		}
		k := http.CanonicalHeaderKey(name)
		if k == baggageHeader {
			return fmt.Errorf("httpmw: WithHeaders(%s): the W3C baggage header; use WithBaggageKey", tagctx.Quote(name))
		}
		if seen[k] {
			return fmt.Errorf("httpmw: WithHeaders(%s): listed twice", tagctx.Quote(name))
		}
		seen[k] = true
		canon = append(canon, k)
	}
	c.headers = canon
	if !isToken(c.baggageKey) {
		return fmt.Errorf("httpmw: WithBaggageKey(%s): not a valid W3C baggage key", tagctx.Quote(c.baggageKey))
	}
	return nil
}

// isToken reports whether s is an RFC 9110 token, the syntax of both HTTP
// header names and W3C baggage keys.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
