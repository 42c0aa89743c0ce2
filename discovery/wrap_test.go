package discovery_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/tagctx"
)

type podLabel struct{} // the attribute key a user's resolver sets

// TestWrapKeepsLanes: a wrapped resolver (grpc's manual resolver here)
// delivers a service config that selects round_robin, in either spelling;
// lane routing stays in force: no untagged call reaches the lane instance,
// tagged calls reach it, and the config's other settings still apply.
func TestWrapKeepsLanes(t *testing.T) {
	for _, tt := range []struct {
		name string
		sc   string
	}{
		{name: "loadBalancingConfig", sc: `{"loadBalancingConfig":[{"round_robin":{}}],` + methodTimeout + `}`},
		{name: "loadBalancingPolicy", sc: `{"loadBalancingPolicy":"round_robin",` + methodTimeout + `}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
			s2 := lanetest.StartNode(t, "s2", tagctx.Tag{})
			a1 := lanetest.StartNode(t, "a1", mustTag("a"))
			r := manual.NewBuilderWithScheme("pods")
			var reports []error
			w, err := discovery.Wrap(r, discovery.TagAttribute(podLabel{}), discovery.WithErrorHandler(func(err error) {
				reports = append(reports, err) // from the resolver's goroutine; read after it is done
			}))
			if err != nil {
				t.Fatal(err)
			}
			// No rpc.DialOptions: the wrapper alone must put lane routing in force.
			cc, err := grpc.NewClient("pods:///echo", grpc.WithResolvers(w), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			cc.Connect()
			lanetest.Eventually(t, "resolver built", func() error {
				if r.CC() == nil {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			ep := func(n *lanetest.Node) resolver.Endpoint {
				e := resolver.Endpoint{Addresses: []resolver.Address{{Addr: n.GRPCAddr}}}
				if !n.Tag.IsZero() {
					e.Attributes = e.Attributes.WithValue(podLabel{}, n.Tag.String())
				}
				return e
			}
			r.UpdateState(resolver.State{
				Endpoints:     []resolver.Endpoint{ep(s1), ep(s2), ep(a1)},
				ServiceConfig: r.CC().ParseServiceConfig(tt.sc),
			})
			c := testpb.NewTestServiceClient(cc)
			served(t, ctx, c, nil, "a", "a1")
			served(t, ctx, c, nil, "", "s1", "s2")
			for i := range 60 {
				srv, _, err := lanetest.CallGRPC(ctx, c, "")
				if err != nil || srv == "a1" {
					t.Fatalf("untagged call %d: served by %q, %v", i, srv, err)
				}
			}
			// methodConfig kept: EmptyCall has a 1ns timeout.
			_, err = c.EmptyCall(ctx, &testpb.Empty{})
			if status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("EmptyCall under the resolver's methodConfig: %v, want DeadlineExceeded", err)
			}
			cc.Close()
			if len(reports) == 0 {
				t.Error("the rewritten service config was not reported")
			}
		})
	}
}

const methodTimeout = `"methodConfig":[{"name":[{"service":"grpc.testing.TestService","method":"EmptyCall"}],"timeout":"0.000000001s"}]`

// TestWrapInvalidTag: an endpoint whose tag cannot be read is left out
// and reported, never treated as stable.
func TestWrapInvalidTag(t *testing.T) {
	ctx := testCtx(t)
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	bad := lanetest.StartNode(t, "bad", tagctx.Tag{})
	r := manual.NewBuilderWithScheme("md")
	r.InitialState(resolver.State{Addresses: []resolver.Address{
		{Addr: s1.GRPCAddr},
		{Addr: bad.GRPCAddr, Metadata: map[string]any{"tag": "Not A Tag!"}},
	}})
	reported := make(chan error, 10)
	w, err := discovery.Wrap(r, discovery.TagMetadata("tag"), discovery.WithErrorHandler(func(err error) { reported <- err }))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("md:///echo", grpc.WithResolvers(w), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	for i := range 20 {
		srv, _, err := lanetest.CallGRPC(ctx, c, "")
		if err != nil || srv != "s1" {
			t.Fatalf("untagged call %d: served by %q, %v", i, srv, err)
		}
	}
	if err := <-reported; !contains(err.Error(), "left out") {
		t.Errorf("report: %v", err)
	}
}
