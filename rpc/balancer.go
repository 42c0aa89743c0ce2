package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/tagctx"
)

// Name is the name the lane balancer is registered under. Select it with
// service config:
//
//	{"loadBalancingConfig":[{"taglane_lanes":{"fallback":"stable"}}]}
const Name = "taglane_lanes"

// StartupWait bounds how long, after a channel's first resolver update,
// a call whose chain has no endpoint at all waits instead of failing. A
// resolver may publish a service's instances in several updates (lane
// instances before stable ones, say): the first calls must not fail with
// "no endpoint" in between. Calls with an endpoint to go to never wait for
// it; the wait ends early when an endpoint of the chain arrives.
const StartupWait = time.Second

func init() {
	balancer.Register(builder{})
}

type endpointTagKey struct{}

// WithEndpointTag returns ep carrying node tag t, for a resolver to mark
// the lane instances it reports. Endpoints without a tag (or with the zero
// Tag) are stable instances.
func WithEndpointTag(ep resolver.Endpoint, t tagctx.Tag) resolver.Endpoint {
	ep.Attributes = ep.Attributes.WithValue(endpointTagKey{}, t)
	return ep
}

// EndpointTag returns the node tag of ep; the zero Tag for a stable
// instance.
func EndpointTag(ep resolver.Endpoint) tagctx.Tag {
	t, _ := ep.Attributes.Value(endpointTagKey{}).(tagctx.Tag)
	return t
}

type builder struct{}

var (
	_ balancer.Builder      = builder{}
	_ balancer.ConfigParser = builder{}
)

func (builder) Name() string { return Name }

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &lanesBalancer{
		ClientConn: cc,
		cfg:        &lbConfig{Fallback: FallbackStable},
		settled:    resolver.NewEndpointMap[bool](),
	}
	// endpointsharding keeps one pick_first child per endpoint, so an
	// endpoint that comes, goes or fails leaves the others' connections
	// alone; this balancer only regroups the children's pickers by tag.
	b.child = endpointsharding.NewBalancer(b, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// lbConfig is the JSON config of the balancer.
type lbConfig struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	Fallback Fallback            `json:"fallback,omitempty"`
	Parents  map[string][]string `json:"parents,omitempty"`

	fail    bool
	parents map[tagctx.Tag][]tagctx.Tag
}

func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return parseConfig(js)
}

func parseConfig(js []byte) (*lbConfig, error) {
	cfg := &lbConfig{}
	dec := json.NewDecoder(bytes.NewReader(js))
	// A misspelt "fallback" or "parents" must not quietly mean the default.
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, fmt.Errorf("rpc: %s config: %w", Name, err)
	}
	switch cfg.Fallback {
	case "":
		cfg.Fallback = FallbackStable
	case FallbackStable:
	case FallbackFail:
		cfg.fail = true
	default:
		return nil, fmt.Errorf("rpc: %s config: fallback %q: want %q or %q", Name, cfg.Fallback, FallbackStable, FallbackFail)
	}
	if len(cfg.Parents) > 0 {
		cfg.parents = make(map[tagctx.Tag][]tagctx.Tag, len(cfg.Parents))
	}
	for lane, parents := range cfg.Parents {
		l, err := tagctx.Parse(lane)
		if err != nil {
			return nil, fmt.Errorf("rpc: %s config: parents: %w", Name, err)
		}
		chain := make([]tagctx.Tag, 0, len(parents))
		for _, p := range parents {
			t, err := tagctx.Parse(p)
			if err != nil {
				return nil, fmt.Errorf("rpc: %s config: parents of %q: %w", Name, lane, err)
			}
			if t == l || slices.Contains(chain, t) {
				return nil, fmt.Errorf("rpc: %s config: parents of %q: %q repeats a lane of the chain", Name, lane, p)
			}
			chain = append(chain, t)
		}
		cfg.parents[l] = chain
	}
	return cfg, nil
}

var _ balancer.Balancer = (*lanesBalancer)(nil)

// lanesBalancer wraps endpointsharding and replaces its picker with one that
// picks by tag. It embeds the ClientConn to intercept UpdateState.
type lanesBalancer struct {
	balancer.ClientConn
	child balancer.Balancer

	mu  sync.Mutex
	cfg *lbConfig
	// settled holds the endpoints that have been READY or failed since
	// they were added. The others are still on their first connection
	// attempt: a lane instance that is coming up, whose calls should wait
	// for it (briefly: the attempt ends either way) rather than fall back.
	settled *resolver.EndpointMap[bool]

	// starting is true from the first resolver update until StartupWait
	// has passed: pickers built meanwhile queue calls whose chain has no
	// endpoint instead of failing them. startup fires once; last is what
	// it rebuilds the picker from.
	starting bool
	startup  *time.Timer
	last     balancer.State
	closed   bool
}

func (b *lanesBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, ok := s.BalancerConfig.(*lbConfig)
	if !ok {
		if s.BalancerConfig != nil {
			return fmt.Errorf("rpc: %s: config of type %T", Name, s.BalancerConfig)
		}
		cfg = &lbConfig{Fallback: FallbackStable}
	}
	// Not held across the child call: endpointsharding calls UpdateState,
	// which takes mu, while holding its own lock.
	b.mu.Lock()
	b.cfg = cfg
	if b.startup == nil && !b.closed {
		b.starting = true
		b.startup = time.AfterFunc(StartupWait, b.endStartup)
	}
	b.mu.Unlock()
	return b.child.UpdateClientConnState(balancer.ClientConnState{
		// Client side health checks and outlier detection, when configured,
		// report through the health listener of the pick_first leaves.
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

func (b *lanesBalancer) ResolverError(err error) { b.child.ResolverError(err) }

// UpdateSubConnState is never called: the pick_first leaves learn their
// SubConns' states through StateListener.
func (b *lanesBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *lanesBalancer) ExitIdle() { b.child.ExitIdle() }

func (b *lanesBalancer) Close() {
	b.mu.Lock()
	b.closed = true
	if b.startup != nil {
		b.startup.Stop()
	}
	b.mu.Unlock()
	b.child.Close()
}

// endStartup republishes the picker without the startup wait, so calls
// queued for a chain that is still empty now fail with their reason.
func (b *lanesBalancer) endStartup() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.starting = false
	if b.closed || b.last.Picker == nil {
		return
	}
	b.publishLocked(b.last)
}

// UpdateState receives endpointsharding's state on every change of any
// child and rebuilds the tag picker. The channel's connectivity state stays
// endpointsharding's aggregate: READY while any endpoint is.
func (b *lanesBalancer) UpdateState(s balancer.State) {
	children := endpointsharding.ChildStatesFromPicker(s.Picker)
	if len(children) == 0 {
		// No endpoints at all (a resolver error before any update): its
		// picker already fails the way gRPC expects.
		b.ClientConn.UpdateState(s)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.last = s
	b.publishLocked(s)
}

// publishLocked builds the tag picker from endpointsharding's state s and
// hands it to the channel. It holds mu throughout, so the startup timer
// and child updates publish in order: never an older picker after a newer
// one. The channel's UpdateState does not call back into the balancer.
func (b *lanesBalancer) publishLocked(s balancer.State) {
	children := endpointsharding.ChildStatesFromPicker(s.Picker)
	// Rebuilt from the current children, so endpoints that left are
	// forgotten and count as new if they come back.
	settled := resolver.NewEndpointMap[bool]()
	for _, c := range children {
		was, _ := b.settled.Get(c.Endpoint)
		st := c.State.ConnectivityState
		settled.Set(c.Endpoint, was || st == connectivity.Ready || st == connectivity.TransientFailure)
	}
	b.settled = settled
	p := newPicker(b.cfg, children, func(ep resolver.Endpoint) bool {
		ok, _ := settled.Get(ep)
		return !ok
	})
	if b.starting {
		p.waitForEmpty()
	}
	b.ClientConn.UpdateState(balancer.State{ConnectivityState: s.ConnectivityState, Picker: p})
}

// group is the READY endpoints of one tag, picked in round robin.
type group struct {
	pickers []balancer.Picker
	next    atomic.Uint32

	// eps[i] is the endpoint behind pickers[i]; read by pickAvoiding.
	eps []resolver.Endpoint
}

func (g *group) pick(info balancer.PickInfo) (balancer.PickResult, error) {
	n := g.next.Add(1)
	return g.pickers[n%uint32(len(g.pickers))].Pick(info)
}

// groupState is what the picker builder knows about one tag's endpoints.
type groupState struct {
	ready   *group
	first   bool // some endpoint is on its first connection attempt
	pending bool // some endpoint is IDLE or CONNECTING
	failing bool // some endpoint is in TRANSIENT_FAILURE
}

// plan is the precomputed answer for one traffic tag.
type plan struct {
	g       *group // the group that serves: the first of the chain with a READY endpoint
	pending bool   // queue: the first lane able to serve is coming up, or none READY and one reconnecting
	failing bool   // none READY or connecting, some failing: transient
	tried   string // the chain, for error messages

	// ready is every READY group of the chain, in order; read by pickAvoiding.
	ready []*group
}

// picker routes each pick by the call's effective tag. Every decision is
// made when the picker is built, so a pick is a context read, one map
// lookup and an atomic add, whatever the number of lanes.
type picker struct {
	plans    map[tagctx.Tag]*plan // lanes with endpoints or parents
	unknown  *plan                // any other lane: straight to the fallback policy
	untagged *plan
	fallback Fallback

	// refused holds, per traffic tag, the addresses strict servers
	// refused calls at, for as long as this picker lives; see repick.go.
	refused atomic.Pointer[map[tagctx.Tag]*avoidSet]
}

var _ balancer.Picker = (*picker)(nil)

// newPicker groups children by tag. first reports whether an endpoint is
// still on its first connection attempt.
func newPicker(cfg *lbConfig, children []endpointsharding.ChildState, first func(resolver.Endpoint) bool) *picker {
	groups := make(map[tagctx.Tag]*groupState)
	for _, c := range children {
		t := EndpointTag(c.Endpoint)
		gs := groups[t]
		if gs == nil {
			gs = &groupState{}
			groups[t] = gs
		}
		switch c.State.ConnectivityState {
		case connectivity.Ready:
			if gs.ready == nil {
				gs.ready = &group{}
				// Pickers are rebuilt on every state change; starting each
				// at the same index would load the first endpoint most.
				gs.ready.next.Store(rand.Uint32())
			}
			gs.ready.pickers = append(gs.ready.pickers, c.State.Picker)
			gs.ready.eps = append(gs.ready.eps, c.Endpoint)
		case connectivity.Idle, connectivity.Connecting:
			// endpointsharding moves IDLE children to CONNECTING itself.
			gs.pending = true
			gs.first = gs.first || first(c.Endpoint)
		case connectivity.TransientFailure:
			gs.failing = true
		}
	}
	p := &picker{
		plans:    make(map[tagctx.Tag]*plan, len(groups)+len(cfg.parents)),
		fallback: cfg.Fallback,
	}
	chain := func(t tagctx.Tag) []tagctx.Tag {
		c := append([]tagctx.Tag{t}, cfg.parents[t]...)
		if !cfg.fail {
			c = append(c, tagctx.Tag{})
		}
		return c
	}
	for t := range groups {
		if !t.IsZero() {
			p.plans[t] = makePlan(groups, chain(t))
		}
	}
	for t := range cfg.parents {
		if p.plans[t] == nil {
			p.plans[t] = makePlan(groups, chain(t))
		}
	}
	p.untagged = makePlan(groups, []tagctx.Tag{{}})
	var fb []tagctx.Tag
	if !cfg.fail {
		fb = []tagctx.Tag{{}}
	}
	p.unknown = makePlan(groups, fb)
	return p
}

// waitForEmpty makes the plans whose chain has no endpoint at all queue
// their calls instead of failing them, during the startup wait.
func (p *picker) waitForEmpty() {
	wait := func(pl *plan) {
		if pl.g == nil && !pl.pending && !pl.failing {
			pl.pending = true
		}
	}
	for _, pl := range p.plans {
		wait(pl)
	}
	wait(p.unknown)
	wait(p.untagged)
}

func makePlan(groups map[tagctx.Tag]*groupState, chain []tagctx.Tag) *plan {
	pl := &plan{}
	names := make([]string, len(chain))
	decided := false
	for i, t := range chain {
		if t.IsZero() {
			names[i] = "stable"
		} else {
			names[i] = fmt.Sprintf("lane %q", t)
		}
		gs := groups[t]
		if gs != nil && gs.ready != nil {
			pl.ready = append(pl.ready, gs.ready)
		}
		if gs == nil || decided {
			continue
		}
		switch {
		case gs.ready != nil:
			pl.g, pl.pending, decided = gs.ready, false, true
		case gs.first:
			// Coming up, not gone: wait for it rather than serve its
			// calls elsewhere.
			pl.pending, decided = true, true
		default:
			pl.pending = pl.pending || gs.pending
			pl.failing = pl.failing || gs.failing
		}
	}
	pl.tried = strings.Join(names, ", ")
	return pl
}

// Pick never returns an endpoint outside the call's chain (its lane, its
// parent lanes, then stable unless the policy is "fail"). It walks the
// chain and stops at the first lane that has a READY endpoint (picked in
// round robin) or an endpoint on its first connection attempt (queued with
// balancer.ErrNoSubConnAvailable, as any gRPC balancer does for a group
// that is connecting, until the next picker: that attempt ends, READY or
// failed, within the connect timeout). Any other lane is passed over at
// once: an instance that was READY and is not, or that failed, is gone
// for routing until it is READY again.
//
// When the walk finds nothing: if an endpoint of the chain is
// reconnecting, the pick is queued too (there is nothing else to do). If
// endpoints of the chain exist but all are failing, the error is
// transient: calls fail with Unavailable, and wait-for-ready calls wait for
// a change, as with round_robin. If the chain has no endpoint at all, the
// call fails with an Unavailable status, wait-for-ready or not, since no
// connection attempt can change that.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	t := tagctx.Effective(info.Ctx)
	pl := p.untagged
	if !t.IsZero() {
		var ok bool
		if pl, ok = p.plans[t]; !ok {
			pl = p.unknown
		}
	}
	if av, call := p.avoiding(info.Ctx, t); av != nil {
		return p.pickAvoiding(info, t, pl, av, call) // a strict server refused: see repick.go
	}
	if pl.g != nil {
		return pl.g.pick(info)
	}
	if pl.pending {
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	return balancer.PickResult{}, p.noEndpoint(t, pl)
}

func (p *picker) noEndpoint(t tagctx.Tag, pl *plan) error {
	var msg string
	switch {
	case t.IsZero():
		msg = "rpc: no ready stable endpoint for an untagged call"
	case pl == p.unknown:
		tried := fmt.Sprintf("lane %q", t)
		if pl.tried != "" {
			tried += ", " + pl.tried
		}
		msg = fmt.Sprintf("rpc: no ready endpoint for tag %q (fallback policy %q; tried %s)", t, p.fallback, tried)
	default:
		msg = fmt.Sprintf("rpc: no ready endpoint for tag %q (fallback policy %q; tried %s)", t, p.fallback, pl.tried)
	}
	if pl.failing {
		msg += ": every endpoint is failing"
		// Not a status: gRPC turns it into Unavailable for ordinary calls
		// and lets wait-for-ready calls wait for the endpoints to recover.
		return errors.New(msg)
	}
	return status.Error(codes.Unavailable, msg+": no endpoint")
}
