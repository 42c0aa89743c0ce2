package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// served is what a handler behind the server interceptor saw, and what the
// route proof said.
type served struct {
	Called   bool
	Tag      string
	Decided  bool     // the context carries a decision (tag or untagged mark)
	TagMD    []string // incoming "x-tag" as the handler sees it
	Baggage  []string
	Route    string
	Rejected string // "invalid", "limit", "untrusted", "other" or ""
	Code     codes.Code
}

func rejectKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, tagctx.ErrInvalidTag):
		return "invalid"
	case errors.Is(err, tagctx.ErrLimit):
		return "limit"
	case errors.Is(err, rpc.ErrUntrusted) && errors.Is(err, tagctx.ErrUntrusted):
		return "untrusted"
	}
	return "other"
}

func incoming(md metadata.MD, from string) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), md)
	if from != "" {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(from))})
	}
	return ctx
}

// callUnary runs the unary server interceptor with opts on md from peer.
func callUnary(md metadata.MD, from string, opts ...rpc.Option) served {
	var got served
	opts = append(opts, rpc.WithObserver(func(_ context.Context, o tagctx.Observation) {
		got.Route = o.Route.String()
		got.Rejected = rejectKind(o.Rejected)
	}))
	icpt := rpc.UnaryServerInterceptor(opts...)
	_, err := icpt(incoming(md, from), nil, &grpc.UnaryServerInfo{FullMethod: "/svc/M"}, func(ctx context.Context, _ any) (any, error) {
		got.Called = true
		t, ok := tagctx.Lookup(ctx)
		got.Tag, got.Decided = t.String(), ok
		in, _ := metadata.FromIncomingContext(ctx)
		got.TagMD, got.Baggage = in.Get("x-tag"), in.Get("baggage")
		return nil, nil
	})
	got.Code = status.Code(err)
	return got
}

func TestServerInterceptor(t *testing.T) {
	a, a2 := tagctx.MustParse("a"), tagctx.MustParse("a2")
	many := strings.Repeat("k=v,", 180) + "x-tag=a"
	tests := []struct {
		name string
		md   metadata.MD
		peer string
		opts []rpc.Option
		want served
	}{
		{name: "no tag on a stable node",
			md:   metadata.Pairs("user-agent", "x"),
			want: served{Called: true, Route: "matched"}},
		{name: "tag",
			md:   metadata.Pairs("x-tag", "a"),
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "upper case tag is lowercased",
			md:   metadata.Pairs("x-tag", "Feature-X"),
			want: served{Called: true, Tag: "feature-x", Decided: true, TagMD: []string{"Feature-X"}, Route: "fallback"}},
		{name: "baggage member",
			md:   metadata.Pairs("baggage", "k=v,x-tag=a;p=1"),
			want: served{Called: true, Tag: "a", Decided: true, Baggage: []string{"k=v,x-tag=a;p=1"}, Route: "fallback"}},
		{name: "tag key wins over baggage",
			md:   metadata.Pairs("x-tag", "a", "baggage", "x-tag=b"),
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Baggage: []string{"x-tag=b"}, Route: "fallback"}},
		{name: "baggage without the member",
			md:   metadata.Pairs("baggage", "k=v"),
			want: served{Called: true, Baggage: []string{"k=v"}, Route: "matched"}},
		{name: "invalid tag is served untagged, scrubbed, reported",
			md:   metadata.Pairs("x-tag", "a_b", "baggage", "k=v,x-tag=a"),
			want: served{Called: true, Decided: true, Baggage: []string{"k=v"}, Route: "matched", Rejected: "invalid"}},
		{name: "invalid tag rejected on request",
			md:   metadata.Pairs("x-tag", "a_b"),
			opts: []rpc.Option{rpc.WithRejectInvalid()},
			want: served{Route: "unknown", Rejected: "invalid", Code: codes.InvalidArgument}},
		{name: "conflicting tag values",
			md:   metadata.Pairs("x-tag", "a", "x-tag", "b"),
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "invalid"}},
		{name: "baggage over the member limit",
			md:   metadata.Pairs("baggage", many),
			opts: []rpc.Option{rpc.WithRejectInvalid()},
			want: served{Route: "unknown", Rejected: "limit", Code: codes.InvalidArgument}},
		{name: "strip removes the tag and keeps other baggage",
			md:   metadata.Pairs("x-tag", "a", "baggage", "k=v,x-tag=a"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, Baggage: []string{"k=v"}, Route: "matched", Rejected: "untrusted"}},
		{name: "strip ignores invalid tags even when rejecting",
			md:   metadata.Pairs("x-tag", "a_b"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone()), rpc.WithRejectInvalid()},
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "untrusted"}},
		{name: "strip with nothing to strip",
			md:   metadata.Pairs("baggage", "k=v"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, Baggage: []string{"k=v"}, Route: "matched"}},
		{name: "strip: the untagged mark is no tag",
			md:   metadata.Pairs("x-tag", ""),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, TagMD: []string{""}, Route: "matched"}},
		{name: "strip: member keys match exactly",
			md:   metadata.Pairs("baggage", "x-tag-owner=bob,note=x-tag"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, Baggage: []string{"x-tag-owner=bob,note=x-tag"}, Route: "matched"}},
		{name: "strip: NBSP-spelled member stripped",
			md:   metadata.Pairs("baggage", "k=v,x-tag\u00a0=a"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, Baggage: []string{"k=v"}, Route: "matched", Rejected: "untrusted"}},
		{name: "strip: baggage over the limits dropped unread",
			md:   metadata.Pairs("baggage", strings.Repeat("k=v,", 1<<16)+"x-tag=a"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())},
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "limit"}},
		{name: "default trust: baggage over the limits dropped unread",
			md:   metadata.Pairs("baggage", strings.Repeat("k=v,", 1<<16)+"x-tag=a"),
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "limit"}},
		{name: "the untagged mark beats baggage",
			md:   metadata.Pairs("x-tag", "", "baggage", "x-tag=a"),
			want: served{Called: true, Decided: true, TagMD: []string{""}, Baggage: []string{"x-tag=a"}, Route: "matched"}},
		{name: "allow-list: the untagged mark is no refusal",
			md:   metadata.Pairs("x-tag", ""),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustTags(a))},
			want: served{Called: true, Decided: true, TagMD: []string{""}, Route: "matched"}},
		{name: "65 baggage members W3C allows",
			md:   metadata.Pairs("baggage", strings.Repeat("k=v,", 64)+"x-tag=a"),
			want: served{Called: true, Tag: "a", Decided: true, Baggage: []string{strings.Repeat("k=v,", 64) + "x-tag=a"}, Route: "fallback"}},
		{name: "trusted network, v4-mapped prefix, IPv4 peer",
			md: metadata.Pairs("x-tag", "a"), peer: "10.1.2.3:5000",
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("::ffff:10.0.0.0/104")))},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "trusted tag list, in",
			md:   metadata.Pairs("x-tag", "a"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustTags(a))},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "trusted tag list, out: untagged, never rejected",
			md:   metadata.Pairs("x-tag", "b"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustTags(a)), rpc.WithRejectInvalid()},
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "untrusted"}},
		{name: "trusted network, in",
			md: metadata.Pairs("x-tag", "a"), peer: "10.1.2.3:5000",
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")))},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "trusted network, IPv4-mapped peer",
			md: metadata.Pairs("x-tag", "a"), peer: "[::ffff:10.1.2.3]:5000",
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")))},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "trusted network, out",
			md: metadata.Pairs("x-tag", "a"), peer: "127.0.0.1:5000",
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")))},
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "untrusted"}},
		{name: "trusted network, unknown peer",
			md:   metadata.Pairs("x-tag", "a"),
			opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")))},
			want: served{Called: true, Decided: true, Route: "matched", Rejected: "untrusted"}},
		{name: "lane instance, its lane",
			md:   metadata.Pairs("x-tag", "a"),
			opts: []rpc.Option{rpc.WithNode(a)},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "matched"}},
		{name: "lane instance, another lane is a misroute",
			md:   metadata.Pairs("x-tag", "b"),
			opts: []rpc.Option{rpc.WithNode(a)},
			want: served{Called: true, Tag: "b", Decided: true, TagMD: []string{"b"}, Route: "misroute"}},
		{name: "lane instance, stable traffic is a misroute",
			md:   metadata.Pairs("user-agent", "x"),
			opts: []rpc.Option{rpc.WithNode(a)},
			want: served{Called: true, Route: "misroute"}},
		{name: "parent lane serving a child lane is a fallback",
			md:   metadata.Pairs("x-tag", "a2"),
			opts: []rpc.Option{rpc.WithNode(a), rpc.WithParents(a2, a)},
			want: served{Called: true, Tag: "a2", Decided: true, TagMD: []string{"a2"}, Route: "fallback"}},
		{name: "parents of another lane do not count",
			md:   metadata.Pairs("x-tag", "b"),
			opts: []rpc.Option{rpc.WithNode(a), rpc.WithParents(a2, a)},
			want: served{Called: true, Tag: "b", Decided: true, TagMD: []string{"b"}, Route: "misroute"}},
		{name: "custom keys",
			md:   metadata.Pairs("lane", "a", "x-tag", "b"),
			opts: []rpc.Option{rpc.WithMetadataKey("Lane"), rpc.WithBaggageKey("lane")},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"b"}, Route: "fallback"}},
		{name: "nil option ignored",
			md:   metadata.Pairs("x-tag", "a"),
			opts: []rpc.Option{nil},
			want: served{Called: true, Tag: "a", Decided: true, TagMD: []string{"a"}, Route: "fallback"}},
		{name: "no metadata at all",
			want: served{Called: true, Route: "matched"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := callUnary(tt.md, tt.peer, tt.opts...)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// TestServerInterceptorLaneNode: on a lane node, untagged traffic must be
// marked untagged, or the handler's outgoing calls would carry the node tag.
func TestServerInterceptorLaneNode(t *testing.T) {
	old := tagctx.Node()
	tagctx.SetNode(tagctx.MustParse("a"))
	t.Cleanup(func() { tagctx.SetNode(old) })

	got := callUnary(metadata.Pairs("user-agent", "x"), "")
	want := served{Called: true, Decided: true, Route: "misroute"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeServerStream) Context() context.Context { return s.ctx }

func TestStreamServerInterceptor(t *testing.T) {
	tests := []struct {
		name     string
		md       metadata.MD
		opts     []rpc.Option
		wantTag  string
		wantSame bool // the handler gets the original stream: nothing changed
		wantCode codes.Code
	}{
		{name: "tag", md: metadata.Pairs("x-tag", "a"), wantTag: "a"},
		{name: "untagged on a stable node", md: metadata.Pairs("user-agent", "x"), wantSame: true},
		{name: "rejected", md: metadata.Pairs("x-tag", "-"), opts: []rpc.Option{rpc.WithRejectInvalid()}, wantCode: codes.InvalidArgument},
		{name: "stripped", md: metadata.Pairs("x-tag", "a"), opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNone())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := &fakeServerStream{ctx: incoming(tt.md, "")}
			var gotTag string
			var same bool
			err := rpc.StreamServerInterceptor(tt.opts...)(nil, ss, &grpc.StreamServerInfo{FullMethod: "/svc/S"}, func(_ any, got grpc.ServerStream) error {
				gotTag = tagctx.From(got.Context()).String()
				same = got == grpc.ServerStream(ss)
				return nil
			})
			type result struct {
				Tag  string
				Same bool
				Code codes.Code
			}
			if diff := cmp.Diff(result{gotTag, same, status.Code(err)}, result{tt.wantTag, tt.wantSame, tt.wantCode}); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestServerInterceptorSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(incoming(metadata.Pairs("x-tag", "a"), ""), "call")
	_, err := rpc.UnaryServerInterceptor(rpc.WithNode(tagctx.MustParse("a")))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/svc/M"},
		func(context.Context, any) (any, error) { return nil, nil })
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	got := map[attribute.Key]string{}
	for _, kv := range rec.Ended()[0].Attributes() {
		got[kv.Key] = kv.Value.AsString()
	}
	want := map[attribute.Key]string{
		tagctx.AttrTrafficTag: "a",
		tagctx.AttrNodeTag:    "a",
		tagctx.AttrRoute:      "matched",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("span attributes (-got +want):\n%s", diff)
	}
}

func TestServerInterceptorUntaggedDoesNotAllocate(t *testing.T) {
	icpt := rpc.UnaryServerInterceptor()
	ctx := incoming(metadata.Pairs("user-agent", "grpc-go", "content-type", "application/grpc", ":authority", "svc"), "127.0.0.1:1")
	info := &grpc.UnaryServerInfo{FullMethod: "/svc/M"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	if n := testing.AllocsPerRun(1000, func() { icpt(ctx, nil, info, handler) }); n != 0 {
		t.Errorf("%v allocs per untagged call, want 0", n)
	}
}

// FuzzServerMetadata feeds arbitrary tag and baggage metadata to the server
// interceptor. Whatever comes in, the handler sees either a valid tag the
// caller sent or no tag, and a tag that was not accepted is gone from the
// metadata it sees.
func FuzzServerMetadata(f *testing.F) {
	for _, seed := range [][2]string{
		{"a", ""}, {"", "x-tag=a"}, {"A", "x-tag=b"}, {"a_b", ""}, {"", "x-tag=%zz"},
		{"", "x-tag=a%2Db"}, {"-a", "k=v"}, {"", strings.Repeat("k=v,", 70)},
		{strings.Repeat("a", 64), ""}, {"", " x-tag = a ;p=1"}, {"a\x00", ""},
		{"", "x-tag\u00a0=a"}, {"", "x-tag=a,x-tag=b"}, {"", strings.Repeat("x", 9000) + ",x-tag=a"},
	} {
		f.Add(seed[0], seed[1], false)
		f.Add(seed[0], seed[1], true)
	}
	f.Fuzz(func(t *testing.T, tagValue, bag string, reject bool) {
		md := metadata.MD{}
		if tagValue != "" {
			md.Set("x-tag", tagValue)
		}
		if bag != "" {
			md.Set("baggage", bag)
		}
		var opts []rpc.Option
		if reject {
			opts = append(opts, rpc.WithRejectInvalid())
		}
		var obs tagctx.Observation
		opts = append(opts, rpc.WithObserver(func(_ context.Context, o tagctx.Observation) { obs = o }))
		var seen tagctx.Tag
		var seenMD metadata.MD
		called := false
		_, err := rpc.UnaryServerInterceptor(opts...)(incoming(md, ""), nil, &grpc.UnaryServerInfo{FullMethod: "/svc/M"},
			func(ctx context.Context, _ any) (any, error) {
				called = true
				seen = tagctx.From(ctx)
				seenMD, _ = metadata.FromIncomingContext(ctx)
				return nil, nil
			})

		wire, found, wireErr := tagctx.Extract(md.Get("x-tag"), md.Get("baggage"), "x-tag")
		// Rejections quote a bounded prefix of the input, whatever its size.
		if obs.Rejected != nil && len(obs.Rejected.Error()) > 512 {
			t.Fatalf("rejection of %d bytes: %.200q", len(obs.Rejected.Error()), obs.Rejected.Error())
		}
		if err != nil && len(err.Error()) > 600 {
			t.Fatalf("status of %d bytes: %.200q", len(err.Error()), err.Error())
		}
		switch {
		case err != nil:
			s := status.Convert(err)
			if !reject || wireErr == nil || s.Code() != codes.InvalidArgument || !strings.HasPrefix(s.Message(), "rpc: ") {
				t.Fatalf("error %v (reject %v, wire error %v)", err, reject, wireErr)
			}
			if called {
				t.Fatal("handler called for a rejected call")
			}
			return
		case !called:
			t.Fatal("handler not called")
		case wireErr != nil:
			if !seen.IsZero() || obs.Rejected == nil {
				t.Fatalf("invalid input %q/%q served as %q, rejected %v", tagValue, bag, seen, obs.Rejected)
			}
			if _, stillFound, _ := tagctx.Extract(seenMD.Get("x-tag"), seenMD.Get("baggage"), "x-tag"); stillFound {
				t.Fatalf("rejected tag still in the handler's metadata: %v", seenMD)
			}
		case found:
			if seen != wire || obs.Traffic != wire || obs.Rejected != nil {
				t.Fatalf("wire tag %q: handler saw %q, proof %+v", wire, seen, obs)
			}
		default:
			if !seen.IsZero() || obs.Rejected != nil {
				t.Fatalf("no tag on the wire: handler saw %q, proof %+v", seen, obs)
			}
		}
		if !seen.IsZero() {
			if p, err := tagctx.Parse(seen.String()); err != nil || p != seen {
				t.Fatalf("handler saw an invalid tag %q", seen)
			}
		}
	})
}

// TestServerInterceptorScrubsOpenTelemetryBaggage: otelgrpc's stats handler
// has already put the inbound baggage in the context; a refused tag must
// go from there too, or otelgrpc would send it on at the next hop.
func TestServerInterceptorScrubsOpenTelemetryBaggage(t *testing.T) {
	keep, _ := baggage.NewMember("user", "42")
	tag, _ := baggage.NewMember("x-tag", "b")
	bag, _ := baggage.New(keep, tag)
	ctx := baggage.ContextWithBaggage(incoming(metadata.Pairs("baggage", bag.String()), ""), bag)

	var got string
	_, err := rpc.UnaryServerInterceptor(rpc.WithTrust(tagctx.TrustTags(tagctx.MustParse("a"))))(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/svc/M"},
		func(ctx context.Context, _ any) (any, error) {
			got = baggage.FromContext(ctx).String()
			return nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, "user=42"); diff != "" {
		t.Errorf("baggage the handler sees (-got +want):\n%s", diff)
	}
}

func TestNewReportsBadOptions(t *testing.T) {
	long := strings.Repeat("k", 200)
	tests := []struct {
		name string
		opts []rpc.Option
		want string // "" for valid options
	}{
		{name: "empty metadata key", opts: []rpc.Option{rpc.WithMetadataKey("")}, want: `rpc: WithMetadataKey(""): empty`},
		{name: "reserved metadata key", opts: []rpc.Option{rpc.WithMetadataKey("grpc-tag")}, want: `rpc: WithMetadataKey("grpc-tag"): reserved, binary or baggage`},
		{name: "binary metadata key", opts: []rpc.Option{rpc.WithMetadataKey("tag-bin")}, want: `rpc: WithMetadataKey("tag-bin"): reserved, binary or baggage`},
		{name: "baggage as metadata key", opts: []rpc.Option{rpc.WithMetadataKey("Baggage")}, want: `rpc: WithMetadataKey("Baggage"): reserved, binary or baggage`},
		{name: "bad character", opts: []rpc.Option{rpc.WithMetadataKey("x tag")}, want: `rpc: WithMetadataKey("x tag"): character ' ' not in [0-9a-z-_.]`},
		{name: "long bad key is quoted bounded", opts: []rpc.Option{rpc.WithMetadataKey(long + " ")}, want: "rpc: WithMetadataKey(" + tagctx.Quote(long+" ") + "): character ' ' not in [0-9a-z-_.]"},
		{name: "empty baggage key", opts: []rpc.Option{rpc.WithBaggageKey("")}, want: `rpc: WithBaggageKey(""): want a non-empty token without space, ',', ';', '=', '%' or '"'`},
		{name: "baggage key with '='", opts: []rpc.Option{rpc.WithBaggageKey("a=b")}, want: `rpc: WithBaggageKey("a=b"): want a non-empty token without space, ',', ';', '=', '%' or '"'`},
		{name: "unknown fallback", opts: []rpc.Option{rpc.WithFallback("any")}, want: `rpc: WithFallback("any"): want "stable" or "fail"`},
		{name: "parents of stable", opts: []rpc.Option{rpc.WithParents(tagctx.Tag{}, tagctx.MustParse("a"))}, want: `rpc: WithParents("", "a"): stable has no parents`},
		{name: "stable in a chain", opts: []rpc.Option{rpc.WithParents(tagctx.MustParse("a2"), tagctx.Tag{})}, want: `rpc: WithParents("a2", ""): stable ends every chain by itself; do not list it`},
		{name: "chain repeats its lane", opts: []rpc.Option{rpc.WithParents(tagctx.MustParse("a2"), tagctx.MustParse("a"), tagctx.MustParse("a2"))}, want: `rpc: WithParents("a2", "a,a2"): "a2" repeats a lane of the chain`},
		{name: "zero trusted network", opts: []rpc.Option{rpc.WithTrust(tagctx.TrustNetworks(netip.Prefix{}))}, want: `rpc: WithTrust: tagctx: TrustNetworks: prefix 1 (invalid Prefix) is not a valid prefix`},
		{name: "first bad option wins", opts: []rpc.Option{rpc.WithBaggageKey(""), rpc.WithMetadataKey("")}, want: `rpc: WithBaggageKey(""): want a non-empty token without space, ',', ';', '=', '%' or '"'`},
		{name: "good options", opts: []rpc.Option{nil, rpc.WithMetadataKey("X-Lane"), rpc.WithBaggageKey("lane"), rpc.WithFallback(""), rpc.WithParents(tagctx.MustParse("a2"), tagctx.MustParse("a"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := rpc.New(tt.opts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("New error (-got +want):\n%s", diff)
			}
			if (l == nil) == (err == nil) {
				t.Errorf("New = %v, %v: want exactly one of them", l, err)
			}
		})
	}
}

// The free functions are must-style: they panic with New's error, and
// only when called, never when the option is built.
func TestMustHelpersPanicWithNewsError(t *testing.T) {
	bad := rpc.WithMetadataKey("grpc-x") // building it must not panic
	helpers := []struct {
		name string
		call func()
	}{
		{name: "UnaryServerInterceptor", call: func() { rpc.UnaryServerInterceptor(bad) }},
		{name: "StreamServerInterceptor", call: func() { rpc.StreamServerInterceptor(bad) }},
		{name: "UnaryClientInterceptor", call: func() { rpc.UnaryClientInterceptor(bad) }},
		{name: "StreamClientInterceptor", call: func() { rpc.StreamClientInterceptor(bad) }},
		{name: "ServerOptions", call: func() { rpc.ServerOptions(bad) }},
		{name: "DialOptions", call: func() { rpc.DialOptions(bad) }},
		{name: "ServiceConfig", call: func() { rpc.ServiceConfig(bad) }},
	}
	for _, tt := range helpers {
		t.Run(tt.name, func(t *testing.T) {
			got := func() (msg string) {
				defer func() {
					if r := recover(); r != nil {
						msg = fmt.Sprint(r)
					}
				}()
				tt.call()
				return ""
			}()
			if diff := cmp.Diff(got, `rpc: WithMetadataKey("grpc-x"): reserved, binary or baggage`); diff != "" {
				t.Errorf("panic (-got +want):\n%s", diff)
			}
		})
	}
}

// The extra arguments end up after the lanes' own options, so a caller
// needs no append(...)....
func TestLanesOptionsTakeExtra(t *testing.T) {
	l, err := rpc.New()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(l.ServerOptions(grpc.MaxRecvMsgSize(1<<20), grpc.MaxSendMsgSize(1<<20))), len(l.ServerOptions())+2; got != want {
		t.Errorf("len(ServerOptions(2 extra)) = %d, want %d", got, want)
	}
	if got, want := len(l.DialOptions(grpc.WithUserAgent("t"))), len(l.DialOptions())+1; got != want {
		t.Errorf("len(DialOptions(1 extra)) = %d, want %d", got, want)
	}
	if got, want := l.ServiceConfig(), rpc.ServiceConfig(); got != want {
		t.Errorf("ServiceConfig() = %s, want the free function's %s", got, want)
	}
}
