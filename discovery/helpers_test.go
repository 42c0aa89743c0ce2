package discovery_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

const svc = "echo"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// register publishes both listeners of n: the gRPC one under svc, the HTTP
// one under svc+"-http".
func register(t *testing.T, reg discovery.Registry, n *lanetest.Node) func() {
	t.Helper()
	ctx := context.Background()
	g, err := reg.Register(ctx, discovery.Instance{Service: svc, Addr: n.GRPCAddr, Tag: n.Tag})
	if err != nil {
		t.Fatal(err)
	}
	h, err := reg.Register(ctx, discovery.Instance{Service: svc + "-http", Addr: n.HTTPAddr, Tag: n.Tag})
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := g.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := h.Close(ctx); err != nil {
			t.Error(err)
		}
	}
}

func grpcClient(t *testing.T, reg discovery.Registry, opts ...discovery.Option) testpb.TestServiceClient {
	t.Helper()
	b, err := discovery.NewResolver(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("taglane:///"+svc, append(rpc.DialOptions(),
		grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// httpClient routes requests for http://echo-http/ through reg.
func httpClient(t *testing.T, reg discovery.Registry, opts ...discovery.Option) *http.Client {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	// httpmw sends the tag on; the discovery transport picks the instance.
	tr, err := discovery.NewTransport(reg, []string{svc + "-http"}, append([]discovery.Option{discovery.WithBase(httpmw.Transport(base))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return &http.Client{Transport: tr}
}

const httpURL = "http://" + svc + "-http/"

// served polls until calls tagged tag are served by the named nodes only,
// over gRPC and (hc not nil) HTTP.
func served(t testing.TB, ctx context.Context, gc testpb.TestServiceClient, hc *http.Client, tag string, want ...string) {
	t.Helper()
	lanetest.Served(t, ctx, gc, hc, httpURL, tag, want...)
}

func mustTag(s string) tagctx.Tag {
	if s == "" {
		return tagctx.Tag{}
	}
	return tagctx.MustParse(s)
}
