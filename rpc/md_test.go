package rpc

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/tagctx"
)

// TestMetadataKeysLearnt fails when a grpc upgrade changes how metadata
// sits in a context: the interceptors then stay right on grpc's exported
// readers, but lose the in-place reads issue 16 measured (see md.go).
func TestMetadataKeysLearnt(t *testing.T) {
	if incomingKey == nil {
		t.Error("incomingKey not learnt: the server interceptor copies and scans metadata again")
	}
	if outgoingKey == nil {
		t.Error("outgoingKey not learnt: the client interceptor appends metadata per call again")
	}
}

// withoutFastPaths runs f with the interceptors on grpc's exported
// readers only, as when the keys cannot be learnt.
func withoutFastPaths(f func()) {
	in, out := incomingKey, outgoingKey
	incomingKey, outgoingKey = nil, nil
	defer func() { incomingKey, outgoingKey = in, out }()
	f()
}

func TestIncomingPair(t *testing.T) {
	tests := []struct {
		name string
		md   metadata.MD // nil: no metadata in the context at all
		tag  []string
		bag  []string
	}{
		{name: "no metadata"},
		{name: "empty metadata", md: metadata.MD{}},
		{name: "absent keys", md: metadata.Pairs("user-agent", "grpc-go", ":authority", "svc")},
		{name: "tag only", md: metadata.Pairs("x-tag", "a"), tag: []string{"a"}},
		{name: "baggage only", md: metadata.Pairs("baggage", "x-tag=a"), bag: []string{"x-tag=a"}},
		{name: "both", md: metadata.Pairs("x-tag", "a", "baggage", "x-tag=a", "k", "v"), tag: []string{"a"}, bag: []string{"x-tag=a"}},
		{name: "several values", md: metadata.MD{"x-tag": {"a", "b"}, "baggage": {"m=1", "x-tag=a"}},
			tag: []string{"a", "b"}, bag: []string{"m=1", "x-tag=a"}},
		{name: "upper-case keys built in process", md: metadata.MD{"X-Tag": {"a"}, "BAGGAGE": {"x-tag=a"}},
			tag: []string{"a"}, bag: []string{"x-tag=a"}},
		{name: "upper-case tag key, lower-case baggage", md: metadata.MD{"X-TAG": {"a"}, "baggage": {"m=1"}},
			tag: []string{"a"}, bag: []string{"m=1"}},
		{name: "exact spelling wins over another", md: metadata.MD{"x-tag": {"a"}, "X-Tag": {"b"}}, tag: []string{"a"}},
		{name: "same length, other key", md: metadata.MD{"x-taG": {"a"}, "y-tag": {"b"}, "Baggagf": {"c"}}, tag: []string{"a"}},
		{name: "empty value is present", md: metadata.MD{"x-tag": {""}}, tag: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.md)
			}
			tag, bag := incomingPair(ctx, "x-tag", "baggage")
			// What grpc's exported reader finds, the behaviour to keep.
			refTag := metadata.ValueFromIncomingContext(ctx, "x-tag")
			refBag := metadata.ValueFromIncomingContext(ctx, "baggage")
			type pair struct{ Tag, Bag []string }
			opt := cmp.Transformer("nilEmpty", func(s []string) []string {
				if len(s) == 0 {
					return nil
				}
				return s
			})
			if diff := cmp.Diff(pair{tag, bag}, pair{tt.tag, tt.bag}, opt); diff != "" {
				t.Errorf("incomingPair (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(pair{tag, bag}, pair{refTag, refBag}, opt); diff != "" {
				t.Errorf("incomingPair against metadata.ValueFromIncomingContext (-got +grpc):\n%s", diff)
			}
		})
	}
}

// FuzzIncomingPair checks the in-place read against grpc's reader for
// metadata with arbitrary keys: the same values, or, where grpc picks one
// of several spellings at random, one of them.
func FuzzIncomingPair(f *testing.F) {
	f.Add("x-tag", "a", "baggage", "x-tag=a", "k", "v")
	f.Add("X-Tag", "a", "BAGGAGE", "x-tag=a", "x-tag", "b")
	f.Add("Baggage", "m=1", "bAgGaGe", "m=2", "user-agent", "x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		md := metadata.MD{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}} {
			md[kv[0]] = append(md[kv[0]], kv[1])
		}
		ctx := metadata.NewIncomingContext(context.Background(), md)
		tag, bag := incomingPair(ctx, "x-tag", "baggage")
		for _, c := range []struct {
			key string
			got []string
		}{{"x-tag", tag}, {"baggage", bag}} {
			var want [][]string // the values grpc may return
			if v, ok := md[c.key]; ok {
				want = [][]string{v}
			} else {
				for k, v := range md {
					if strings.EqualFold(k, c.key) {
						want = append(want, v)
					}
				}
			}
			if len(want) == 0 {
				if c.got != nil {
					t.Fatalf("%s: got %q from %v, want nothing", c.key, c.got, md)
				}
				continue
			}
			found := false
			for _, w := range want {
				found = found || cmp.Equal(c.got, w)
			}
			if !found {
				t.Fatalf("%s: got %q from %v, want one of %q", c.key, c.got, md, want)
			}
		}
	})
}

// TestFastPathsAgree runs the interceptors' decisions with the in-place
// reads and with grpc's exported readers only, on the same inputs: they
// must not differ in anything a handler or the next hop sees.
func TestFastPathsAgree(t *testing.T) {
	type served struct {
		Tag     string
		Decided bool
		TagMD   []string
		Baggage []string
		Err     string
	}
	serve := func(o *options, md metadata.MD) served {
		ctx, err := o.serverContext(metadata.NewIncomingContext(context.Background(), md), "/svc/M")
		if err != nil {
			return served{Err: err.Error()}
		}
		tag, decided := tagctx.Lookup(ctx)
		in, _ := metadata.FromIncomingContext(ctx)
		return served{Tag: tag.String(), Decided: decided, TagMD: in.Get("x-tag"), Baggage: in.Get("baggage")}
	}
	send := func(o *options, ctx context.Context) metadata.MD {
		md, _ := metadata.FromOutgoingContext(o.clientContext(ctx))
		return md
	}
	inputs := []metadata.MD{
		{},
		metadata.Pairs("user-agent", "x"),
		metadata.Pairs("x-tag", "a"),
		metadata.Pairs("x-tag", ""),
		metadata.Pairs("x-tag", "-bad"),
		metadata.Pairs("baggage", "x-tag=a,m=1"),
		metadata.Pairs("x-tag", "a", "baggage", "x-tag=b"),
		{"X-Tag": {"a"}},
		{"BAGGAGE": {"m=1,x-tag=a"}},
		{"X-TAG": {"a"}, "Baggage": {"x-tag=a"}},
	}
	outgoing := map[string]context.Context{
		"none":                   context.Background(),
		"tagged":                 tagctx.With(context.Background(), tagctx.MustParse("a")),
		"untagged mark":          tagctx.WithUntagged(context.Background()),
		"tagged, other metadata": metadata.AppendToOutgoingContext(tagctx.With(context.Background(), tagctx.MustParse("a")), "k", "v"),
		"tagged, stale tag":      metadata.AppendToOutgoingContext(tagctx.With(context.Background(), tagctx.MustParse("a")), "x-tag", "b", "baggage", "x-tag=b,m=1"),
		"untagged, stale tag":    metadata.NewOutgoingContext(tagctx.WithUntagged(context.Background()), metadata.Pairs("x-tag", "b")),
	}
	for _, opts := range map[string][]Option{
		"defaults":    nil,
		"lane node":   {WithNode(tagctx.MustParse("a"))},
		"trust tags":  {WithTrust(tagctx.TrustTags(tagctx.MustParse("b")))},
		"trust none":  {WithTrust(tagctx.TrustNone())},
		"reject":      {WithRejectInvalid()},
		"renamed key": {WithMetadataKey("lane"), WithBaggageKey("lane")},
	} {
		// An observer, so the lane node's misroutes are not logged.
		l, err := New(append(opts, WithObserver(func(context.Context, tagctx.Observation) {}))...)
		if err != nil {
			t.Fatal(err)
		}
		for _, md := range inputs {
			fast := serve(l.o, md)
			var slow served
			withoutFastPaths(func() { slow = serve(l.o, md) })
			if diff := cmp.Diff(fast, slow); diff != "" {
				t.Errorf("%v: server on %v (-fast +exported readers):\n%s", opts, md, diff)
			}
		}
		for name, ctx := range outgoing {
			fast := send(l.o, ctx)
			var slow metadata.MD
			withoutFastPaths(func() { slow = send(l.o, ctx) })
			if diff := cmp.Diff(fast, slow); diff != "" {
				t.Errorf("%v: client, %s (-fast +exported readers):\n%s", opts, name, diff)
			}
		}
	}
}

// TestSentMetadataPerTag sends more distinct tags than the cache holds,
// twice over, so slots are both hit and evicted: every call carries its
// own tag.
func TestSentMetadataPerTag(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i := range 3 * sentSlots {
			tag := tagctx.MustParse("lane-" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + strings.Repeat("0", i/26))
			md, _ := metadata.FromOutgoingContext(l.o.clientContext(tagctx.With(context.Background(), tag)))
			want := metadata.Pairs("x-tag", tag.String(), "baggage", "x-tag="+tag.String())
			if diff := cmp.Diff(md, want); diff != "" {
				t.Fatalf("round %d, tag %s (-got +want):\n%s", round, tag, diff)
			}
		}
	}
}

// TestFromTransportNeedsTheStream: without grpc's transport stream in the
// context, or with metadata other than the stream's, the metadata is not
// taken for the transport's (and upper-case keys are looked for).
func TestFromTransportNeedsTheStream(t *testing.T) {
	md := metadata.MD{"X-Tag": {"a"}}
	ctx := metadata.NewIncomingContext(context.Background(), md)
	if fromTransport(ctx, md) {
		t.Error("fromTransport true without a transport stream")
	}
	other := metadata.NewIncomingContext(context.Background(), metadata.MD{"X-Tag": {"a"}})
	ctx = grpc.NewContextWithServerTransportStream(ctx, fakeTransportStream{other})
	if fromTransport(ctx, md) {
		t.Error("fromTransport true for metadata that is not the stream's")
	}
	ctx = grpc.NewContextWithServerTransportStream(ctx, fakeTransportStream{ctx})
	if !fromTransport(ctx, md) {
		t.Error("fromTransport false for the stream's own metadata")
	}
}

type fakeTransportStream struct{ ctx context.Context }

func (f fakeTransportStream) Context() context.Context      { return f.ctx }
func (fakeTransportStream) Method() string                  { return "/svc/M" }
func (fakeTransportStream) SetHeader(metadata.MD) error     { return nil }
func (fakeTransportStream) SendHeader(metadata.MD) error    { return nil }
func (fakeTransportStream) SetTrailer(md metadata.MD) error { return nil }

// TestFromTransportOnARealServer: in a real server's interceptor, the
// metadata in the context is the transport's own, so the scan for other
// spellings is skipped; after an interceptor replaced it, it is not.
func TestFromTransportOnARealServer(t *testing.T) {
	got := make(chan bool, 1)
	check := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := ctx.Value(incomingKey).(metadata.MD)
		got <- fromTransport(ctx, md)
		return h(ctx, req)
	}
	replace := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx) // a copy
		return h(metadata.NewIncomingContext(ctx, md), req)
	}
	for _, tt := range []struct {
		name  string
		chain []grpc.UnaryServerInterceptor
		want  bool
	}{
		{name: "transport's metadata", chain: []grpc.UnaryServerInterceptor{check}, want: true},
		{name: "replaced", chain: []grpc.UnaryServerInterceptor{replace, check}, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := grpc.NewServer(grpc.ChainUnaryInterceptor(tt.chain...))
			testpb.RegisterTestServiceServer(srv, testpb.UnimplementedTestServiceServer{})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan struct{})
			go func() {
				defer close(served)
				srv.Serve(lis)
			}()
			defer func() {
				srv.Stop()
				<-served
			}()
			cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Unimplemented: the interceptors run all the same.
			testpb.NewTestServiceClient(cc).EmptyCall(ctx, &testpb.Empty{})
			if g := <-got; g != tt.want {
				t.Errorf("fromTransport = %v, want %v", g, tt.want)
			}
		})
	}
}
