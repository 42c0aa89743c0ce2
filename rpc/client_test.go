package rpc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

type decision int

const (
	none decision = iota // no decision in the context: the node tag applies
	untagged
	tagA
)

func withDecision(ctx context.Context, d decision) context.Context {
	switch d {
	case untagged:
		return tagctx.WithUntagged(ctx)
	case tagA:
		return tagctx.With(ctx, tagctx.MustParse("a"))
	}
	return ctx
}

// sent runs the unary client interceptor and returns the outgoing metadata
// the invoker got, and whether the context went through unchanged.
func sent(ctx context.Context, opts ...rpc.Option) (metadata.MD, bool) {
	var got context.Context
	rpc.UnaryClientInterceptor(opts...)(ctx, "/svc/M", nil, nil, nil,
		func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			got = ctx
			return nil
		})
	md, _ := metadata.FromOutgoingContext(got)
	return md, got == ctx
}

func TestClientInterceptor(t *testing.T) {
	tests := []struct {
		name     string
		decision decision
		md       metadata.MD // caller's outgoing metadata
		appended []string    // and pairs it appended
		opts     []rpc.Option
		want     metadata.MD
		wantSame bool
	}{
		{name: "untagged, nothing to do", decision: none, wantSame: true},
		{name: "explicitly untagged: the untagged mark, other metadata untouched", decision: untagged,
			md: metadata.Pairs("k", "v", "baggage", "m=1"), want: metadata.Pairs("k", "v", "baggage", "m=1", "x-tag", "")},
		{name: "explicitly untagged, mark already there", decision: untagged,
			md: metadata.Pairs("x-tag", ""), want: metadata.Pairs("x-tag", ""), wantSame: true},
		{name: "no decision: a forwarded mark is removed", decision: none,
			md: metadata.Pairs("x-tag", ""), want: metadata.MD{}},
		{name: "untagged: NBSP-spelled member removed, x-tag-owner kept", decision: none,
			md: metadata.Pairs("baggage", "x-tag-owner=bob,x-tag\u00a0=evil"), want: metadata.Pairs("baggage", "x-tag-owner=bob")},
		{name: "untagged: x-tag-owner is no member to remove", decision: none,
			md: metadata.Pairs("baggage", "x-tag-owner=bob,note=x-tag"), want: metadata.Pairs("baggage", "x-tag-owner=bob,note=x-tag"), wantSame: true},
		{name: "tag beside 64 other members: one other dropped, the tag kept", decision: tagA,
			md:   metadata.Pairs("baggage", strings.TrimSuffix(strings.Repeat("m=1,", 64), ",")),
			want: metadata.Pairs("x-tag", "a", "baggage", strings.Repeat("m=1,", 63)+"x-tag=a")},
		{name: "tag, no metadata", decision: tagA,
			want: metadata.Pairs("x-tag", "a", "baggage", "x-tag=a")},
		{name: "tag merged into existing baggage", decision: tagA,
			md:   metadata.Pairs("k", "v", "baggage", "m=1;p=2"),
			want: metadata.Pairs("k", "v", "x-tag", "a", "baggage", "m=1;p=2,x-tag=a")},
		{name: "tag replaces a stale tag", decision: tagA,
			md:   metadata.Pairs("x-tag", "b", "baggage", "x-tag=b,m=1"),
			want: metadata.Pairs("x-tag", "a", "baggage", "m=1,x-tag=a")},
		{name: "tag with appended metadata", decision: tagA,
			appended: []string{"k", "v"},
			want:     metadata.Pairs("k", "v", "x-tag", "a", "baggage", "x-tag=a")},
		{name: "several baggage values become one list", decision: tagA,
			md:   metadata.Pairs("baggage", "m=1", "baggage", "n=2"),
			want: metadata.Pairs("x-tag", "a", "baggage", "m=1,n=2,x-tag=a")},
		{name: "untagged removes a forwarded tag", decision: untagged,
			md:   metadata.Pairs("k", "v", "x-tag", "b", "baggage", "x-tag=b;p=1,m=1"),
			want: metadata.Pairs("k", "v", "baggage", "m=1", "x-tag", "")},
		{name: "untagged removes a baggage-only tag", decision: none,
			md:   metadata.Pairs("baggage", "x-tag=b"),
			want: metadata.MD{}},
		{name: "custom keys", decision: tagA,
			opts: []rpc.Option{rpc.WithMetadataKey("Lane"), rpc.WithBaggageKey("lane")},
			want: metadata.Pairs("lane", "a", "baggage", "lane=a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := withDecision(context.Background(), tt.decision)
			if tt.md != nil {
				ctx = metadata.NewOutgoingContext(ctx, tt.md)
			}
			if tt.appended != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tt.appended...)
			}
			before := tt.md.Copy()
			got, same := sent(ctx, tt.opts...)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("outgoing metadata (-got +want):\n%s", diff)
			}
			if same != tt.wantSame {
				t.Errorf("context unchanged = %v, want %v", same, tt.wantSame)
			}
			if diff := cmp.Diff(tt.md, before); tt.md != nil && diff != "" {
				t.Errorf("caller's metadata written (-got +want):\n%s", diff)
			}
		})
	}
}

// TestClientInterceptorNodeTag: work that starts in a lane process without
// an inbound call (timers, main) stays in the lane.
func TestClientInterceptorNodeTag(t *testing.T) {
	old := tagctx.Node()
	tagctx.SetNode(tagctx.MustParse("n"))
	t.Cleanup(func() { tagctx.SetNode(old) })

	tests := []struct {
		name     string
		decision decision
		want     metadata.MD
	}{
		{name: "no decision: node tag", decision: none, want: metadata.Pairs("x-tag", "n", "baggage", "x-tag=n")},
		{name: "untagged traffic stays untagged", decision: untagged, want: metadata.Pairs("x-tag", "")},
		{name: "traffic tag wins", decision: tagA, want: metadata.Pairs("x-tag", "a", "baggage", "x-tag=a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := sent(withDecision(context.Background(), tt.decision))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("outgoing metadata (-got +want):\n%s", diff)
			}
		})
	}
}

func TestStreamClientInterceptor(t *testing.T) {
	var got metadata.MD
	_, err := rpc.StreamClientInterceptor()(withDecision(context.Background(), tagA), &grpc.StreamDesc{}, nil, "/svc/S",
		func(ctx context.Context, _ *grpc.StreamDesc, _ *grpc.ClientConn, _ string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
			got, _ = metadata.FromOutgoingContext(ctx)
			return nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, metadata.Pairs("x-tag", "a", "baggage", "x-tag=a")); diff != "" {
		t.Errorf("outgoing metadata (-got +want):\n%s", diff)
	}
}

func TestClientInterceptorUntaggedDoesNotAllocate(t *testing.T) {
	icpt := rpc.UnaryClientInterceptor()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	for name, ctx := range map[string]context.Context{
		"no metadata":    context.Background(),
		"other metadata": metadata.NewOutgoingContext(context.Background(), metadata.Pairs("k", "v", "authorization", "x")),
	} {
		if n := testing.AllocsPerRun(1000, func() { icpt(ctx, "/svc/M", nil, nil, nil, invoker) }); n != 0 {
			t.Errorf("%s: %v allocs per untagged call, want 0", name, n)
		}
	}
}
