package httpmw

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/taglane/taglane/tagctx"
)

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
		rejected error
		header   http.Header // replaces r.Header when not nil
	)
	if s.trust.Strips() {
		if s.carriesTag(r.Header) {
			header = s.stripTag(r.Header)
			rejected = errStripped
		}
	} else {
		traffic, rejected = s.extract(r)
	}

	ctx := r.Context()
	// Marking costs a context node and a request copy. Skip it when the
	// effective tag is already none (no decision upstream, stable node):
	// the handler and its outgoing calls behave exactly as if marked.
	mark := !traffic.IsZero() || !tagctx.Effective(ctx).IsZero()
	if mark {
		ctx = tagctx.With(ctx, traffic)
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
	if s.routeHeader {
		w.Header().Set(RouteHeader, "traffic="+traffic.String()+" node="+node.String()+" route="+o.Route.String())
	}
	if refuse {
		tagctx.Record(ctx, o, s.observer)
		http.Error(w, rejected.Error(), http.StatusBadRequest)
		return
	}
	defer s.finish(ctx, &o, in, r) // route.go: the router's pattern, then the proof
	h.next.ServeHTTP(w, r)
}

// extract returns the accepted traffic tag of r, or the zero Tag and, if
// the caller sent a tag that is not accepted, the reason.
func (s *server) extract(r *http.Request) (tagctx.Tag, error) {
	t, found, err := s.find(r)
	if !found || err != nil {
		return tagctx.Tag{}, err
	}
	if err := s.trust.Check(t, s.peer(r)); err != nil {
		return tagctx.Tag{}, fmt.Errorf("httpmw: %w", err)
	}
	return t, nil
}

// find reads the sources in precedence order; the first one present
// decides. tagctx.Extract checks the byte and member limits before parsing.
func (s *server) find(r *http.Request) (t tagctx.Tag, found bool, err error) {
	bag := r.Header[baggageHeader]
	for _, name := range s.wire.headers {
		if vals := r.Header[name]; len(vals) > 0 {
			t, _, err := tagctx.Extract(vals, bag, s.wire.baggageKey)
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
		if v, ok := s.host.match(r.Host); ok {
			t, err := tagctx.Parse(v)
			if err != nil {
				return tagctx.Tag{}, true, fmt.Errorf("httpmw: host %q: %w", r.Host, err)
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
		if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
			// The last entry is the one the nearest proxy appended; those
			// before it are whatever the caller claimed.
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			return parseAddr(strings.TrimSpace(last))
		}
	}
	return parseAddr(r.RemoteAddr)
}

func parseAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{} // spare the parse errors' allocations
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(s)
	return a
}

// carriesTag reports whether h has a tag header or the baggage member.
func (s *server) carriesTag(h http.Header) bool {
	for _, name := range s.wire.headers {
		if _, ok := h[name]; ok {
			return true
		}
	}
	return hasMember(h[baggageHeader], s.wire.baggageKey)
}

// stripTag returns a copy of h without the tag headers and the baggage
// member. A copy, because the caller's request (seen by outer middleware)
// must not change under it.
func (s *server) stripTag(h http.Header) http.Header {
	h = h.Clone()
	for _, name := range s.wire.headers {
		delete(h, name)
	}
	var kept []string
	for _, v := range h[baggageHeader] {
		if v = tagctx.MergeBaggage(v, s.wire.baggageKey, tagctx.Tag{}); v != "" {
			kept = append(kept, v)
		}
	}
	if kept == nil {
		delete(h, baggageHeader)
	} else {
		h[baggageHeader] = kept
	}
	return h
}

// hasMember reports whether one of the baggage header values has a list
// member named key. It is exact (unlike a substring test), so a member
// such as x-tag-owner does not trigger a rewrite, and it allocates nothing.
func hasMember(values []string, key string) bool {
	for _, v := range values {
		for v != "" {
			var m string
			m, v, _ = strings.Cut(v, ",")
			k, _, _ := strings.Cut(m, "=")
			if strings.Trim(k, " \t") == key {
				return true
			}
		}
	}
	return false
}

// hostPattern matches host names such as app-feature-x.test.example.com
// against app-{tag}.test.example.com. The zero value matches nothing.
type hostPattern struct {
	on             bool
	prefix, suffix string // lower case
}

func parseHostPattern(p string) (hostPattern, error) {
	if n := strings.Count(p, hostTag); n != 1 {
		return hostPattern{}, fmt.Errorf("httpmw: host pattern %q must contain %q exactly once, not %d times", p, hostTag, n)
	}
	// A root dot in the pattern would never match: match drops the host's.
	prefix, suffix, _ := strings.Cut(strings.TrimSuffix(strings.ToLower(p), "."), hostTag)
	if prefix == "" && suffix == "" {
		// Every host name would be a tag, "localhost" included.
		return hostPattern{}, fmt.Errorf("httpmw: host pattern %q has nothing around %q", p, hostTag)
	}
	for _, lit := range [...]string{prefix, suffix} {
		for i := 0; i < len(lit); i++ {
			if c := lit[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				return hostPattern{}, fmt.Errorf("httpmw: host pattern %q: character %q is not allowed in a host name pattern", p, rune(c))
			}
		}
	}
	return hostPattern{on: true, prefix: prefix, suffix: suffix}, nil
}

// match returns the part of host standing for {tag}, unvalidated. The port
// and a trailing root dot are ignored; case is ignored.
func (p hostPattern) match(host string) (string, bool) {
	if !p.on || strings.HasPrefix(host, "[") { // IPv6 literals are no host names
		return "", false
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) <= len(p.prefix)+len(p.suffix) ||
		!strings.EqualFold(host[:len(p.prefix)], p.prefix) ||
		!strings.EqualFold(host[len(host)-len(p.suffix):], p.suffix) {
		return "", false
	}
	return host[len(p.prefix) : len(host)-len(p.suffix)], true
}
