package rpc_test

import (
	"context"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/tagctx"
)

// otelOnly is a service that runs OpenTelemetry baggage propagation and no
// taglane code, forwarding every call to next.
type otelOnly struct {
	testpb.UnimplementedTestServiceServer
	next testpb.TestServiceClient
}

func (s otelOnly) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return s.next.UnaryCall(ctx, req)
}

// TestThroughOpenTelemetryOnlyHop: client (taglane) -> M (otelgrpc and
// propagation.Baggage only) -> C (taglane). The tag crosses M in the
// baggage member the client interceptor wrote.
func TestThroughOpenTelemetryOnlyHop(t *testing.T) {
	ctx := testCtx(t)
	c := startInstance(t, "C", tagctx.Tag{}, nil)
	prop := otelgrpc.WithPropagators(propagation.Baggage{})

	cc, err := grpc.NewClient("passthrough:///"+c.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(prop)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(prop)))
	testpb.RegisterTestServiceServer(m, otelOnly{next: testpb.NewTestServiceClient(cc)})
	go m.Serve(lis)
	t.Cleanup(m.Stop)

	client, _ := dial(t, nil, &instance{name: "M", addr: lis.Addr().String()})
	tests := []struct {
		name string
		tag  string
	}{
		{name: "tagged", tag: "feature-x"},
		{name: "untagged", tag: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, seen, err := unary(ctx, client, tt.tag)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{srv, seen}, []string{"C", tt.tag}); diff != "" {
				t.Errorf("served by, tag seen (-got +want):\n%s", diff)
			}
		})
	}
}
