package rpc_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
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
	// As a real server's handler context: the metadata is the one the
	// transport stream received, so keys absent in lower case are absent.
	fromWire := grpc.NewContextWithServerTransportStream(inUntagged, benchStream{inUntagged})

	cases := []struct {
		name string
		run  func()
	}{
		{name: "client/untagged", run: func() { client(context.Background(), "/m", nil, nil, nil, invoker) }},
		{name: "client/tagged", run: func() { client(outTagged, "/m", nil, nil, nil, invoker) }},
		{name: "server/untagged", run: func() { server(inUntagged, nil, info, handler) }},
		{name: "server/untagged/transport-metadata", run: func() { server(fromWire, nil, info, handler) }},
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

// benchStream stands in for grpc's server transport stream, whose context
// holds the metadata the transport received.
type benchStream struct{ ctx context.Context }

func (s benchStream) Context() context.Context   { return s.ctx }
func (benchStream) Method() string               { return "/grpc.testing.TestService/EmptyCall" }
func (benchStream) SetHeader(metadata.MD) error  { return nil }
func (benchStream) SendHeader(metadata.MD) error { return nil }
func (benchStream) SetTrailer(metadata.MD) error { return nil }

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

// BenchmarkHostileMetadata is 1 MiB of baggage carrying the member, sent
// by a plain client (a hostile caller has no taglane), to a plain server
// and to taglane servers under each trust policy: "interceptor" is the
// server interceptor's own work in process, "call" a real call over
// loopback. The interceptor must cost a length check and a constant
// number of allocations, whatever the size.
func BenchmarkHostileMetadata(b *testing.B) {
	bag := strings.Repeat("k=v,", 1<<18) + "x-tag=evil"
	modes := []struct {
		name  string
		trust tagctx.Trust
	}{
		{"TrustAll", tagctx.TrustAll()},
		{"TrustNone", tagctx.TrustNone()},
		{"TrustTags", tagctx.TrustTags(tagctx.MustParse("feature-x"))},
		{"TrustNetworks", tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))},
	}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/grpc.testing.TestService/EmptyCall"}
	in := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs("user-agent", "grpc-go", "content-type", "application/grpc", "baggage", bag))
	b.Run("interceptor/noop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = noopServer(in, nil, info, handler)
		}
	})
	for _, m := range modes {
		b.Run("interceptor/"+m.name, func(b *testing.B) {
			icpt := rpc.UnaryServerInterceptor(rpc.WithTrust(m.trust), rpc.WithNode(tagctx.Tag{}))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = icpt(in, nil, info, handler)
			}
		})
	}
	out := metadata.AppendToOutgoingContext(context.Background(), "baggage", bag)
	call := func(b *testing.B, sopts []grpc.ServerOption) {
		client := benchClient(b, sopts, nil)
		req := &testpb.Empty{}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.EmptyCall(out, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("call/no-taglane", func(b *testing.B) { call(b, nil) })
	for _, m := range modes {
		b.Run("call/"+m.name, func(b *testing.B) {
			call(b, rpc.ServerOptions(rpc.WithTrust(m.trust), rpc.WithNode(tagctx.Tag{})))
		})
	}
}
