package rpc_test

import (
	"context"
	"fmt"
	"net/netip"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// call runs one unary call with incoming metadata md through the server
// interceptor built from opts, in process, and prints what the handler saw
// or the status the interceptor answered.
func call(md metadata.MD, opts ...rpc.Option) {
	icpt := rpc.UnaryServerInterceptor(opts...)
	ctx := metadata.NewIncomingContext(context.Background(), md)
	ctx = peerContext(ctx, "127.0.0.1:40000")
	_, err := icpt(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/stock.Stock/Check"}, func(ctx context.Context, _ any) (any, error) {
		fmt.Printf("handler: lane %q\n", tagctx.From(ctx))
		return nil, nil
	})
	if err != nil {
		fmt.Println(status.Code(err))
	}
}

func ExampleEndpointTag() {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: "10.0.0.1:50051"}}}
	fmt.Printf("%q\n", rpc.EndpointTag(ep)) // no tag: a stable instance
	// Output: ""
}

func ExampleWithMetadataKey() {
	call(metadata.Pairs("lane", "feature-x"), rpc.WithMetadataKey("Lane"))
	// Output: handler: lane "feature-x"
}

func ExampleWithBaggageKey() {
	call(metadata.Pairs("baggage", "userid=42,lane=feature-x"), rpc.WithBaggageKey("lane"))
	// Output: handler: lane "feature-x"
}

func ExampleWithRejectInvalid() {
	call(metadata.Pairs("x-tag", "feature_x"))                          // served as untagged
	call(metadata.Pairs("x-tag", "feature_x"), rpc.WithRejectInvalid()) // refused
	// Output:
	// handler: lane ""
	// InvalidArgument
}

func ExampleWithTrust() {
	call(metadata.Pairs("x-tag", "feature-x"), rpc.WithTrust(tagctx.TrustNone()))
	call(metadata.Pairs("x-tag", "feature-x"), rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("127.0.0.0/8"))))
	// Output:
	// handler: lane ""
	// handler: lane "feature-x"
}

func ExampleWithObserver() {
	observer := func(_ context.Context, o tagctx.Observation) {
		fmt.Println(o.Transport, o.Operation, o.Traffic, o.Node, o.Route)
	}
	call(metadata.Pairs("x-tag", "feature-x"), rpc.WithNode(tagctx.Tag{}), rpc.WithObserver(observer))
	// Output:
	// grpc /stock.Stock/Check feature-x  fallback
	// handler: lane "feature-x"
}

// The node tag of the instance behind the interceptors, for processes that
// host several instances; the route proof compares it with the traffic's.
func ExampleWithNode() {
	observer := func(_ context.Context, o tagctx.Observation) { fmt.Println(o.Route) }
	call(metadata.Pairs("x-tag", "feature-x"), rpc.WithNode(tagctx.MustParse("feature-x")), rpc.WithObserver(observer))
	// Output:
	// matched
	// handler: lane "feature-x"
}

// feature-x2 builds on feature-x: its calls go to a feature-x instance
// before stable, and a server proves such a hop a fallback.
func ExampleWithParents() {
	x, x2 := tagctx.MustParse("feature-x"), tagctx.MustParse("feature-x2")
	observer := func(_ context.Context, o tagctx.Observation) { fmt.Println(o.Traffic, "on", o.Node, o.Route) }
	call(metadata.Pairs("x-tag", "feature-x2"), rpc.WithNode(x), rpc.WithParents(x2, x), rpc.WithObserver(observer))
	fmt.Println(rpc.ServiceConfig(rpc.WithParents(x2, x)))
	// Output:
	// feature-x2 on feature-x fallback
	// handler: lane "feature-x2"
	// {"loadBalancingConfig":[{"taglane_lanes":{"fallback":"stable","parents":{"feature-x2":["feature-x"]}}}]}
}

// Fail closed instead of falling back to stable: a lane without an
// instance of the service gets an error naming the tag and the policy.
func ExampleWithFallback() {
	// lanes, err := rpc.New(rpc.WithFallback(rpc.FallbackFail))
	// grpc.NewClient(target, lanes.DialOptions(creds, ...)...)
	// A call the policy fails ends with codes.Unavailable.
	fmt.Println(rpc.ServiceConfig(rpc.WithFallback(rpc.FallbackFail)))
	// Output:
	// {"loadBalancingConfig":[{"taglane_lanes":{"fallback":"fail"}}]}
}
