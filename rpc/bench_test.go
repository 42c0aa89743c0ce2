package rpc_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

type emptyService struct {
	testpb.UnimplementedTestServiceServer
}

func (emptyService) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func benchClient(b *testing.B, sopts []grpc.ServerOption, dopts []grpc.DialOption) testpb.TestServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(sopts...)
	testpb.RegisterTestServiceServer(srv, emptyService{})
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	dopts = append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), dopts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func noopServer(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(ctx, req)
}

func noopClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(ctx, method, req, reply, cc, opts...)
}

// BenchmarkUnary is one unary call over loopback TCP: plain gRPC, with the
// taglane interceptors and balancer (untagged and tagged traffic on a
// stable node), and otelgrpc's stats handlers propagating the same tag as
// W3C baggage, the anchor doing the same job.
func BenchmarkUnary(b *testing.B) {
	tagged := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	member, _ := baggage.NewMember("x-tag", "feature-x")
	bag, _ := baggage.New(member)
	otelCtx := baggage.ContextWithBaggage(context.Background(), bag)
	prop := otelgrpc.WithPropagators(propagation.Baggage{})

	cases := []struct {
		name  string
		ctx   context.Context
		sopts []grpc.ServerOption
		dopts []grpc.DialOption
	}{
		{name: "plain", ctx: context.Background()},
		// What any interceptor costs in gRPC itself (the server's
		// UnaryServerInfo, the client's call path), so the taglane lines
		// can be read against it.
		{name: "noop-interceptors", ctx: context.Background(),
			sopts: []grpc.ServerOption{grpc.ChainUnaryInterceptor(noopServer)},
			dopts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(noopClient)}},
		// Plain gRPC sending the same two entries a tagged call sends: the
		// wire's share of the tagged line.
		{name: "plain/tag-metadata", ctx: metadata.AppendToOutgoingContext(context.Background(),
			"x-tag", "feature-x", "baggage", "x-tag=feature-x")},
		{name: "taglane/untagged", ctx: context.Background(), sopts: rpc.ServerOptions(), dopts: rpc.DialOptions()},
		{name: "taglane/tagged", ctx: tagged, sopts: rpc.ServerOptions(), dopts: rpc.DialOptions()},
		{name: "otelgrpc/baggage", ctx: otelCtx,
			sopts: []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(prop))},
			dopts: []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(prop))}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := benchClient(b, c.sopts, c.dopts)
			req := &testpb.Empty{}
			if _, err := client.EmptyCall(c.ctx, req); err != nil { // connect
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.EmptyCall(c.ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInterceptors is the interceptors' own work per call, without
// the network whose noise hides it in BenchmarkUnary.
func BenchmarkInterceptors(b *testing.B) {
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	handler := func(context.Context, any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	wire := metadata.Pairs("user-agent", "grpc-go", "content-type", "application/grpc", ":authority", "svc")
	tagged := wire.Copy()
	tagged.Set("x-tag", "feature-x")
	tagged.Set("baggage", "x-tag=feature-x")
	client, server := rpc.UnaryClientInterceptor(), rpc.UnaryServerInterceptor()
	outTagged := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	inUntagged := metadata.NewIncomingContext(context.Background(), wire)
	inTagged := metadata.NewIncomingContext(context.Background(), tagged)

	cases := []struct {
		name string
		run  func()
	}{
		{name: "client/untagged", run: func() { client(context.Background(), "/m", nil, nil, nil, invoker) }},
		{name: "client/tagged", run: func() { client(outTagged, "/m", nil, nil, nil, invoker) }},
		{name: "server/untagged", run: func() { server(inUntagged, nil, info, handler) }},
		{name: "server/tagged", run: func() { server(inTagged, nil, info, handler) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.run()
			}
		})
	}
}

// BenchmarkUnaryPaired measures taglane's share of a loopback unary call as
// a ratio, alternating short blocks of calls between plain gRPC and taglane
// within each round, so the machine's drift, which makes consecutive
// sub-benchmarks of BenchmarkUnary differ by several percent, hits both
// sides alike. untagged-overhead-% compares untagged taglane calls with
// plain ones; tagged-overhead-% compares tagged calls with plain gRPC
// sending the same two metadata entries. Each is the median of the rounds'
// ratios.
func BenchmarkUnaryPaired(b *testing.B) {
	const block = 64 // calls per side per round
	plainMD := metadata.AppendToOutgoingContext(context.Background(), "x-tag", "feature-x", "baggage", "x-tag=feature-x")
	tagged := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	plain := benchClient(b, nil, nil)
	lanes := benchClient(b, rpc.ServerOptions(), rpc.DialOptions())
	req := &testpb.Empty{}
	run := func(c testpb.TestServiceClient, ctx context.Context) time.Duration {
		start := time.Now()
		for range block {
			if _, err := c.EmptyCall(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	run(plain, context.Background()) // connect and warm up both
	run(lanes, context.Background())

	var untagged, taggedRatios []float64
	round := 0
	for b.Loop() {
		var p, u, pm, t time.Duration
		if round%2 == 0 { // alternate which side goes first
			p, u = run(plain, context.Background()), run(lanes, context.Background())
			pm, t = run(plain, plainMD), run(lanes, tagged)
		} else {
			u, p = run(lanes, context.Background()), run(plain, context.Background())
			t, pm = run(lanes, tagged), run(plain, plainMD)
		}
		untagged = append(untagged, float64(u)/float64(p))
		taggedRatios = append(taggedRatios, float64(t)/float64(pm))
		round++
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	b.ReportMetric((median(untagged)-1)*100, "untagged-overhead-%")
	b.ReportMetric((median(taggedRatios)-1)*100, "tagged-overhead-%")
}
