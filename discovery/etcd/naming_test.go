package etcd_test

import (
	"testing"

	"go.etcd.io/etcd/client/v3/naming/endpoints"
	namingresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/tagctx"
)

// TestWrapEtcdNaming: a service registered the etcd way
// (naming/endpoints, the tag added to its Metadata) and resolved by etcd's
// own naming resolver, wrapped: tagged calls reach their lane, untagged
// ones never do. etcd's resolver drops Metadata, so the TagFunc reads the
// tag from the same keys (etcd.TagLookup).
func TestWrapEtcdNaming(t *testing.T) {
	ctx := testCtx(t)
	srv := startEtcd(t)
	cli := newClient(t, srv)
	em, err := endpoints.NewManager(cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	a1 := lanetest.StartNode(t, "a1", tagctx.MustParse("a"))
	if err := em.AddEndpoint(ctx, svc+"/"+s1.GRPCAddr, endpoints.Endpoint{Addr: s1.GRPCAddr}); err != nil {
		t.Fatal(err)
	}
	if err := em.AddEndpoint(ctx, svc+"/"+a1.GRPCAddr, endpoints.Endpoint{Addr: a1.GRPCAddr, Metadata: map[string]any{etcd.MetadataTagKey: "a"}}); err != nil {
		t.Fatal(err)
	}
	stock, err := namingresolver.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := etcd.TagLookup(cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := discovery.Wrap(stock, tags)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("etcd:///"+svc, grpc.WithResolvers(w), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testpb.NewTestServiceClient(cc)
	served(t, ctx, c, nil, "a", "a1")
	served(t, ctx, c, nil, "", "s1")
	for i := range 50 {
		if g, _, err := lanetest.CallGRPC(ctx, c, ""); err != nil || g != "s1" {
			t.Fatalf("untagged call %d: %q, %v", i, g, err)
		}
	}
	// Read through this package's registry too: the same keys.
	gc := grpcClient(t, newRegistry(t, cli))
	served(t, ctx, gc, nil, "a", "a1")
	served(t, ctx, gc, nil, "", "s1")
}
