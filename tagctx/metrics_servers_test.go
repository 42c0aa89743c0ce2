package tagctx_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

type echo struct {
	testpb.UnimplementedTestServiceServer
}

func (echo) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{}, nil
}

// TestMetricsOverRealServers: one Metrics observes a real HTTP server
// (httpmw) and a real gRPC server (rpc) on loopback, both stable
// instances, through mixed traffic: untagged, a lane falling back, invalid
// tags, and a thousand distinct lanes over HTTP. The manual reader sees
// every hop counted by transport and verdict, and no more lane series than
// the limit plus OtherLane.
func TestMetricsOverRealServers(t *testing.T) {
	metrics, reader := newMetrics(t)

	web := httptest.NewServer(httpmw.Handler(http.NotFoundHandler(),
		httpmw.WithNode(tagctx.Tag{}), httpmw.WithObserver(metrics.Observe)))
	t.Cleanup(web.Close)
	httpClient := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(httpClient.CloseIdleConnections)
	get := func(tag string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, web.URL+"/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tag != "" {
			req.Header.Set("X-Tag", tag)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(rpc.ServerOptions(rpc.WithNode(tagctx.Tag{}), rpc.WithObserver(metrics.Observe))...)
	testpb.RegisterTestServiceServer(srv, echo{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	// A plain client, so the test can send what the rpc client interceptor
	// would never send: an invalid tag.
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	grpcClient := testpb.NewTestServiceClient(cc)
	call := func(tag string) {
		t.Helper()
		ctx := context.Background()
		if tag != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-tag", tag)
		}
		if _, err := grpcClient.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
			t.Fatal(err)
		}
	}

	for range 3 {
		get("")
		get("feature-x")
		get("Bad_Tag")
		call("")
		call("feature-x")
		call("Bad_Tag")
	}
	const lanes = 1000
	for i := range lanes {
		get(fmt.Sprintf("lane-%d", i))
	}

	got := hops(t, reader)
	// feature-x took the first lane slot; lane-0 .. lane-48 the others.
	limit := tagctx.DefaultLaneLimit - 1
	want := map[string]int64{
		"http matched ":                     3,
		"http fallback feature-x":           3,
		"http rejected ":                    3,
		"grpc matched ":                     3,
		"grpc fallback feature-x":           3,
		"grpc rejected ":                    3,
		"http fallback " + tagctx.OtherLane: lanes - int64(limit),
	}
	for i := range limit {
		want[fmt.Sprintf("http fallback lane-%d", i)] = 1
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("hops (-got +want):\n%s", diff)
	}
}
