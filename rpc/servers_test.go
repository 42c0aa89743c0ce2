package rpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// instance is one real gRPC server on 127.0.0.1:0 that answers with its
// name, so a test can assert which instance served a call.
type instance struct {
	name  string
	node  tagctx.Tag
	addr  string
	srv   *grpc.Server
	conns atomic.Int32 // connections accepted, to prove nobody reconnected

	mu     sync.Mutex
	proofs []tagctx.Observation
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startInstance starts a TestService server with the taglane server
// interceptors. next, if set, serves UnaryCall instead of the default
// echo of the instance name.
func startInstance(t testing.TB, name string, node tagctx.Tag, next func(ctx context.Context, in *instance) (string, error), opts ...rpc.Option) *instance {
	t.Helper()
	return startInstanceAt(t, "127.0.0.1:0", name, node, next, opts...)
}

// startInstanceAt is startInstance listening on addr, so a test can put a
// new instance where a stopped one was.
func startInstanceAt(t testing.TB, addr, name string, node tagctx.Tag, next func(ctx context.Context, in *instance) (string, error), opts ...rpc.Option) *instance {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{name: name, node: node, addr: lis.Addr().String()}
	opts = append([]rpc.Option{
		rpc.WithNode(node),
		rpc.WithObserver(func(_ context.Context, o tagctx.Observation) {
			in.mu.Lock()
			in.proofs = append(in.proofs, o)
			in.mu.Unlock()
		}),
	}, opts...)
	in.srv = grpc.NewServer(rpc.ServerOptions(opts...)...)
	testpb.RegisterTestServiceServer(in.srv, &testService{in: in, next: next})
	go in.srv.Serve(countingListener{Listener: lis, n: &in.conns})
	t.Cleanup(in.srv.Stop)
	return in
}

func (in *instance) endpoint() resolver.Endpoint {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: in.addr}}}
	if !in.node.IsZero() {
		ep = rpc.WithEndpointTag(ep, in.node)
	}
	return ep
}

func (in *instance) routes() map[tagctx.Route]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	m := make(map[tagctx.Route]int)
	for _, o := range in.proofs {
		m[o.Route]++
	}
	return m
}

type testService struct {
	testpb.UnimplementedTestServiceServer
	in   *instance
	next func(ctx context.Context, in *instance) (string, error)
}

// UnaryCall answers ServerId = instance name, Username = the traffic tag
// the handler's context carries.
func (s *testService) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	id := s.in.name
	if s.next != nil {
		var err error
		if id, err = s.next(ctx, s.in); err != nil {
			return nil, err
		}
	}
	return &testpb.SimpleResponse{ServerId: id, Username: tagctx.From(ctx).String()}, nil
}

// StreamingOutputCall sends one message per response parameter, each with
// the instance name and the tag of ServerStream.Context().
func (s *testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	body := []byte(s.in.name + "/" + tagctx.From(stream.Context()).String())
	for range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

// dial returns a client of the instances, through a manual resolver and
// the taglane dial options.
func dial(t testing.TB, opts []rpc.Option, ins ...*instance) (testpb.TestServiceClient, *manual.Resolver) {
	t.Helper()
	return dialWith(t, opts, nil, ins...)
}

// dialWith is dial with more dial options.
func dialWith(t testing.TB, opts []rpc.Option, more []grpc.DialOption, ins ...*instance) (testpb.TestServiceClient, *manual.Resolver) {
	t.Helper()
	r := manual.NewBuilderWithScheme("lanes")
	r.InitialState(state(ins...))
	dopts := append(rpc.DialOptions(opts...),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r))
	dopts = append(dopts, more...)
	cc, err := grpc.NewClient(r.Scheme()+":///svc", dopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc), r
}

func state(ins ...*instance) resolver.State {
	var s resolver.State
	for _, in := range ins {
		s.Endpoints = append(s.Endpoints, in.endpoint())
	}
	return s
}

func tagged(ctx context.Context, tag string) context.Context {
	if tag == "" {
		return tagctx.WithUntagged(ctx)
	}
	return tagctx.With(ctx, tagctx.MustParse(tag))
}

// unary makes one call with tag and returns who served it and the tag the
// handler saw.
func unary(ctx context.Context, c testpb.TestServiceClient, tag string) (server, seen string, err error) {
	resp, err := c.UnaryCall(tagged(ctx, tag), &testpb.SimpleRequest{})
	if err != nil {
		return "", "", err
	}
	return resp.GetServerId(), resp.GetUsername(), nil
}

// stream makes one streaming call with tag and returns "server/tag" of
// each message.
func stream(ctx context.Context, c testpb.TestServiceClient, tag string, n int) ([]string, error) {
	req := &testpb.StreamingOutputCallRequest{}
	for range n {
		req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{})
	}
	st, err := c.StreamingOutputCall(tagged(ctx, tag), req)
	if err != nil {
		return nil, err
	}
	var got []string
	for {
		m, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
		got = append(got, string(m.GetPayload().GetBody()))
	}
}

// eventually polls f until it returns nil or the deadline passes: waiting
// on connections without sleeping for a guessed time.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: still failing after 10s: %v", what, err)
		case <-tick.C:
		}
	}
}

func peerContext(ctx context.Context, addr string) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))})
}
