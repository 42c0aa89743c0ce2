package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/tagctx"
)

// TestChain runs client -> A -> B -> C, each hop a gRPC server with the
// interceptors and each client with the dial options, B with a stable and
// a lane x instance. B calls C from a goroutine started with tagctx.Go.
// Every hop answers "name(tag it saw)", so the reply spells the path.
func TestChain(t *testing.T) {
	ctx := testCtx(t)
	x := tagctx.MustParse("x")

	c := startInstance(t, "C", tagctx.Tag{}, func(ctx context.Context, in *instance) (string, error) {
		return fmt.Sprintf("%s(%s)", in.name, tagctx.From(ctx)), nil
	})
	toC, _ := dial(t, nil, c)
	callC := func(ctx context.Context, in *instance) (string, error) {
		type result struct {
			id  string
			err error
		}
		done := make(chan result, 1)
		// The hop from another goroutine: it must keep the lane.
		tagctx.Go(ctx, func(ctx context.Context) {
			resp, err := toC.UnaryCall(ctx, &testpb.SimpleRequest{})
			done <- result{resp.GetServerId(), err}
		})
		r := <-done
		return fmt.Sprintf("%s(%s)>%s", in.name, tagctx.From(ctx), r.id), r.err
	}
	b := startInstance(t, "B", tagctx.Tag{}, callC)
	bx := startInstance(t, "B-x", x, callC)
	toB, _ := dial(t, nil, b, bx)
	a := startInstance(t, "A", tagctx.Tag{}, func(ctx context.Context, in *instance) (string, error) {
		resp, err := toB.UnaryCall(ctx, &testpb.SimpleRequest{})
		return fmt.Sprintf("%s(%s)>%s", in.name, tagctx.From(ctx), resp.GetServerId()), err
	})
	client, _ := dial(t, nil, a)

	call := func(tag string) (string, error) {
		resp, err := client.UnaryCall(tagged(ctx, tag), &testpb.SimpleRequest{})
		return resp.GetServerId(), err
	}
	eventually(t, "lane x instance of B ready", func() error {
		got, err := call("x")
		if err == nil && !strings.Contains(got, "B-x") {
			err = fmt.Errorf("served by %s", got)
		}
		return err
	})

	tests := []struct {
		name string
		tag  string
		want string
	}{
		{name: "lane x reaches B's lane instance", tag: "x", want: "A(x)>B-x(x)>C(x)"},
		{name: "lane y has no instance: stable, still tagged", tag: "y", want: "A(y)>B(y)>C(y)"},
		{name: "untagged stays stable", tag: "", want: "A()>B()>C()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 {
				got, err := call(tt.tag)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(got, tt.want); diff != "" {
					t.Fatalf("path (-got +want):\n%s", diff)
				}
			}
		})
	}
	for _, in := range []*instance{a, b, bx, c} {
		if n := in.routes()[tagctx.RouteMisroute]; n != 0 {
			t.Errorf("%s recorded %d misroutes", in.name, n)
		}
	}
	if bx.routes()[tagctx.RouteMatched] < 5 || b.routes()[tagctx.RouteFallback] < 5 {
		t.Errorf("route proof of B: lane instance %v, stable instance %v", bx.routes(), b.routes())
	}
}
