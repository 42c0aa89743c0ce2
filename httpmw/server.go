package httpmw

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"go.opentelemetry.io/otel/baggage"

	"github.com/taglane/taglane/tagctx"
)

// RefusedHeader is the response header of a strict server's refusal
// (WithStrict), such as "traffic=feature-x node=feature-y", sent with 421
// Misdirected Request: the client reached an instance of the wrong lane
// (stale discovery) and should pick another.
const RefusedHeader = "X-Taglane-Refused"

// RouteHeader is the response header WithRouteHeader writes, such as
// "traffic=feature-x node= route=fallback".
const RouteHeader = "X-Taglane-Route"

// The span event recording a tag that was sent but not accepted, and its
// attribute holding the reason: tagctx.Record adds it.
const (
	EventRejected = tagctx.EventRejected
	AttrReason    = tagctx.AttrReason
)

// ErrUntrusted is matched (errors.Is) by Observation.Rejected when the
// trust policy refused an inbound tag, as opposed to an invalid one
// (tagctx.ErrInvalidTag) or headers over the limits (tagctx.ErrLimit).
// It is tagctx.ErrUntrusted, so one errors.Is works for every entry point.
var ErrUntrusted = tagctx.ErrUntrusted

// ErrMisdirected is matched by Observation.Rejected when WithStrict
// refused a request this instance should not serve. It is
// tagctx.ErrMisdirected.
var ErrMisdirected = tagctx.ErrMisdirected

// errStripped is prebuilt: a production edge under TrustNone sees lane tags
// from every curious caller and should not pay for an error each time.
var errStripped = fmt.Errorf("httpmw: inbound tag %w: this entry point strips inbound tags", ErrUntrusted)

const (
	baggageHeader = "Baggage" // canonical form of tagctx.BaggageHeader
	hostTag       = "{tag}"
)

// New returns middleware that puts each request's traffic tag into the
// request context (tagctx.With), records the route proof, and calls the
// next handler. It returns an error if an option is invalid.
//
// Sources, highest precedence first: the tag headers in the order of
// WithHeaders (default X-Tag), the W3C baggage member (default x-tag), the
// host pattern (WithHostPattern, off by default). The first source present
// decides; if its tag is invalid or not trusted, the request is untagged
// and the reason is reported, without falling back to a lower source: the
// caller meant the tag it put first.
//
// A request with no accepted tag is marked untagged (tagctx.WithUntagged),
// so a lane instance sends stable traffic on as stable. On a stable node,
// where the effective tag of such a request is already none, the request
// is passed on untouched, which costs nothing.
//
// Except under tagctx.TrustNone, the handler sees the inbound headers as
// sent, a refused tag included. Forward through Transport, which writes
// this hop's decision over whatever tag headers a request carries.
func New(opts ...Option) (func(http.Handler) http.Handler, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	return s.wrap, nil
}

// Middleware is New for options known to be valid; it panics otherwise.
func Middleware(opts ...Option) func(http.Handler) http.Handler {
	mw, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return mw
}

// Handler wraps h with Middleware(opts...).
func Handler(h http.Handler, opts ...Option) http.Handler {
	return Middleware(opts...)(h)
}

// server is the resolved configuration, immutable after newServer.
type server struct {
	serverConfig
	host hostPattern // compiled from serverConfig.hostPattern
}

func newServer(opts []Option) (*server, error) {
	c := serverConfig{wire: defaultWire()}
	for _, o := range opts {
		if o != nil {
			o.applyServer(&c)
		}
	}
	if err := c.wire.validate(); err != nil {
		return nil, err
	}
	if err := c.trust.Err(); err != nil {
		return nil, fmt.Errorf("httpmw: WithTrust: %w", err)
	}
	s := &server{serverConfig: c}
	if c.hostPattern != "" {
		hp, err := parseHostPattern(c.hostPattern)
		if err != nil {
			return nil, err
		}
		s.host = hp
	}
	return s, nil
}

func (s *server) wrap(next http.Handler) http.Handler {
	return &handler{s: s, next: next}
}

type handler struct {
	s    *server
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, in := h.s, r
	var (
		traffic  tagctx.Tag
		decided  bool  // an upstream hop's untagged mark, or a tag: forward the decision
		rejected error // a tag, or tag-bearing input, not accepted
		header   http.Header
	)
	bag := r.Header[baggageHeader] // read once: every step below needs it
	if s.trust.Strips() {
		if carries, err := s.carriesTag(r.Header, bag); carries {
			rejected = errStripped
			if err != nil {
				rejected = fmt.Errorf("httpmw: inbound baggage %w, stripped unread: %w", ErrUntrusted, err)
			}
		}
	} else {
		traffic, decided, rejected = s.extract(r, bag)
	}
	if rejected != nil {
		// What the handler sees agrees with the decision: a later
		// tagctx.Propagator.Extract, or a handler forwarding the headers,
		// cannot take the tag back.
		header = s.stripTag(r.Header)
	}

	ctx := r.Context()
	// Marking costs a context node and a request copy. Skip it only when
	// the trust policy accepts every tag, no tag or mark came in and the
	// effective tag is already none (stable node): the handler and its
	// outgoing calls then behave exactly as if marked. Every other
	// decision is final and goes on the wire (Transport writes the
	// untagged mark), so a forwarded Host or baggage cannot re-tag the
	// request at a later hop.
	mark := !traffic.IsZero() || decided || rejected != nil || !s.trust.AcceptsAll() ||
		!tagctx.Effective(ctx).IsZero()
	if mark {
		ctx = tagctx.With(ctx, traffic)
	}
	// otelhttp, outside this middleware, may have put the caller's member
	// into the context's OpenTelemetry baggage; otelgrpc and otelhttp
	// transports would send it on. It must say what was decided. Only a
	// request with baggage can have put it there, so the others skip the
	// context walk.
	if bag != nil {
		if b := baggage.FromContext(ctx); b.Len() > 0 {
			if m := b.Member(s.wire.baggageKey); m.Key() != "" && m.Value() != traffic.String() {
				if nb, err := tagctx.ToBaggage(b, s.wire.baggageKey, traffic); err == nil {
					ctx = baggage.ContextWithBaggage(ctx, nb)
					mark = true
				}
			}
		}
	}
	if mark || header != nil {
		r = r.WithContext(ctx)
		if header != nil {
			r.Header = header
		}
	}

	node := s.node
	if !s.nodeSet {
		node = tagctx.Node()
	}
	refuse := rejected != nil && s.rejectInvalid && !errors.Is(rejected, ErrUntrusted)
	o := tagctx.Observation{
		Transport: "http",
		Operation: r.URL.Path, // the route pattern instead, if a router sets one (finish)
		Traffic:   traffic,
		Node:      node,
		Route:     tagctx.Decide(traffic, node),
		Rejected:  rejected,
	}
	if refuse {
		o.Route = 0 // answered 400, served by no lane: no verdict, as in package rpc
	}
	// A strict instance refuses a misroute: served by no lane, it is no
	// misroute, and the observer hears why (with any refused tag too).
	misdirected := s.strict && !refuse && o.Route == tagctx.RouteMisroute
	if misdirected {
		o.Route = 0
		if err := tagctx.Misdirected("httpmw", traffic, node); rejected != nil {
			o.Rejected = fmt.Errorf("%w (%w)", err, rejected)
		} else {
			o.Rejected = err
		}
	}
	if s.routeHeader {
		w.Header().Set(RouteHeader, "traffic="+traffic.String()+" node="+node.String()+" route="+o.Route.String())
	}
	if refuse {
		tagctx.Record(ctx, o, s.observer)
		http.Error(w, rejected.Error(), http.StatusBadRequest)
		return
	}
	if misdirected {
		tagctx.Record(ctx, o, s.observer)
		w.Header().Set(RefusedHeader, "traffic="+traffic.String()+" node="+node.String())
		http.Error(w, tagctx.Misdirected("httpmw", traffic, node).Error(), http.StatusMisdirectedRequest)
		return
	}
	defer s.finish(ctx, &o, in, r) // route.go: the router's pattern, then the proof
	h.next.ServeHTTP(w, r)
}

// extract returns the accepted traffic tag of r; decided reports a source
// that was present (a tag, or the untagged mark). If the caller sent a tag
// that is not accepted, err is the reason.
func (s *server) extract(r *http.Request, bag []string) (tagctx.Tag, bool, error) {
	t, found, err := s.find(r, bag)
	if !found || err != nil || t.IsZero() {
		return tagctx.Tag{}, found, err
	}
	if err := s.trust.Check(t, s.peer(r)); err != nil {
		return tagctx.Tag{}, true, fmt.Errorf("httpmw: %w", err)
	}
	return t, true, nil
}

// find reads the sources in precedence order; the first one present
// decides. tagctx.Extract checks the byte and member limits before parsing,
// and the host its length; errors quote a bounded prefix.
func (s *server) find(r *http.Request, bag []string) (t tagctx.Tag, found bool, err error) {
	for _, name := range s.wire.headers {
		if vals := r.Header[name]; len(vals) > 0 {
			t, _, err := tagctx.Extract(vals, nil, s.wire.baggageKey)
			if err != nil {
				return tagctx.Tag{}, true, fmt.Errorf("httpmw: header %q: %w", name, err)
			}
			return t, true, nil
		}
	}
	if len(bag) > 0 {
		t, found, err := tagctx.Extract(nil, bag, s.wire.baggageKey)
		if err != nil {
			return tagctx.Tag{}, true, fmt.Errorf("httpmw: baggage: %w", err)
		}
		if found {
			return t, true, nil
		}
	}
	if s.host.on {
		v, ok, err := s.host.match(r.Host)
		if err != nil {
			return tagctx.Tag{}, true, err
		}
		if ok {
			t, err := tagctx.Parse(v)
			if err != nil {
				return tagctx.Tag{}, true, fmt.Errorf("httpmw: host %s: %w", tagctx.Quote(r.Host), err)
			}
			return t, true, nil
		}
	}
	return tagctx.Tag{}, false, nil
}

// peer is the address the trust policy judges. Invalid when unknown, which
// network trust refuses.
func (s *server) peer(r *http.Request) netip.Addr {
	if s.forwardedFor {
		xff := r.Header["X-Forwarded-For"]
		if len(xff) == 0 {
			// Fail closed: the connection's address is the proxy's own,
			// which a proxy that dropped the header would vouch for.
			return netip.Addr{}
		}
		// The last entry is the one the nearest proxy appended; those
		// before it are whatever the caller claimed.
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		return parseAddr(strings.TrimSpace(last))
	}
	return parseAddr(r.RemoteAddr)
}

func parseAddr(s string) netip.Addr {
	if s == "" || len(s) > maxAddrLen {
		return netip.Addr{} // spare the parse errors' allocations
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(s)
	return a
}

// maxAddrLen bounds what parseAddr reads: the longest IPv6 address with a
// zone and port is far shorter.
const maxAddrLen = 128

// carriesTag reports whether h has a tag header with a value (the empty
// untagged mark is no tag) or the baggage member; err (ErrLimit) when the
// baggage is over the limits and was not read.
func (s *server) carriesTag(h http.Header, bag []string) (bool, error) {
	for _, name := range s.wire.headers {
		for _, v := range h[name] {
			if v != "" {
				return true, nil
			}
		}
	}
	has, err := tagctx.HasMember(bag, s.wire.baggageKey)
	return has || err != nil, err
}

// stripTag returns a copy of h without the tag headers and the baggage
// member; baggage over the limits, which no conforming reader accepts, is
// dropped whole, unread. A copy, because the caller's request (seen by
// outer middleware) must not change under it.
func (s *server) stripTag(h http.Header) http.Header {
	h = h.Clone()
	for _, name := range s.wire.headers {
		delete(h, name)
	}
	bag := h[baggageHeader]
	if len(bag) == 0 {
		return h
	}
	if has, err := tagctx.HasMember(bag, s.wire.baggageKey); err != nil || !has {
		if err != nil {
			delete(h, baggageHeader)
		}
		return h
	}
	if v := tagctx.MergeBaggageValues(bag, s.wire.baggageKey, tagctx.Tag{}); v != "" {
		h[baggageHeader] = []string{v}
	} else {
		delete(h, baggageHeader)
	}
	return h
}

// hostPattern matches host names such as app-feature-x.test.example.com
// against app-{tag}.test.example.com. The zero value matches nothing.
type hostPattern struct {
	on             bool
	prefix, suffix string // lower case
}

func parseHostPattern(p string) (hostPattern, error) {
	if n := strings.Count(p, hostTag); n != 1 {
		return hostPattern{}, fmt.Errorf("httpmw: WithHostPattern(%s): must contain %q exactly once, not %d times", tagctx.Quote(p), hostTag, n)
	}
	// A root dot in the pattern would never match: match drops the host's.
	prefix, suffix, _ := strings.Cut(strings.TrimSuffix(strings.ToLower(p), "."), hostTag)
	if prefix == "" && suffix == "" {
		// Every host name would be a tag, "localhost" included.
		return hostPattern{}, fmt.Errorf("httpmw: WithHostPattern(%s): nothing around %q", tagctx.Quote(p), hostTag)
	}
	for _, lit := range [...]string{prefix, suffix} {
		for i := 0; i < len(lit); i++ {
			if c := lit[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				return hostPattern{}, fmt.Errorf("httpmw: WithHostPattern(%s): character %q is not allowed in a host name pattern", tagctx.Quote(p), rune(c))
			}
		}
	}
	return hostPattern{on: true, prefix: prefix, suffix: suffix}, nil
}

// maxHostLen bounds the Host header a pattern reads: a DNS name (253
// bytes), a root dot and a port. Longer is refused unread.
const maxHostLen = 253 + 1 + 6

// match returns the part of host standing for {tag}, unvalidated. The port
// and a trailing root dot are ignored; case is ignored. A host over
// maxHostLen or with a port that is not a number is an error.
func (p hostPattern) match(host string) (string, bool, error) {
	if !p.on || strings.HasPrefix(host, "[") { // IPv6 literals are no host names
		return "", false, nil
	}
	if len(host) > maxHostLen {
		return "", false, fmt.Errorf("httpmw: host %s: %w: %d bytes, limit %d", tagctx.Quote(host), tagctx.ErrLimit, len(host), maxHostLen)
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if !isPort(host[i+1:]) {
			return "", false, fmt.Errorf("httpmw: host %s: port is not a number: %w", tagctx.Quote(host), tagctx.ErrInvalidTag)
		}
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) <= len(p.prefix)+len(p.suffix) ||
		!strings.EqualFold(host[:len(p.prefix)], p.prefix) ||
		!strings.EqualFold(host[len(host)-len(p.suffix):], p.suffix) {
		return "", false, nil
	}
	return host[len(p.prefix) : len(host)-len(p.suffix)], true, nil
}

// isPort reports whether s is a decimal port number, 0 to 65535, or
// empty, which RFC 3986 allows ("host:" means the default port).
func isPort(s string) bool {
	if len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
