package rpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// named answers with its name.
type named struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func (s named) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: s.name, Username: tagctx.From(ctx).String()}, nil
}

// serve starts a server named name with the taglane interceptors and
// returns its endpoint and a stop func.
func serve(name string, node tagctx.Tag) (resolver.Endpoint, func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	lanes, err := rpc.New(rpc.WithNode(node))
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(lanes.ServerOptions()...)
	testpb.RegisterTestServiceServer(srv, named{name: name})
	go srv.Serve(lis)
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: lis.Addr().String()}}}
	return rpc.WithEndpointTag(ep, node), srv.Stop
}

// A stable and a feature-x instance of one service behind a resolver; the
// client's calls go to the instance of their lane.
func ExampleLanes_DialOptions() {
	featureX := tagctx.MustParse("feature-x")
	stable, stop1 := serve("stock", tagctx.Tag{})
	defer stop1()
	lane, stop2 := serve("stock-feature-x", featureX)
	defer stop2()

	r := manual.NewBuilderWithScheme("stock")
	r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{stable, lane}})
	lanes, err := rpc.New()
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("stock:///stock", lanes.DialOptions(
		grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	// The lane's connection may still be coming up: the call waits for it
	// rather than fall back (see Routing in the package doc).
	ctx := tagctx.With(context.Background(), featureX)
	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("tagged: served by %s, handler saw %q\n", resp.GetServerId(), resp.GetUsername())
	resp, err = client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("untagged: served by %s, handler saw %q\n", resp.GetServerId(), resp.GetUsername())
	// Output:
	// tagged: served by stock-feature-x, handler saw "feature-x"
	// untagged: served by stock, handler saw ""
}

// A production edge: outside callers must not choose a lane, and every
// route decision is counted.
func ExampleLanes_ServerOptions() {
	countRoutes := func(_ context.Context, o tagctx.Observation) {
		if o.Route == tagctx.RouteMisroute {
			log.Printf("misroute: %s traffic %q on node %q", o.Operation, o.Traffic, o.Node)
		}
	}
	lanes, err := rpc.New(
		rpc.WithTrust(tagctx.TrustNone()),
		rpc.WithObserver(countRoutes),
	)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(lanes.ServerOptions(grpc.MaxRecvMsgSize(1 << 20))...)
	defer srv.Stop()
	// Register services and Serve as usual.
}

func ExampleLanes_ServiceConfig() {
	lanes, err := rpc.New(
		rpc.WithFallback(rpc.FallbackFail),
		rpc.WithParents(tagctx.MustParse("feature-x2"), tagctx.MustParse("feature-x")),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lanes.ServiceConfig())
	// Output:
	// {"loadBalancingConfig":[{"taglane_lanes":{"fallback":"fail","parents":{"feature-x2":["feature-x"]}}}]}
}

func ExampleWithEndpointTag() {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: "10.0.0.7:50051"}}}
	ep = rpc.WithEndpointTag(ep, tagctx.MustParse("feature-x"))
	fmt.Printf("%q\n", rpc.EndpointTag(ep))
	fmt.Printf("%q\n", rpc.EndpointTag(resolver.Endpoint{}))
	// Output:
	// "feature-x"
	// ""
}

func ExampleLanes_UnaryServerInterceptor() {
	lanes, err := rpc.New(rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("127.0.0.0/8"))))
	if err != nil {
		log.Fatal(err)
	}
	icpt := lanes.UnaryServerInterceptor()
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(icpt))
	defer srv.Stop()

	// What a handler behind it sees:
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("baggage", "user=42,x-tag=feature-x"))
	ctx = peerContext(ctx, "127.0.0.1:40000")
	icpt(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/stock.Stock/Check"}, func(ctx context.Context, _ any) (any, error) {
		fmt.Printf("%q\n", tagctx.From(ctx))
		return nil, nil
	})
	// Output:
	// "feature-x"
}

func ExampleLanes_StreamServerInterceptor() {
	lanes, err := rpc.New()
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainStreamInterceptor(lanes.StreamServerInterceptor()))
	defer srv.Stop()
	// Stream handlers read the tag from stream.Context().
}

func ExampleLanes_UnaryClientInterceptor() {
	lanes, err := rpc.New()
	if err != nil {
		log.Fatal(err)
	}
	icpt := lanes.UnaryClientInterceptor()
	// grpc.NewClient(target, grpc.WithChainUnaryInterceptor(icpt), ...)

	// What goes on the wire for a tagged call that already had baggage:
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	ctx = metadata.AppendToOutgoingContext(ctx, "baggage", "user=42")
	icpt(ctx, "/stock.Stock/Check", nil, nil, nil, func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		fmt.Println(md.Get("x-tag"), md.Get("baggage"))
		return nil
	})
	// Output:
	// [feature-x] [user=42,x-tag=feature-x]
}

func ExampleLanes_StreamClientInterceptor() {
	lanes, err := rpc.New()
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("dns:///stock.internal:50051",
		grpc.WithChainStreamInterceptor(lanes.StreamClientInterceptor()),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	// Streams opened with a tagged context carry the tag.
}

// A strict lane instance refuses a call of another lane before the handler
// runs; the refusal carries a detail that the client interceptor, or any
// client, recognises with Misdirected.
func ExampleWithStrict() {
	icpt := rpc.UnaryServerInterceptor(rpc.WithStrict(), rpc.WithNode(tagctx.MustParse("feature-x")),
		rpc.WithObserver(func(context.Context, tagctx.Observation) {}))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-tag", "feature-y"))
	_, err := icpt(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/stock.Stock/Check"}, func(context.Context, any) (any, error) {
		fmt.Println("handler ran")
		return nil, nil
	})
	ei := rpc.Misdirected(err)
	fmt.Println(status.Code(err), ei.GetReason(), ei.GetMetadata()["traffic"], ei.GetMetadata()["node"])
	// Output:
	// Unavailable MISDIRECTED feature-y feature-x
}

// New validates every option; a bad one is an error that names it, never
// a panic.
func ExampleNew() {
	_, err := rpc.New(rpc.WithMetadataKey("grpc-tag"))
	fmt.Println(err)
	lanes, err := rpc.New(rpc.WithNode(tagctx.MustParse("feature-x")), rpc.WithStrict())
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(lanes.ServerOptions()...)
	defer srv.Stop()
	// Output:
	// rpc: WithMetadataKey("grpc-tag"): reserved, binary or baggage
}

// The must-style helpers suit options that are constants of the program:
// they panic, like regexp.MustCompile, where New returns the error.
func ExampleServiceConfig() {
	fmt.Println(rpc.ServiceConfig(rpc.WithFallback(rpc.FallbackFail)))
	// Output:
	// {"loadBalancingConfig":[{"taglane_lanes":{"fallback":"fail"}}]}
}
