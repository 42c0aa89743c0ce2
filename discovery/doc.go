// Package discovery lets lane instances register their node tag in a
// registry and lets gRPC and HTTP clients route by lane from it: the lane
// instances of service B register their tag when they start; service A
// discovers B's stable and lane instances with their tags and picks one by
// the traffic tag of each call.
//
//	reg := discovery.NewMemory() // or etcd.New(client) from github.com/taglane/taglane/discovery/etcd
//
//	// An instance, at start-up (the tag is its node tag, TAGLANE_TAG):
//	r, err := reg.Register(ctx, discovery.Instance{Service: "stock", Addr: "10.0.0.7:50051", Tag: tagctx.Node()})
//	defer r.Close(ctx)
//
//	// A gRPC client: the resolver feeds the lane balancer.
//	b, err := discovery.NewResolver(reg)
//	lanes, err := rpc.New()
//	conn, err := grpc.NewClient("taglane:///stock", lanes.DialOptions(grpc.WithResolvers(b), creds)...)
//
//	// An HTTP client: requests for http://pricing/... go to a pricing
//	// instance of the request context's lane; httpmw sends the tag on.
//	tagging, err := httpmw.NewTransport(nil)
//	tr, err := discovery.NewTransport(reg, []string{"pricing"}, discovery.WithBase(tagging))
//	client := &http.Client{Transport: tr}
//
// # Routing rules
//
// Both transports route a call by tagctx.Effective of its context along
// one chain: its lane, the lane's parents in order, then the stable
// instances unless the fallback policy is "fail"; untagged calls go to
// stable instances only; round robin inside the chosen lane. Never another
// lane, never "any instance". gRPC adds connection states (see package
// rpc): a lane instance that is not READY is passed over. The HTTP
// Transport has no connection states: it picks from the registry, and
// when the instance is unreachable (the connection could not be made, so
// nothing was sent) it tries the chain's next instance, up to
// WithMaxAttempts, if the request body can be sent again (none, or
// Request.GetBody). An error after a connection was made is returned as it
// is: the request may have been processed. Picking is a map lookup and an
// atomic add, with no allocation, whatever the number of lanes.
//
// # Lane definitions
//
// A lane's parent chain and the fallback policy can be stored in the
// registry (Registry.SetLanes). Every client applies them with the next
// update, without a restart: the resolver publishes them in the service
// config of its state, which configures the lane balancer (rpc.Name), and
// the Transport rebuilds its table. Precedence, per client: the registry's
// fallback, when it sets one, over WithLanes'; for each lane, the
// registry's chain, when it defines one, over WithLanes'. A service
// config from the resolver replaces the channel's default one, so with
// NewResolver the rpc.WithParents and rpc.WithFallback given to
// rpc.New do not route: give them to WithLanes (or store them in
// the registry). Servers classify a hop served by a parent lane with
// rpc.WithParents, or with the registry's chains when given
// rpc.WithParentsFrom(view.Parents) of a WatchLanes view, so a chain
// stored at runtime is not reported as a misroute by the servers.
//
// # Balancer safety
//
// Lane routing must not be silently replaced. NewResolver always
// publishes a service config selecting taglane_lanes (WithServiceConfig
// adds other settings, such as methodConfig). Wrap rewrites every service
// config the wrapped resolver delivers: a config selecting another policy
// (round_robin from a DNS TXT record, say) keeps its other settings and
// gets taglane_lanes instead, and the rewrite is reported; a config that
// already selects taglane_lanes is kept as it is. A resolver used without
// Wrap can still replace the balancer: wrap it. Before a channel's first
// resolver update has settled (rpc.StartupWait), calls whose chain has no
// endpoint yet wait instead of failing, so a resolver that publishes lane
// instances before stable ones does not fail the first calls.
//
// # Wrapping the resolver you have
//
// Wrap takes any resolver.Builder (dns, xDS, Kubernetes, Consul, Nacos,
// etcd's naming resolver) and a TagFunc that reads each endpoint's tag:
// TagAttribute for endpoint or address attributes, TagMetadata for an
// address's Metadata map, or a function of your own. An endpoint whose tag
// cannot be read is left out and reported (WithErrorHandler), never taken
// for a stable instance. Wrapping an xDS resolver replaces the balancer
// tree xDS configures: xDS features that live in that tree (priorities,
// weighted clusters) do not apply under lane routing.
//
// # Registries
//
// NewMemory is a registry inside one process, for tests and demos. The
// etcd registry (module github.com/taglane/taglane/discovery/etcd) keeps
// registrations under a lease: a graceful Close revokes it at once, a
// crashed process disappears after the lease TTL, and clients keep the
// last state they had while etcd is unreachable. Its keys are those of
// etcd's naming package, with the tag in the endpoint metadata; see its
// documentation.
package discovery
