package httpmw

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/taglane/taglane/tagctx"
)

// NewTransport returns an http.RoundTripper that sends each request with
// the effective tag of its context (tagctx.Effective): in the first tag
// header (default X-Tag) and as a W3C baggage member (default x-tag)
// merged into the request's baggage, every other member kept. A nil base
// means http.DefaultTransport. It returns an error if an option is
// invalid.
//
// The wire always says what this hop decided: tag headers and the baggage
// member already on the request are replaced, and removed when the
// effective tag is none, so a proxy that copies inbound headers cannot
// forward a tag the entry point did not accept. When the context carries
// an explicit untagged decision (an entry point's, or tagctx.WithUntagged),
// the tag header is sent with an empty value, the untagged mark: the next
// hop's middleware takes it as decided and reads neither baggage nor its
// host pattern. Baggage is written so a conforming reader (OpenTelemetry:
// 64 members, 8192 bytes) accepts it whole: other members are dropped, and
// reported to otel.Handle, before the tag would be. The caller's request is
// never modified; the base sees a copy whenever something changes. On a
// stable node with untagged traffic and nothing stale to remove, the
// request passes through as is, without allocating.
func NewTransport(base http.RoundTripper, opts ...TransportOption) (http.RoundTripper, error) {
	c := defaultWire()
	for _, o := range opts {
		if o != nil {
			o.applyTransport(&c)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t := &transport{base: base, baggageKey: c.baggageKey}
	if len(c.headers) > 0 {
		t.header, t.others = c.headers[0], c.headers[1:]
	}
	return t, nil
}

// Transport is NewTransport for options known to be valid; it panics
// otherwise.
func Transport(base http.RoundTripper, opts ...TransportOption) http.RoundTripper {
	rt, err := NewTransport(base, opts...)
	if err != nil {
		panic(err)
	}
	return rt
}

var _ http.RoundTripper = (*transport)(nil)

type transport struct {
	base       http.RoundTripper
	header     string   // canonical; "" when the tag travels only in baggage
	others     []string // further configured names: removed, never written
	baggageKey string

	// members caches "key=tag" per tag: lanes are few and strings are
	// immutable, and the common request (no baggage yet) then needs no
	// concatenation. Copy on write, so reads take no lock.
	members atomic.Pointer[map[string]string]
	mu      sync.Mutex // serializes writers of members
}

// maxCachedMembers bounds the member cache; tags past it are concatenated
// per request, so a flood of distinct tags cannot grow memory.
const maxCachedMembers = 256

// CloseIdleConnections forwards to the base, so http.Client's method of
// the same name keeps working through this transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tag, decided := tagctx.Lookup(req.Context())
	if !decided {
		tag = tagctx.Node()
	}
	// An explicit untagged decision goes on the wire as the untagged mark.
	mark := decided && tag.IsZero() && t.header != ""
	if t.onWire(req.Header, tag, mark) {
		return t.base.RoundTrip(req)
	}
	return t.base.RoundTrip(t.stamp(req, tag, mark))
}

// onWire reports whether h already carries exactly tag (for the zero Tag:
// no tag at all, or just the untagged mark when mark is set) in baggage a
// conforming reader accepts, so the request can go out unchanged.
func (t *transport) onWire(h http.Header, tag tagctx.Tag, mark bool) bool {
	for _, name := range t.others {
		if _, ok := h[name]; ok {
			return false
		}
	}
	bag := h[baggageHeader]
	if tag.IsZero() {
		if t.header != "" {
			v, ok := h[t.header]
			if mark != ok || mark && (len(v) != 1 || v[0] != "") {
				return false
			}
		}
		has, err := tagctx.HasMember(bag, t.baggageKey)
		return !has && err == nil
	}
	if t.header != "" {
		if v := h[t.header]; len(v) != 1 || v[0] != tag.String() {
			return false
		}
	}
	return len(bag) == 1 && len(bag[0]) <= tagctx.MaxBaggageBytes &&
		strings.Count(bag[0], ",") < tagctx.MaxWrittenMembers &&
		memberIs(bag[0], t.baggageKey, tag.String())
}

// memberIs reports whether baggage value v has exactly one member key,
// with value want and no properties.
func memberIs(v, key, want string) bool {
	n := 0
	for v != "" {
		var m string
		m, v, _ = strings.Cut(v, ",")
		k, val, _ := strings.Cut(m, "=")
		if strings.TrimSpace(k) != key {
			continue
		}
		if n++; n > 1 || strings.TrimSpace(val) != want {
			return false
		}
	}
	return n == 1
}

// stamped is the copy of an outgoing request with room for the two header
// values, so the copy and its values take one allocation.
type stamped struct {
	req  http.Request
	vals [2]string
}

// stamp returns a copy of req whose tag headers and baggage member say tag
// (with mark, the zero Tag as the untagged mark).
func (t *transport) stamp(req *http.Request, tag tagctx.Tag, mark bool) *http.Request {
	s := &stamped{req: *req}
	// A new map, so the caller's header is untouched. The value slices are
	// shared but capped at their length: an append by anyone downstream
	// reallocates instead of writing into the caller's backing array.
	h := make(http.Header, len(req.Header)+2)
	for k, v := range req.Header {
		h[k] = v[:len(v):len(v)]
	}
	for _, name := range t.others {
		delete(h, name)
	}
	if t.header != "" {
		switch {
		case mark:
			h[t.header] = s.vals[0:1:1] // "": the untagged mark
		case tag.IsZero():
			delete(h, t.header)
		default:
			s.vals[0] = tag.String()
			h[t.header] = s.vals[0:1:1]
		}
	}
	var bag string
	if old := req.Header[baggageHeader]; len(old) == 0 {
		if !tag.IsZero() {
			bag = t.member(tag)
		}
	} else {
		// W3C baggage allows several header lines; one line is
		// equivalent. The merge keeps the result within what a
		// conforming reader accepts, dropping other members, never the tag.
		bag = tagctx.MergeBaggageValues(old, t.baggageKey, tag)
	}
	if bag == "" {
		delete(h, baggageHeader)
	} else {
		s.vals[1] = bag
		h[baggageHeader] = s.vals[1:2:2]
	}
	s.req.Header = h
	return &s.req
}

// member returns "key=tag", from the cache when it can.
func (t *transport) member(tag tagctx.Tag) string {
	if m := t.members.Load(); m != nil {
		if s, ok := (*m)[tag.String()]; ok {
			return s
		}
	}
	s := t.baggageKey + "=" + tag.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.members.Load()
	if old != nil && len(*old) >= maxCachedMembers {
		return s
	}
	m := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[tag.String()] = s
	t.members.Store(&m)
	return s
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
