package discovery_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// TestRegistryRouting drives gRPC and HTTP clients from one in-memory
// registry through the life of a lane: register, tagged calls reach it;
// deregister, they fall back at once; a lane definition set in the
// registry is followed by the next calls, over the clients' own.
func TestRegistryRouting(t *testing.T) {
	ctx := testCtx(t)
	reg := discovery.NewMemory()
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	s2 := lanetest.StartNode(t, "s2", tagctx.Tag{})
	a1 := lanetest.StartNode(t, "a1", mustTag("a"))
	register(t, reg, s1)
	register(t, reg, s2)
	closeA := register(t, reg, a1)
	gc := grpcClient(t, reg)
	hc := httpClient(t, reg)

	served(t, ctx, gc, hc, "a", "a1")
	served(t, ctx, gc, hc, "", "s1", "s2")
	served(t, ctx, gc, hc, "b", "s1", "s2")
	served(t, ctx, gc, hc, "a2", "s1", "s2")

	// Lane a2 derives from a: defined in the registry, not in the clients.
	if err := reg.SetLanes(ctx, discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{mustTag("a2"): {mustTag("a")}}}); err != nil {
		t.Fatal(err)
	}
	served(t, ctx, gc, hc, "a2", "a1")

	// Fallback "fail" from the registry: lane b fails with a reason.
	if err := reg.SetLanes(ctx, discovery.Lanes{Fallback: rpc.FallbackFail}); err != nil {
		t.Fatal(err)
	}
	lanetest.Eventually(t, "fallback fail in force", func() error {
		_, _, err := lanetest.CallGRPC(ctx, gc, "b")
		if status.Code(err) != codes.Unavailable {
			return errors.New("lane b still served")
		}
		_, _, err = lanetest.GetHTTP(ctx, hc, httpURL, "b")
		if !errors.Is(err, discovery.ErrNoInstance) {
			return errors.New("lane b still served over HTTP")
		}
		return nil
	})
	if err := reg.SetLanes(ctx, discovery.Lanes{}); err != nil {
		t.Fatal(err)
	}

	// Graceful stop: deregistered, lane a falls back with no failed call.
	closeA()
	served(t, ctx, gc, hc, "a", "s1", "s2")
	a1.Stop()
	for range 20 {
		for _, tag := range []string{"", "a", "b"} {
			if g, _, err := lanetest.CallGRPC(ctx, gc, tag); err != nil || (g != "s1" && g != "s2") {
				t.Fatalf("gRPC tagged %q after a1 left: served by %q, %v", tag, g, err)
			}
			if h, _, err := lanetest.GetHTTP(ctx, hc, httpURL, tag); err != nil || (h != "s1" && h != "s2") {
				t.Fatalf("HTTP tagged %q after a1 left: served by %q, %v", tag, h, err)
			}
		}
	}
}

// TestLocalLanesYield: a client's own WithLanes apply until the registry
// defines the same lane, which wins.
func TestLocalLanesYield(t *testing.T) {
	ctx := testCtx(t)
	reg := discovery.NewMemory()
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	a1 := lanetest.StartNode(t, "a1", mustTag("a"))
	b1 := lanetest.StartNode(t, "b1", mustTag("b"))
	for _, n := range []*lanetest.Node{s1, a1, b1} {
		register(t, reg, n)
	}
	local := discovery.WithLanes(discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{mustTag("c"): {mustTag("a")}}})
	gc := grpcClient(t, reg, local)
	hc := httpClient(t, reg, local)
	served(t, ctx, gc, hc, "c", "a1")
	if err := reg.SetLanes(ctx, discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{mustTag("c"): {mustTag("b")}}}); err != nil {
		t.Fatal(err)
	}
	served(t, ctx, gc, hc, "c", "b1")
}

func TestRegisterInvalid(t *testing.T) {
	reg := discovery.NewMemory()
	ctx := context.Background()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		inst discovery.Instance
		want string
	}{
		{name: "empty service", inst: discovery.Instance{Addr: "127.0.0.1:1"}, want: `discovery: service ""`},
		{name: "slash in service", inst: discovery.Instance{Service: "a/b", Addr: "127.0.0.1:1"}, want: `character '/'`},
		{name: "long service", inst: discovery.Instance{Service: long, Addr: "127.0.0.1:1"}, want: `want 1 to 253 bytes`},
		{name: "no port", inst: discovery.Instance{Service: "s", Addr: "127.0.0.1"}, want: `address "127.0.0.1": want host:port`},
		{name: "no host", inst: discovery.Instance{Service: "s", Addr: ":80"}, want: `want host:port`},
		{name: "long address", inst: discovery.Instance{Service: "s", Addr: long}, want: `longer than 261 bytes`},
		{name: "big metadata", inst: discovery.Instance{Service: "s", Addr: "h:1", Metadata: map[string]string{"k": long + long + long + long}}, want: `metadata "k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reg.Register(ctx, tt.inst)
			if !errors.Is(err, discovery.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register: %v, want ErrInvalid with %q", err, tt.want)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error quotes too much: %d bytes", len(err.Error()))
			}
		})
	}
	r, err := reg.Register(ctx, discovery.Instance{Service: "s", Addr: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, discovery.Instance{Service: "s", Addr: "h:1"}); err == nil {
		t.Fatal("second registration of one address: no error")
	}
	r.Close(ctx)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestServerLaneView: a server that follows the registry's lane
// definitions (WatchLanes, rpc.WithParentsFrom) proves a hop of lane a2
// served by its parent a a fallback, not a misroute, as soon as the chain
// is stored, without a restart.
func TestServerLaneView(t *testing.T) {
	ctx := testCtx(t)
	reg := discovery.NewMemory()
	view, err := discovery.WatchLanes(reg, svc)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	a1 := lanetest.StartNode(t, "a1", mustTag("a"), rpc.WithParentsFrom(view.Parents))
	register(t, reg, s1)
	register(t, reg, a1)
	gc := grpcClient(t, reg)
	hc := httpClient(t, reg)
	a2 := mustTag("a2")
	if err := reg.SetLanes(ctx, discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{a2: {mustTag("a")}}}); err != nil {
		t.Fatal(err)
	}
	lanetest.Eventually(t, "the server's view has the chain", func() error {
		if _, ok := view.Parents(a2); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	served(t, ctx, gc, hc, "a2", "a1")
	if got := a1.Routes()[tagctx.RouteMisroute]; got != 0 {
		t.Fatalf("a1 proved %d hops of lane a2 misroutes, want fallbacks", got)
	}
	if got := a1.Routes()[tagctx.RouteFallback]; got == 0 {
		t.Fatal("a1 proved no fallback")
	}
}
