package rpc_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// topology is 3 stable instances and lanes a and b of one service.
type topology struct {
	s1, s2, s3, a, b *instance
}

func (tp topology) all() []*instance { return []*instance{tp.s1, tp.s2, tp.s3, tp.a, tp.b} }

func (tp topology) stable() []*instance { return []*instance{tp.s1, tp.s2, tp.s3} }

func startTopology(t *testing.T, opts ...rpc.Option) topology {
	return topology{
		s1: startInstance(t, "s1", tagctx.Tag{}, nil, opts...),
		s2: startInstance(t, "s2", tagctx.Tag{}, nil, opts...),
		s3: startInstance(t, "s3", tagctx.Tag{}, nil, opts...),
		a:  startInstance(t, "a1", tagctx.MustParse("a"), nil, opts...),
		b:  startInstance(t, "b1", tagctx.MustParse("b"), nil, opts...),
	}
}

func names(ins ...*instance) map[string]bool {
	m := make(map[string]bool)
	for _, in := range ins {
		m[in.name] = true
	}
	return m
}

// waitServed polls until calls tagged tag have been answered by every one
// of ins: the lane balancer falls back while a lane's connection is not
// READY yet, so a test first waits for the topology it asserts on.
func waitServed(t *testing.T, ctx context.Context, c testpb.TestServiceClient, tag string, ins ...*instance) {
	t.Helper()
	want := names(ins...)
	eventually(t, fmt.Sprintf("tag %q served by %v", tag, want), func() error {
		srv, _, err := unary(ctx, c, tag)
		if err != nil {
			return err
		}
		delete(want, srv)
		if len(want) > 0 {
			return fmt.Errorf("not yet served by %v", want)
		}
		return nil
	})
}

type outcome struct {
	Allowed bool   // served by an instance the tag may reach
	Seen    string // tag in the handler's context
}

// assertRoutes makes n unary and n streaming calls tagged tag and fails on
// any call served outside allowed or seeing another tag.
func assertRoutes(t *testing.T, ctx context.Context, c testpb.TestServiceClient, tag string, n int, allowed ...*instance) {
	t.Helper()
	ok := names(allowed...)
	want := outcome{Allowed: true, Seen: tag}
	for i := range n {
		srv, seen, err := unary(ctx, c, tag)
		if err != nil {
			t.Fatalf("unary %d tagged %q: %v", i, tag, err)
		}
		if diff := cmp.Diff(outcome{ok[srv], seen}, want); diff != "" {
			t.Errorf("unary %d tagged %q served by %s (-got +want):\n%s", i, tag, srv, diff)
		}
		msgs, err := stream(ctx, c, tag, 2)
		if err != nil {
			t.Fatalf("stream %d tagged %q: %v", i, tag, err)
		}
		if len(msgs) != 2 {
			t.Fatalf("stream %d tagged %q: got %d messages, want 2", i, tag, len(msgs))
		}
		for _, m := range msgs {
			srv, seen, _ := strings.Cut(m, "/")
			if diff := cmp.Diff(outcome{ok[srv], seen}, want); diff != "" {
				t.Errorf("stream %d tagged %q served by %s (-got +want):\n%s", i, tag, srv, diff)
			}
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLanesRouting(t *testing.T) {
	ctx := testCtx(t)
	tp := startTopology(t)
	c, _ := dial(t, nil, tp.all()...)
	// A new channel: the lanes' first calls wait for their connections
	// rather than fall back.
	assertRoutes(t, ctx, c, "a", 1, tp.a)
	assertRoutes(t, ctx, c, "b", 1, tp.b)
	waitServed(t, ctx, c, "", tp.stable()...)

	tests := []struct {
		name    string
		tag     string
		allowed []*instance
	}{
		{name: "lane a", tag: "a", allowed: []*instance{tp.a}},
		{name: "lane b", tag: "b", allowed: []*instance{tp.b}},
		{name: "no lane c falls back to stable", tag: "c", allowed: tp.stable()},
		{name: "untagged reaches stable only", tag: "", allowed: tp.stable()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertRoutes(t, ctx, c, tt.tag, 20, tt.allowed...)
		})
	}

	// The route proof of every hop: nothing but matched and fallback.
	for _, in := range tp.all() {
		if n := in.routes()[tagctx.RouteMisroute]; n != 0 {
			t.Errorf("%s recorded %d misroutes", in.name, n)
		}
	}
	if got := tp.s1.routes()[tagctx.RouteFallback] + tp.s2.routes()[tagctx.RouteFallback] + tp.s3.routes()[tagctx.RouteFallback]; got < 20 {
		t.Errorf("stable instances recorded %d fallbacks, want at least the 20 calls tagged c", got)
	}
}

func TestLaneInstanceGone(t *testing.T) {
	t.Run("fallback stable", func(t *testing.T) {
		ctx := testCtx(t)
		tp := startTopology(t)
		c, _ := dial(t, nil, tp.all()...)
		waitServed(t, ctx, c, "a", tp.a)
		waitServed(t, ctx, c, "b", tp.b)
		waitServed(t, ctx, c, "", tp.stable()...)
		conns := connCounts(tp.stable()...)

		tp.a.srv.Stop()
		// Calls already on their way to a1 may fail while its connection
		// closes; the first answer must come from stable, and quickly.
		start := time.Now()
		waitServed(t, ctx, c, "a", tp.s1, tp.s2, tp.s3)
		t.Logf("lane a gone: tagged a served by stable after %v", time.Since(start))
		assertRoutes(t, ctx, c, "a", 20, tp.stable()...)
		assertRoutes(t, ctx, c, "b", 5, tp.b)
		if diff := cmp.Diff(connCounts(tp.stable()...), conns); diff != "" {
			t.Errorf("stable instances reconnected when lane a went away (-got +want):\n%s", diff)
		}
	})
	t.Run("fallback fail", func(t *testing.T) {
		ctx := testCtx(t)
		tp := startTopology(t)
		c, _ := dial(t, []rpc.Option{rpc.WithFallback(rpc.FallbackFail)}, tp.all()...)
		waitServed(t, ctx, c, "a", tp.a)
		waitServed(t, ctx, c, "", tp.stable()...)

		// A lane with no instance at all fails at once, naming tag and policy.
		_, _, err := unary(ctx, c, "c")
		wantErr(t, err, codes.Unavailable, `tag "c"`, `fallback policy "fail"`)

		tp.a.srv.Stop()
		eventually(t, "tagged a fails closed", func() error {
			_, _, err := unary(ctx, c, "a")
			if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), `fallback policy "fail"`) {
				return fmt.Errorf("got %v", err)
			}
			return nil
		})
		_, _, err = unary(ctx, c, "a")
		wantErr(t, err, codes.Unavailable, `tag "a"`, `fallback policy "fail"`, `lane "a"`)
		assertRoutes(t, ctx, c, "", 5, tp.stable()...)
	})
}

func wantErr(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	s := status.Convert(err)
	if s.Code() != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	for _, p := range parts {
		if !strings.Contains(s.Message(), p) {
			t.Errorf("error %q does not say %s", s.Message(), p)
		}
	}
}

func connCounts(ins ...*instance) map[string]int32 {
	m := make(map[string]int32)
	for _, in := range ins {
		m[in.name] = in.conns.Load()
	}
	return m
}

func TestLaneChain(t *testing.T) {
	ctx := testCtx(t)
	a, a2 := tagctx.MustParse("a"), tagctx.MustParse("a2")
	chain := rpc.WithParents(a2, a)
	tp := startTopology(t, chain)
	c, r := dial(t, []rpc.Option{chain}, tp.all()...)
	waitServed(t, ctx, c, "a", tp.a)
	waitServed(t, ctx, c, "", tp.stable()...)

	// a2 has no instance: its parent a serves it, proven a fallback.
	assertRoutes(t, ctx, c, "a2", 10, tp.a)
	if diff := cmp.Diff(tp.a.routes(), map[tagctx.Route]int{tagctx.RouteMatched: tp.a.routes()[tagctx.RouteMatched], tagctx.RouteFallback: 20}); diff != "" {
		t.Errorf("route proof of lane a (-got +want):\n%s", diff)
	}

	// An a2 instance appears: a2 traffic moves to it.
	a2i := startInstance(t, "a2-1", a2, nil, chain)
	r.UpdateState(state(append(tp.all(), a2i)...))
	assertRoutes(t, ctx, c, "a2", 10, a2i)

	// a2 and a both gone: stable.
	a2i.srv.Stop()
	tp.a.srv.Stop()
	waitServed(t, ctx, c, "a2", tp.stable()...)
	assertRoutes(t, ctx, c, "a2", 10, tp.stable()...)
}

func TestLaneAddedAtRuntime(t *testing.T) {
	ctx := testCtx(t)
	tp := startTopology(t)
	d := startInstance(t, "d1", tagctx.MustParse("d"), nil)
	c, r := dial(t, nil, tp.all()...)
	waitServed(t, ctx, c, "a", tp.a)
	waitServed(t, ctx, c, "b", tp.b)
	waitServed(t, ctx, c, "", tp.stable()...)
	assertRoutes(t, ctx, c, "d", 5, tp.stable()...)
	before := connCounts(tp.all()...)

	// Lane d appears and lane b leaves in one resolver update. d's very
	// first call waits for d's connection instead of falling back.
	r.UpdateState(state(tp.s1, tp.s2, tp.s3, tp.a, d))
	assertRoutes(t, ctx, c, "d", 20, d)
	assertRoutes(t, ctx, c, "b", 10, tp.stable()...)
	assertRoutes(t, ctx, c, "a", 10, tp.a)

	// endpointsharding keeps each endpoint's own connection: nothing that
	// stayed in the resolver's list was reconnected.
	delete(before, "b1")
	if diff := cmp.Diff(connCounts(tp.s1, tp.s2, tp.s3, tp.a), before); diff != "" {
		t.Errorf("unaffected instances reconnected (-got +want):\n%s", diff)
	}
}

// TestServiceConfigSelectsBalancer wires the balancer by hand, with the
// service config a user would write, instead of DialOptions.
func TestServiceConfigSelectsBalancer(t *testing.T) {
	ctx := testCtx(t)
	s1 := startInstance(t, "s1", tagctx.Tag{}, nil)
	a1 := startInstance(t, "a1", tagctx.MustParse("a"), nil)
	r := manual.NewBuilderWithScheme("bycfg")
	r.InitialState(state(s1, a1))
	cc, err := grpc.NewClient(r.Scheme()+":///svc",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(rpc.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(rpc.StreamClientInterceptor()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"taglane_lanes":{"fallback":"stable"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	waitServed(t, ctx, c, "a", a1)
	assertRoutes(t, ctx, c, "a", 10, a1)
	assertRoutes(t, ctx, c, "", 10, s1)
}

func TestDialOptionsConfig(t *testing.T) {
	a, a2 := tagctx.MustParse("a"), tagctx.MustParse("a2")
	tests := []struct {
		name    string
		opts    []rpc.Option
		wantErr string
	}{
		{name: "defaults"},
		{name: "fail with chain", opts: []rpc.Option{rpc.WithFallback(rpc.FallbackFail), rpc.WithParents(a2, a)}},
		{name: "unknown policy", opts: []rpc.Option{rpc.WithFallback("closest")}, wantErr: `WithFallback("closest")`},
		{name: "stable in a chain", opts: []rpc.Option{rpc.WithParents(a2, tagctx.Tag{})}, wantErr: `stable ends every chain`},
		{name: "self in a chain", opts: []rpc.Option{rpc.WithParents(a, a)}, wantErr: `"a" repeats`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bad config is New's error now, before any client exists;
			// a good one must still be accepted by the balancer's parser.
			lanes, err := rpc.New(tt.opts...)
			if err == nil {
				var cc *grpc.ClientConn
				cc, err = grpc.NewClient("passthrough:///127.0.0.1:1", lanes.DialOptions(
					grpc.WithTransportCredentials(insecure.NewCredentials()))...)
				if err == nil {
					cc.Close()
				}
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tt.wantErr == "") != (err == nil) || !strings.Contains(got, tt.wantErr) {
				t.Errorf("NewClient error %q, want one containing %q", got, tt.wantErr)
			}
		})
	}
}

// startSilent listens and accepts TCP connections but never speaks HTTP/2,
// so a gRPC client trying it stays CONNECTING until its handshake times out.
func startSilent(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { lis.Close(); <-done })
	return lis.Addr().String()
}

// TestNeverBlocks: a lane instance stuck on its first connection attempt
// holds its lane's calls no longer than that attempt (bounded by the
// connect timeout), and from then on they fall back at once; a call
// nothing can serve fails at once, even wait-for-ready.
func TestNeverBlocks(t *testing.T) {
	ctx := testCtx(t)
	s1 := startInstance(t, "s1", tagctx.Tag{}, nil)
	stuck := &instance{name: "a-stuck", node: tagctx.MustParse("a"), addr: startSilent(t)}
	b1 := startInstance(t, "b1", tagctx.MustParse("b"), nil)
	const connectTimeout = time.Second
	c, _ := dialWith(t, nil, []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.DefaultConfig,
		MinConnectTimeout: connectTimeout,
	})}, s1, stuck, b1)
	waitServed(t, ctx, c, "b", b1)
	waitServed(t, ctx, c, "", s1)

	// The first call waits for lane a's instance, which is coming up,
	// until its attempt fails; then stable serves it.
	callCtx, cancel := context.WithTimeout(ctx, 10*connectTimeout)
	srv, _, err := unary(callCtx, c, "a")
	cancel()
	if err != nil || srv != "s1" {
		t.Fatalf("first call tagged a: served by %q, error %v; want s1", srv, err)
	}
	// The instance has failed: no call waits for it any more, not even
	// while it retries (each retry would again take connectTimeout).
	for i := range 10 {
		callCtx, cancel := context.WithTimeout(ctx, connectTimeout/2)
		srv, _, err := unary(callCtx, c, "a")
		cancel()
		if err != nil || srv != "s1" {
			t.Fatalf("call %d tagged a: served by %q, error %v; want s1 at once", i, srv, err)
		}
	}

	// Only lane b is left: an untagged call has nothing to serve it and
	// fails at once with a reason, wait-for-ready or not.
	onlyB, _ := dial(t, nil, b1)
	waitServed(t, ctx, onlyB, "b", b1)
	callCtx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = onlyB.UnaryCall(tagctx.WithUntagged(callCtx), &testpb.SimpleRequest{}, grpc.WaitForReady(true))
	wantErr(t, err, codes.Unavailable, "no ready stable endpoint for an untagged call: no endpoint")
}

// TestChurnNeverMisroutes keeps calls of every kind in flight while lane
// instances come and go through the resolver: calls may fail while an
// endpoint is removed under them, but none may reach another lane.
func TestChurnNeverMisroutes(t *testing.T) {
	ctx := testCtx(t)
	tp := startTopology(t)
	c, r := dial(t, nil, tp.all()...)
	waitServed(t, ctx, c, "", tp.stable()...)

	allowed := map[string]map[string]bool{
		"a": names(tp.a, tp.s1, tp.s2, tp.s3),
		"b": names(tp.b, tp.s1, tp.s2, tp.s3),
		"c": names(tp.stable()...),
		"":  names(tp.stable()...),
	}
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var served [4]int
	for i, tag := range []string{"a", "b", "c", ""} {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				srv, seen, err := unary(ctx, c, tag)
				if err != nil {
					if status.Code(err) == codes.Unavailable {
						continue // an endpoint removed under the call
					}
					errs <- err
					return
				}
				if !allowed[tag][srv] || seen != tag {
					errs <- fmt.Errorf("tag %q served by %s seeing %q", tag, srv, seen)
					return
				}
				served[i]++
			}
		}()
	}
	topologies := [][]*instance{
		tp.stable(),
		{tp.s1, tp.s2, tp.s3, tp.a},
		{tp.s1, tp.a, tp.b},
		tp.all(),
		{tp.s2, tp.b},
		{tp.s3, tp.s1, tp.b, tp.a},
	}
	for i := range 60 {
		r.UpdateState(state(topologies[i%len(topologies)]...))
		// Let calls run against each topology: wait for a few answers.
		if _, _, err := unary(ctx, c, ""); err != nil && status.Code(err) != codes.Unavailable {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("calls served per tag a, b, c, untagged: %v", served)
}
