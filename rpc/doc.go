// Package rpc carries a lane's traffic tag across gRPC hops and routes each
// call to an instance of its lane: server interceptors take the tag from
// the incoming metadata, client interceptors send the effective tag on, and
// the taglane_lanes balancer picks an endpoint of the call's lane, else of
// its fallback, and never one of another lane.
//
// Wiring a service that serves and calls: New validates the options once
// (a bad one is an error naming it) and gives the server options, the dial
// options and the interceptors, all agreeing on them.
//
//	lanes, err := rpc.New(rpc.WithObserver(countRoutes))
//	if err != nil {
//		return err
//	}
//	srv := grpc.NewServer(lanes.ServerOptions()...)
//
//	// Any resolver can mark lane instances; here a static list.
//	r := manual.NewBuilderWithScheme("stock")
//	r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{
//		{Addresses: []resolver.Address{{Addr: "10.0.0.1:50051"}}}, // stable
//		rpc.WithEndpointTag(resolver.Endpoint{Addresses: []resolver.Address{{Addr: "10.0.0.7:50051"}}},
//			tagctx.MustParse("feature-x")),
//	}})
//	conn, err := grpc.NewClient("stock:///stock", lanes.DialOptions(
//		grpc.WithResolvers(r), grpc.WithTransportCredentials(creds))...)
//
// The free functions (ServerOptions, DialOptions, ServiceConfig and the
// four interceptors) are must-style shorthands for New: they panic on an
// invalid option, like regexp.MustCompile.
//
// A handler's context then carries the inbound tag, and calls made with it,
// or with a context derived from it (tagctx.Go for goroutines), reach the
// feature-x instance of stock, or the stable one when feature-x has none.
//
// # Wire
//
// The tag travels in metadata "x-tag" and in the "x-tag" member of the W3C
// "baggage" metadata, so it crosses services that only run OpenTelemetry
// propagation (WithMetadataKey and WithBaggageKey rename them). The server
// reads the tag key first, then baggage. A tag that is invalid or over the
// limits is served as untagged and reported (Observation.Rejected), or
// rejected with codes.InvalidArgument under WithRejectInvalid. WithTrust
// decides whose tags are believed; a refused tag is removed from the
// metadata and OpenTelemetry baggage the handler sees. A decision is final
// downstream: when the context carries an explicit untagged decision, the
// client interceptor sends the untagged mark (x-tag with an empty value),
// which the next server takes as decided, reading no baggage. With otelgrpc's
// stats handlers and propagation.Baggage, put tagctx.Propagator after
// Baggage in the composite propagator: otelgrpc rewrites the baggage
// metadata after the client interceptor has run.
//
// # Routing
//
// The balancer is registered as Name ("taglane_lanes") and selected by
// service config, which DialOptions sets as the default:
//
//	{"loadBalancingConfig":[{"taglane_lanes":{"fallback":"stable","parents":{"a2":["a"]}}}]}
//
// It keeps one pick_first child per endpoint (endpointsharding), so
// endpoints coming, going or failing leave the other connections alone.
// Each call is routed by tagctx.Effective of its context along a chain: its
// lane, the lane's parents in order ("parents", WithParents), then the
// stable (untagged) endpoints, unless "fallback" is "fail". Untagged calls
// go to stable endpoints only.
//
// Lanes of the chain are tried in order. A lane with a READY endpoint
// serves the call, round robin among its READY endpoints. A lane whose endpoint is on its first connection
// attempt (just resolved, or the channel just started) is waited for, as
// any gRPC balancer waits for a connecting endpoint: the attempt ends,
// READY or failed, within the connect timeout, so the first calls of a
// lane reach it instead of falling back. Any other lane is skipped at once:
// an instance that was READY and is not any more, or that failed, must not
// hold its calls for a reconnection while the next lane could serve them.
// If the walk finds nothing, a call waits while an endpoint of the chain
// is reconnecting; when all the chain's endpoints fail, calls fail with
// codes.Unavailable (wait-for-ready calls wait, as with round_robin); when
// the chain has no endpoint at all, they fail at once with
// codes.Unavailable, wait-for-ready or not; except during the channel's
// first StartupWait after its first resolver update, when such calls wait
// (a resolver may publish lane instances before stable ones). Either message names the tag,
// the policy and the lanes tried.
//
// # Strict servers
//
// Discovery can be stale: a lane-a instance stops and a lane-b instance
// takes its address before the resolver says so. A server built with
// WithStrict refuses such a misroute (codes.Unavailable with an
// errdetails.ErrorInfo, see Misdirected) before the handler runs, and the
// client interceptor re-picks a refused unary call with the refusing
// endpoint ruled out, at most MaxRepicks times: the call lands on its lane,
// its parents or stable, or fails with the reason. The endpoint is known by
// the address the server accepted the connection on (and, on a re-pick,
// the address gRPC connected to and the endpoint the re-pick chose), so a
// proxy between client and server hides it. Once refused, an endpoint is
// skipped by calls of that traffic tag until the balancer next rebuilds its
// picker (the resolver updates, or an endpoint's state changes), so stale
// discovery costs one refusal, not one per call; picks that skip endpoints
// allocate. Streams fail with the refusal as their status.
//
// # Proof
//
// The server interceptors record, for every call, the traffic tag, the
// node tag (tagctx.Node, or WithNode) and the verdict of tagctx.Decide as
// span attributes and to the WithObserver hook. Give servers the same
// WithParents as clients, so a call served by a parent lane is proven a
// fallback, not a misroute.
package rpc
