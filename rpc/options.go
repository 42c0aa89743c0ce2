package rpc

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/taglane/taglane/tagctx"
)

// DefaultMetadataKey is the gRPC metadata key of the traffic tag: the
// lowercase form of tagctx.DefaultHeader, since gRPC metadata keys are
// lowercase on the wire.
const DefaultMetadataKey = "x-tag"

// Fallback is where a tagged call goes when its lane, and every parent lane
// of its chain, has no ready endpoint.
type Fallback string

const (
	// FallbackStable sends the call to the stable (untagged) endpoints.
	FallbackStable Fallback = "stable"
	// FallbackFail fails the call with codes.Unavailable and a message
	// naming the tag and the policy.
	FallbackFail Fallback = "fail"
)

// Option configures New (and the must-style helpers built on it: the
// interceptor functions, DialOptions, ServerOptions, ServiceConfig).
// Options that do not concern a given entry point are ignored by it, so
// one option list can serve a whole process. A nil Option is ignored.
// Building an Option never panics: a bad argument is kept and New returns
// it as an error naming the option.
type Option interface {
	apply(*options)
}

// optionFunc is an Option that cannot fail.
type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// badOption is an Option built from a bad argument: it records why, and
// New reports the first such error.
type badOption struct{ err error }

func (b badOption) apply(o *options) {
	if o.err == nil {
		o.err = b.err
	}
}

type options struct {
	mdKey      string
	baggageKey string
	trust      tagctx.Trust
	reject     bool
	observer   tagctx.Observer
	node       tagctx.Tag
	nodeSet    bool
	fallback   Fallback
	parents    map[tagctx.Tag][]tagctx.Tag
	// parentsFrom, when set, gives a server lane definitions that change
	// at runtime; see WithParentsFrom.
	parentsFrom func(tagctx.Tag) ([]tagctx.Tag, bool)
	strict      bool
	sent        *sentMD // client.go: outgoing metadata per tag, set by New
	err         error   // the first bad option's
}

// newOptions resolves opts once; the error is the first bad option's.
func newOptions(opts []Option) (*options, error) {
	o := &options{
		mdKey:      DefaultMetadataKey,
		baggageKey: tagctx.DefaultBaggageKey,
		fallback:   FallbackStable,
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

// nodeTag is the node tag this entry point reports in its route proof.
func (o *options) nodeTag() tagctx.Tag {
	if o.nodeSet {
		return o.node
	}
	return tagctx.Node()
}

// WithMetadataKey sets the metadata key of the tag (default "x-tag"). It is
// lowercased, as gRPC sends keys. New fails if key is not a key gRPC
// would carry as text: empty, outside [0-9a-z-_.], reserved ("grpc-"
// prefix), binary ("-bin" suffix) or "baggage".
func WithMetadataKey(key string) Option {
	lower := strings.ToLower(key)
	if err := checkMetadataKey(lower); err != nil {
		return badOption{fmt.Errorf("rpc: WithMetadataKey(%s): %w", tagctx.Quote(key), err)}
	}
	return optionFunc(func(o *options) { o.mdKey = lower })
}

// WithBaggageKey sets the W3C baggage member of the tag (default "x-tag").
// New fails if key is empty or holds a character that would break the
// baggage list (space, ',', ';', '=', '%', '"').
func WithBaggageKey(key string) Option {
	if key == "" || strings.ContainsAny(key, " \t,;=%\"") {
		return badOption{fmt.Errorf("rpc: WithBaggageKey(%s): %w", tagctx.Quote(key), errBadBaggageKey)}
	}
	return optionFunc(func(o *options) { o.baggageKey = key })
}

var errBadBaggageKey = errors.New("want a non-empty token without space, ',', ';', '=', '%' or '\"'")

func checkMetadataKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty")
	case strings.HasPrefix(key, "grpc-"), strings.HasSuffix(key, "-bin"), key == tagctx.BaggageHeader:
		return errors.New("reserved, binary or baggage")
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("character %q not in [0-9a-z-_.]", c)
		}
	}
	return nil
}

// WithTrust sets whose tags a server believes (default: every valid tag,
// right for test environments; tagctx.TrustNone for production edges). A
// tag that is not accepted, refused or invalid, is also removed from the
// metadata and OpenTelemetry baggage the handler sees, so a handler that
// forwards what it received cannot smuggle a lane through. Under any
// policy but TrustAll the decision is final for every call, "untagged"
// included: the handler's context is always marked, and the client
// interceptor sends the untagged mark (the metadata key with an empty
// value), which the next hop takes as decided.
func WithTrust(t tagctx.Trust) Option {
	if err := t.Err(); err != nil {
		return badOption{fmt.Errorf("rpc: WithTrust: %w", err)}
	}
	return optionFunc(func(o *options) { o.trust = t })
}

// WithRejectInvalid makes a server fail calls whose tag is present but
// invalid (or over the size limits) with codes.InvalidArgument, instead of
// serving them as untagged. Untrusted tags are still served as untagged:
// they are well formed, the caller just may not choose a lane here.
func WithRejectInvalid() Option {
	return optionFunc(func(o *options) { o.reject = true })
}

// WithObserver sets the hook that receives the route proof of every call a
// server handles, with the reason a tag was not accepted in
// Observation.Rejected. A call failed under WithRejectInvalid is reported
// too, with the zero Route ("unknown"): nothing served it.
func WithObserver(f tagctx.Observer) Option {
	return optionFunc(func(o *options) { o.observer = f })
}

// WithNode overrides tagctx.Node() as the node tag a server reports in its
// route proof, for processes that host instances of several lanes (tests,
// demos). Routing of outgoing calls still follows the context.
func WithNode(t tagctx.Tag) Option {
	return optionFunc(func(o *options) { o.node, o.nodeSet = t, true })
}

// WithStrict makes a server refuse a call it should not serve, a misroute:
// traffic of another lane (not the node's lane, not one of its parents,
// WithParents), or stable traffic on a lane instance. The refusal is
// codes.Unavailable with an errdetails.ErrorInfo (MisdirectedDomain,
// MisdirectedReason; see Misdirected), sent before the handler runs, so
// stale discovery (a lane-a address now held by a lane-b instance) cannot
// cross lanes. The client interceptor re-picks a refused unary call, ruling
// out the refusing endpoint (for later calls of the same tag too, until
// the balancer's picker is rebuilt), at most MaxRepicks times; a stream
// fails with the refusal as its status. The observer gets the refusal with the zero
// Route (no lane served it) and Rejected matching ErrMisdirected. Off by
// default: a misroute is then served and reported.
func WithStrict() Option {
	return optionFunc(func(o *options) { o.strict = true })
}

// WithFallback sets the balancer's fallback policy in the service config
// that DialOptions and ServiceConfig produce (default FallbackStable; ""
// means it too). New fails on any other value.
func WithFallback(f Fallback) Option {
	if f == "" {
		f = FallbackStable
	}
	if f != FallbackStable && f != FallbackFail {
		return badOption{fmt.Errorf("rpc: WithFallback(%s): want %q or %q", tagctx.Quote(string(f)), FallbackStable, FallbackFail)}
	}
	return optionFunc(func(o *options) { o.fallback = f })
}

// WithParents declares that traffic of lane may be served by the lanes in
// parents, in order, before the fallback policy applies: a chain such as
// feature-x2 -> feature-x -> stable. The balancer (through DialOptions and
// ServiceConfig) routes along it, and servers classify a hop served by a
// parent as a fallback rather than a misroute. Give the whole chain: it is
// not followed transitively. Later calls for the same lane replace earlier
// ones. New fails on a chain for stable (the zero Tag) or that names
// stable or repeats a lane.
func WithParents(lane tagctx.Tag, parents ...tagctx.Tag) Option {
	if err := tagctx.CheckChain(lane, parents); err != nil {
		return badOption{fmt.Errorf("rpc: WithParents(%s, %s): %w", tagctx.Quote(lane.String()), tagctx.Quote(chainString(parents)), err)}
	}
	parents = slices.Clone(parents)
	return optionFunc(func(o *options) {
		if o.parents == nil {
			o.parents = make(map[tagctx.Tag][]tagctx.Tag)
		}
		o.parents[lane] = parents
	})
}

func chainString(parents []tagctx.Tag) string {
	s := make([]string, len(parents))
	for i, p := range parents {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// WithParentsFrom gives servers parent chains that can change at runtime,
// such as those stored in a registry (discovery.LaneView.Parents): a hop
// of lane L served by a parent is classified with the chain f reports for
// L when it defines one (ok), else with WithParents'. So servers agree
// with clients about a chain without a restart, and do not report a
// parent's hop as a misroute. f is called on every tagged call: keep it
// lock-free and allocation-free. It does not change routing: clients get
// their chains from their service config.
func WithParentsFrom(f func(lane tagctx.Tag) (parents []tagctx.Tag, ok bool)) Option {
	return optionFunc(func(o *options) { o.parentsFrom = f })
}

// parentsOf is the parent chain of lane a server classifies with.
func (o *options) parentsOf(lane tagctx.Tag) []tagctx.Tag {
	if o.parentsFrom != nil {
		if p, ok := o.parentsFrom(lane); ok {
			return p
		}
	}
	return o.parents[lane]
}
