package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

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

// service answers EmptyCall and echoes FullDuplexCall, handing each
// call's context to seen when it is set (TestSameJobGRPC), so the
// benchmarks' handlers do no work of their own.
type service struct {
	testpb.UnimplementedTestServiceServer
	seen func(context.Context)
}

func (s *service) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if s.seen != nil {
		s.seen(ctx)
	}
	return &testpb.Empty{}, nil
}

func (s *service) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	if s.seen != nil {
		s.seen(stream.Context())
	}
	resp := &testpb.StreamingOutputCallResponse{}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// grpcCase is one contestant: how its server and client are built and the
// context its calls are made with.
type grpcCase struct {
	name  string
	vs    int // index of the case it is compared with, -1 for none
	ctx   context.Context
	sopts []grpc.ServerOption
	dopts []grpc.DialOption
}

// grpcCases are plain gRPC, plain gRPC sending the two metadata entries a
// tagged taglane call sends (the wire's share of the tagged line),
// taglane's interceptors and balancer with untagged and tagged traffic on
// a stable node, otelgrpc's stats handlers propagating the same tag as
// W3C baggage, the anchor doing the same job, and interceptors that do
// nothing, gRPC's own price for any interceptor.
func grpcCases(tb testing.TB) []grpcCase {
	prop := otelgrpc.WithPropagators(propagation.Baggage{})
	lanes, err := rpc.New()
	if err != nil {
		tb.Fatal(err)
	}
	return []grpcCase{
		{name: "plain", vs: -1, ctx: context.Background()},
		{name: "plain-tag-metadata", vs: 0, ctx: metadata.AppendToOutgoingContext(context.Background(),
			"x-tag", "feature-x", "baggage", "x-tag=feature-x")},
		{name: "taglane-untagged", vs: 0, ctx: context.Background(),
			sopts: lanes.ServerOptions(), dopts: lanes.DialOptions()},
		{name: "taglane-tagged", vs: 1, ctx: tagctx.With(context.Background(), tagctx.MustParse("feature-x")),
			sopts: lanes.ServerOptions(), dopts: lanes.DialOptions()},
		{name: "otelgrpc-baggage", vs: 1, ctx: otelTagged(tb),
			sopts: []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(prop))},
			dopts: []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(prop))}},
		// Interceptors that only pass the call on: what gRPC itself
		// charges for any interceptor (its chain, the server's
		// UnaryServerInfo, one more frame on the handler goroutine's
		// stack), so taglane's own share of the untagged line can be read
		// off against it.
		{name: "noop-interceptors", vs: 0, ctx: context.Background(),
			sopts: []grpc.ServerOption{grpc.ChainUnaryInterceptor(noopUnaryServer), grpc.ChainStreamInterceptor(noopStreamServer)},
			dopts: []grpc.DialOption{grpc.WithChainUnaryInterceptor(noopUnaryClient), grpc.WithChainStreamInterceptor(noopStreamClient)}},
	}
}

func noopUnaryServer(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(ctx, req)
}

func noopStreamServer(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, ss)
}

func noopUnaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(ctx, method, req, reply, cc, opts...)
}

func noopStreamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(ctx, desc, cc, method, opts...)
}

// dial starts a server for c on loopback and returns a connected client.
func dial(tb testing.TB, c grpcCase, svc *service) testpb.TestServiceClient {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer(c.sopts...)
	testpb.RegisterTestServiceServer(srv, svc)
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	tb.Cleanup(func() {
		srv.Stop()
		<-served
	})
	dopts := append(c.dopts[:len(c.dopts):len(c.dopts)], grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), dopts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func unary(tb testing.TB, client testpb.TestServiceClient, ctx context.Context) {
	if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
		tb.Fatal(err)
	}
}

// duplex opens a bidirectional stream, exchanges one message and closes
// it: a stream's whole life, where the stream interceptors run once.
func duplex(tb testing.TB, client testpb.TestServiceClient, ctx context.Context) {
	s, err := client.FullDuplexCall(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Send(&testpb.StreamingOutputCallRequest{}); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		tb.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		tb.Fatalf("stream ended with %v, want io.EOF", err)
	}
}

// grpcPairs says which case taglane's is set beside: untagged taglane
// beside plain gRPC, tagged taglane beside plain gRPC sending the same
// metadata and beside otelgrpc propagating baggage.
var grpcPairs = []struct{ peer, taglane string }{
	{"plain", "taglane-untagged"},
	{"plain-tag-metadata", "taglane-tagged"},
	{"otelgrpc-baggage", "taglane-tagged"},
	{"noop-interceptors", "taglane-untagged"},
}

var grpcKinds = []struct {
	name string
	call func(testing.TB, testpb.TestServiceClient, context.Context)
}{{"unary", unary}, {"stream", duplex}}

// BenchmarkGRPC is one call over loopback TCP per op, each contestant on
// its own server and connection, run one after the other: benchstat over
// several counts tells a difference from noise only when it is larger
// than the drift between runs; BenchmarkGRPCPaired measures the small
// ones.
func BenchmarkGRPC(b *testing.B) {
	cases := map[string]grpcCase{}
	for _, c := range grpcCases(b) {
		cases[c.name] = c
	}
	run := func(c grpcCase, call func(testing.TB, testpb.TestServiceClient, context.Context)) func(*testing.B) {
		return func(b *testing.B) {
			client := dial(b, c, &service{})
			call(b, client, c.ctx) // connect
			b.ReportAllocs()
			for b.Loop() {
				call(b, client, c.ctx)
			}
		}
	}
	for _, kind := range grpcKinds {
		b.Run("kind="+kind.name, func(b *testing.B) {
			for _, p := range grpcPairs {
				vs(b, p.peer, run(cases[p.peer], kind.call), run(cases[p.taglane], kind.call))
			}
		})
	}
}

// BenchmarkGRPCPaired runs BenchmarkGRPC's contestants in alternating
// blocks of 64 calls (see paired): untagged taglane against plain, tagged
// taglane and otelgrpc against plain gRPC sending the same metadata.
func BenchmarkGRPCPaired(b *testing.B) {
	const block = 64
	for _, kind := range grpcKinds {
		b.Run("kind="+kind.name, func(b *testing.B) {
			var sides []side
			for _, c := range grpcCases(b) {
				client := dial(b, c, &service{})
				sides = append(sides, side{c.name, c.vs, func() {
					for range block {
						kind.call(b, client, c.ctx)
					}
				}})
			}
			b.ReportAllocs()
			paired(b, block, sides)
		})
	}
}

// TestSameJobGRPC checks that every tagged contestant of BenchmarkGRPC
// delivers feature-x to the handler, each in its own form, on unary calls
// and streams.
func TestSameJobGRPC(t *testing.T) {
	tagOf := map[string]func(context.Context) string{
		"plain-tag-metadata": func(ctx context.Context) string {
			md, _ := metadata.FromIncomingContext(ctx)
			return firstOf(md.Get("x-tag"))
		},
		"taglane-tagged":   func(ctx context.Context) string { return tagctx.From(ctx).String() },
		"otelgrpc-baggage": func(ctx context.Context) string { return baggage.FromContext(ctx).Member("x-tag").Value() },
	}
	for _, c := range grpcCases(t) {
		read, ok := tagOf[c.name]
		if !ok {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			seen := make(chan string, 2)
			client := dial(t, c, &service{seen: func(ctx context.Context) { seen <- read(ctx) }})
			unary(t, client, c.ctx)
			duplex(t, client, c.ctx)
			for _, call := range []string{"unary", "stream"} {
				if got := <-seen; got != "feature-x" {
					t.Errorf("%s handler saw tag %q, want feature-x", call, got)
				}
			}
		})
	}
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
