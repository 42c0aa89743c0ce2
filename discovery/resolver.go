package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// NewResolver returns a gRPC resolver that feeds the lane balancer
// (rpc.Name) from reg: target "taglane:///orders" resolves to the
// instances of service "orders" with their node tags, and its service
// config selects taglane_lanes with the lane definitions in force
// (registry over WithLanes), so they apply without a restart.
func NewResolver(reg Registry, opts ...Option) (resolver.Builder, error) {
	if reg == nil {
		return nil, errors.New("discovery: NewResolver: nil registry")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := o.lanes.Check(); err != nil {
		return nil, err
	}
	if o.sc != "" {
		if _, _, err := keepLanes(o.sc, o.lanes); err != nil {
			return nil, err
		}
	}
	return &regBuilder{reg: reg, o: o}, nil
}

type regBuilder struct {
	reg Registry
	o   *options
}

func (b *regBuilder) Scheme() string { return b.o.scheme }

func (b *regBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := target.Endpoint()
	if err := CheckService(service); err != nil {
		return nil, err
	}
	r := &regResolver{cc: cc, o: b.o}
	stop, err := b.reg.Watch(service, r.update)
	if err != nil {
		return nil, err
	}
	r.stop = stop
	return r, nil
}

type regResolver struct {
	cc   resolver.ClientConn
	o    *options
	stop func()

	// Only the watcher goroutine touches these.
	lastSC string
	sc     *serviceconfig.ParseResult
}

func (r *regResolver) update(s State) {
	lanes := s.Lanes.Over(r.o.lanes)
	js := lanes.serviceConfig()
	if r.o.sc != "" {
		js, _, _ = keepLanes(r.o.sc, lanes) // checked in NewResolver
	}
	if js != r.lastSC {
		r.lastSC, r.sc = js, r.cc.ParseServiceConfig(js)
	}
	r.cc.UpdateState(resolver.State{Endpoints: Endpoints(s.Instances), ServiceConfig: r.sc})
}

// Endpoints returns the gRPC endpoints of insts, each with its node tag
// (rpc.WithEndpointTag) for the lane balancer.
func Endpoints(insts []Instance) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, len(insts))
	for i, inst := range insts {
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: inst.Addr}}}
		if !inst.Tag.IsZero() {
			eps[i] = rpc.WithEndpointTag(eps[i], inst.Tag)
		}
	}
	return eps
}

func (r *regResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *regResolver) Close() { r.stop() }

// keepLanes returns the service config js with its balancer set to the
// lane balancer configured by lanes, keeping every other setting, and
// whether it changed the balancer. A config that already selects the lane
// balancer first is kept as it is.
func keepLanes(js string, lanes Lanes) (string, bool, error) {
	var sc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &sc); err != nil {
		return "", false, fmt.Errorf("discovery: service config %s: %w", quote(js), err)
	}
	if sc == nil {
		sc = make(map[string]json.RawMessage)
	}
	var lbs []map[string]json.RawMessage
	if raw, ok := sc["loadBalancingConfig"]; ok {
		if err := json.Unmarshal(raw, &lbs); err == nil && len(lbs) > 0 && len(lbs[0]) == 1 {
			if _, lanes := lbs[0][rpc.Name]; lanes {
				return js, false, nil
			}
		}
	}
	_, hadPolicy := sc["loadBalancingPolicy"]
	_, hadConfig := sc["loadBalancingConfig"]
	delete(sc, "loadBalancingPolicy")
	var ours map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lanes.serviceConfig()), &ours); err != nil {
		panic("discovery: own service config: " + err.Error()) // rpc.ServiceConfig writes valid JSON
	}
	sc["loadBalancingConfig"] = ours["loadBalancingConfig"]
	out, err := json.Marshal(sc)
	if err != nil {
		return "", false, fmt.Errorf("discovery: service config %s: %w", quote(js), err)
	}
	return string(out), hadPolicy || hadConfig, nil
}

// TagFunc reads the node tag of an endpoint that a resolver reports: the
// zero Tag for a stable instance, an error when the endpoint carries a tag
// that is not valid (the endpoint is then left out, not treated as stable).
type TagFunc func(resolver.Endpoint) (tagctx.Tag, error)

// TagAttribute returns a TagFunc that reads the value of key from the
// endpoint's attributes, else from its first address's attributes: a
// tagctx.Tag or a string (parsed).
func TagAttribute(key any) TagFunc {
	return func(ep resolver.Endpoint) (tagctx.Tag, error) {
		v := ep.Attributes.Value(key)
		if v == nil && len(ep.Addresses) > 0 {
			v = ep.Addresses[0].Attributes.Value(key)
		}
		return tagValue(v)
	}
}

// TagMetadata returns a TagFunc that reads key from the Metadata of the
// endpoint's first address, when that is a map[string]string or
// map[string]any (as JSON decodes it).
func TagMetadata(key string) TagFunc {
	return func(ep resolver.Endpoint) (tagctx.Tag, error) {
		if len(ep.Addresses) == 0 {
			return tagctx.Tag{}, nil
		}
		//lint:ignore SA1019 resolvers still fill Metadata (etcd's naming, Consul and Nacos adapters): reading it is the point
		switch md := ep.Addresses[0].Metadata.(type) {
		case map[string]string:
			v, ok := md[key]
			if !ok {
				return tagctx.Tag{}, nil
			}
			return tagValue(v)
		case map[string]any:
			return tagValue(md[key])
		}
		return tagctx.Tag{}, nil
	}
}

func tagValue(v any) (tagctx.Tag, error) {
	switch v := v.(type) {
	case nil:
		return tagctx.Tag{}, nil
	case tagctx.Tag:
		return v, nil
	case string:
		if v == "" {
			return tagctx.Tag{}, nil
		}
		t, err := tagctx.Parse(v)
		if err != nil {
			return tagctx.Tag{}, fmt.Errorf("discovery: endpoint tag: %w", err)
		}
		return t, nil
	}
	return tagctx.Tag{}, fmt.Errorf("discovery: endpoint tag of type %T: want a string or tagctx.Tag", v)
}

// Wrap returns a resolver builder that resolves like b (dns, xDS, etcd's
// naming resolver, Consul, Nacos) and marks each endpoint with the node
// tag tagOf reads, for the lane balancer. Endpoints whose tag cannot be
// read are left out and reported (WithErrorHandler). Lane routing stays in
// force whatever service config b delivers: a config selecting another
// balancer (round_robin from a DNS TXT record, say) keeps all its other
// settings but gets the lane balancer, configured by WithLanes; a config
// that already selects taglane_lanes is kept as it is.
func Wrap(b resolver.Builder, tagOf TagFunc, opts ...Option) (resolver.Builder, error) {
	if b == nil || tagOf == nil {
		return nil, errors.New("discovery: Wrap: nil builder or TagFunc")
	}
	o, err := newOptions(append([]Option{WithScheme(b.Scheme())}, opts...))
	if err != nil {
		return nil, err
	}
	if err := o.lanes.Check(); err != nil {
		return nil, err
	}
	return &wrapBuilder{b: b, tagOf: tagOf, o: o}, nil
}

type wrapBuilder struct {
	b     resolver.Builder
	tagOf TagFunc
	o     *options
}

func (w *wrapBuilder) Scheme() string { return w.o.scheme }

func (w *wrapBuilder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	return w.b.Build(target, &wrapCC{ClientConn: cc, w: w}, opts)
}

// wrapCC stands between the wrapped resolver and the channel.
type wrapCC struct {
	resolver.ClientConn
	w *wrapBuilder

	mu    sync.Mutex
	ours  [4]*serviceconfig.ParseResult // recent results of ParseServiceConfig
	next  int
	lanes *serviceconfig.ParseResult // the lane balancer alone, parsed once
}

func (c *wrapCC) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	out, changed, err := keepLanes(js, c.w.o.lanes)
	if err != nil {
		// Invalid JSON: let the channel reject it as it would have.
		return c.ClientConn.ParseServiceConfig(js)
	}
	if changed {
		c.w.o.report(fmt.Errorf("discovery: service config %s from the %q resolver selects another balancer: kept %s", quote(js), c.w.b.Scheme(), rpc.Name))
	}
	pr := c.ClientConn.ParseServiceConfig(out)
	c.mu.Lock()
	c.ours[c.next%len(c.ours)] = pr
	c.next++
	c.mu.Unlock()
	return pr
}

func (c *wrapCC) isOurs(pr *serviceconfig.ParseResult) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.ours {
		if o == pr {
			return true
		}
	}
	return false
}

func (c *wrapCC) lanesConfig() *serviceconfig.ParseResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lanes == nil {
		c.lanes = c.ClientConn.ParseServiceConfig(c.w.o.lanes.serviceConfig())
	}
	return c.lanes
}

func (c *wrapCC) UpdateState(s resolver.State) error {
	eps := s.Endpoints
	if len(eps) == 0 {
		// Older resolvers fill Addresses only: one endpoint per address,
		// as the channel itself would make.
		for _, a := range s.Addresses {
			eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{a}})
		}
	}
	kept := make([]resolver.Endpoint, 0, len(eps))
	var addrs []resolver.Address
	for _, ep := range eps {
		t, err := c.w.tagOf(ep)
		if err != nil {
			c.w.o.report(fmt.Errorf("discovery: endpoint %v left out: %w", ep.Addresses, err))
			continue
		}
		if !t.IsZero() {
			ep = rpc.WithEndpointTag(ep, t)
		}
		kept = append(kept, ep)
		addrs = append(addrs, ep.Addresses...)
	}
	s.Endpoints, s.Addresses = kept, addrs
	switch {
	case s.ServiceConfig == nil:
		s.ServiceConfig = c.lanesConfig()
	case s.ServiceConfig.Err != nil:
		// The channel keeps its previous config, which had lane routing.
	case !c.isOurs(s.ServiceConfig):
		// Parsed some other way: nothing says it keeps lane routing.
		c.w.o.report(fmt.Errorf("discovery: a service config the %q resolver parsed itself was replaced by %s", c.w.b.Scheme(), rpc.Name))
		s.ServiceConfig = c.lanesConfig()
	}
	return c.ClientConn.UpdateState(s)
}
