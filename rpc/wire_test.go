package rpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// tagEcho reports the tag each call's handler context carries.
type tagEcho struct {
	testpb.UnimplementedTestServiceServer
	seen chan string
}

func (s *tagEcho) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	s.seen <- tagctx.From(ctx).String()
	return &testpb.Empty{}, nil
}

func (s *tagEcho) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	s.seen <- tagctx.From(stream.Context()).String()
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestServerInterceptorOverTheWire sends tag metadata from a plain client
// to a real server, so the server interceptor reads the metadata grpc's
// transport received (lower-case keys, read in place), and, through an
// interceptor that replaces it before taglane's, metadata built in process
// with keys in other spellings, which must be found as grpc's readers find
// them.
func TestServerInterceptorOverTheWire(t *testing.T) {
	var replace atomic.Pointer[metadata.MD]
	rewrite := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if md := replace.Load(); md != nil {
			ctx = metadata.NewIncomingContext(ctx, *md)
		}
		return h(ctx, req)
	}
	lanes, err := rpc.New()
	if err != nil {
		t.Fatal(err)
	}
	svc := &tagEcho{seen: make(chan string, 1)}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(rewrite, lanes.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(lanes.StreamServerInterceptor()))
	testpb.RegisterTestServiceServer(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := testpb.NewTestServiceClient(cc)

	tests := []struct {
		name    string
		sent    []string    // metadata pairs the plain client sends
		replace metadata.MD // what the rewriting interceptor puts in its place (unary only)
		want    string
	}{
		{name: "untagged", want: ""},
		{name: "other metadata only", sent: []string{"k", "v"}, want: ""},
		{name: "tag key", sent: []string{"x-tag", "a"}, want: "a"},
		{name: "baggage only", sent: []string{"baggage", "m=1,x-tag=a"}, want: "a"},
		{name: "both: the tag key decides", sent: []string{"x-tag", "a", "baggage", "x-tag=b"}, want: "a"},
		{name: "the untagged mark", sent: []string{"x-tag", "", "baggage", "x-tag=b"}, want: ""},
		{name: "in process: upper-case tag key", sent: []string{"x-tag", "a"},
			replace: metadata.MD{"X-Tag": {"b"}, "user-agent": {"x"}}, want: "b"},
		{name: "in process: upper-case baggage key", replace: metadata.MD{"Baggage": {"x-tag=c"}}, want: "c"},
		{name: "in process: lower-case keys", sent: []string{"x-tag", "a"}, replace: metadata.MD{"user-agent": {"x"}}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(testCtx(t), tt.sent...)
			if tt.replace != nil {
				replace.Store(&tt.replace)
				defer replace.Store(nil)
			}
			if _, err := client.EmptyCall(ctx, &testpb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if got := <-svc.seen; got != tt.want {
				t.Errorf("unary handler saw tag %q, want %q", got, tt.want)
			}
			if tt.replace != nil {
				return
			}
			s, err := client.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream ended with %v, want io.EOF", err)
			}
			if got := <-svc.seen; got != tt.want {
				t.Errorf("stream handler saw tag %q, want %q", got, tt.want)
			}
		})
	}
}
