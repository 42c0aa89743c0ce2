package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// TestStrictAddressReuse is finding 7 of issue 11: a lane-a instance stops
// and a lane-b instance takes its address before the resolver updates.
// Without strict servers lane-a calls are served by b (misroutes, recorded
// but served); with WithStrict, b refuses them and the client re-picks
// around it, so they land on stable (the fallback) or, under the "fail"
// policy, fail with the reason.
func TestStrictAddressReuse(t *testing.T) {
	tests := []struct {
		name     string
		strict   bool
		fallback rpc.Fallback
		hostname bool // the resolver names lane a's endpoint "localhost:port"
	}{
		{name: "not strict: b serves lane a", fallback: rpc.FallbackStable},
		{name: "strict: refused and re-picked to stable", strict: true, fallback: rpc.FallbackStable},
		{name: "strict, fallback fail: fails with the reason", strict: true, fallback: rpc.FallbackFail},
		{name: "strict, endpoint by host name: re-picked to stable", strict: true, fallback: rpc.FallbackStable, hostname: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			var sopts []rpc.Option
			if tt.strict {
				sopts = append(sopts, rpc.WithStrict())
			}
			s1 := startInstance(t, "s1", tagctx.Tag{}, nil, sopts...)
			a1 := startInstance(t, "a1", tagctx.MustParse("a"), nil, sopts...)
			resolved := a1
			if tt.hostname {
				_, port, _ := strings.Cut(a1.addr, ":")
				resolved = &instance{name: "a1", node: a1.node, addr: "localhost:" + port}
			}
			c, r := dial(t, []rpc.Option{rpc.WithFallback(tt.fallback)}, s1, resolved)
			waitServed(t, ctx, c, "a", a1)

			a1.srv.Stop()
			b1 := startInstanceAt(t, a1.addr, "b1", tagctx.MustParse("b"), nil, sopts...)
			// The resolver still says a1 is lane a at that address. Wait
			// until the channel has reconnected there: b1 has seen a call.
			eventually(t, "lane-a calls reach b1's address", func() error {
				_, _, _ = unary(ctx, c, "a")
				if len(b1.routes()) == 0 {
					return fmt.Errorf("b1 saw no call yet")
				}
				return nil
			})

			const calls = 100
			served := map[string]int{}
			for range calls {
				srv, seen, err := unary(ctx, c, "a")
				switch {
				case tt.fallback == rpc.FallbackFail:
					if err == nil {
						t.Fatalf("served by %s as %q; want a refusal under the fail policy", srv, seen)
					}
					if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "misdirected") ||
						!strings.Contains(s.Message(), `refuses traffic of lane "a"`) {
						t.Fatalf("error %v; want Unavailable naming the refusal", err)
					}
					continue
				case err != nil:
					t.Fatalf("call %d: %v", len(served), err)
				case seen != "a":
					t.Fatalf("handler of %s saw tag %q, want a", srv, seen)
				}
				served[srv]++
			}
			if !tt.strict {
				if served["b1"] == 0 || b1.routes()[tagctx.RouteMisroute] == 0 {
					t.Errorf("served %v, b1 routes %v: want b1 serving lane a as misroutes, the failure strict mode exists for", served, b1.routes())
				}
				return
			}
			refused := b1.refused()
			if refused == 0 {
				t.Fatal("b1 refused nothing: the address reuse was not exercised")
			}
			if n := b1.routes()[tagctx.RouteMisroute]; n != 0 {
				t.Errorf("b1 recorded %d misroutes; a refused call is served by no lane", n)
			}
			if served["b1"] != 0 {
				t.Errorf("served %v: a strict lane-b instance served lane-a calls", served)
			}
			if tt.fallback == rpc.FallbackStable && served["s1"] != calls {
				t.Errorf("served %v: want all %d on s1, the fallback", served, calls)
			}
			// The picker remembers the refusing endpoint for lane a: the
			// calls above do not each pay a refusal first.
			if refused > calls/2 {
				t.Errorf("b1 refused %d of %d calls; want the endpoint avoided after the first refusals", refused, calls)
			}
			t.Logf("served %v; b1 refused %d calls", served, refused)

			// Discovery catches up: the address is lane b's now.
			r.UpdateState(state(s1, b1))
			waitServed(t, ctx, c, "b", b1)
			if tt.fallback == rpc.FallbackStable {
				waitServed(t, ctx, c, "a", s1)
			}
		})
	}
}

// refused counts the calls in refused as misdirected (rpc.ErrMisdirected).
func (in *instance) refused() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, o := range in.proofs {
		if errors.Is(o.Rejected, rpc.ErrMisdirected) {
			n++
		}
	}
	return n
}

// TestStrictRefusesStableTrafficOnLane: stable traffic reaching a strict
// lane instance is refused with the detail clients recognise.
func TestStrictRefusesStableTrafficOnLane(t *testing.T) {
	ctx := testCtx(t)
	b1 := startInstance(t, "b1", tagctx.MustParse("b"), nil, rpc.WithStrict())
	// Dialled as if b1 were stable: the only endpoint, so nothing to re-pick.
	c, _ := dial(t, nil, &instance{name: "b1 as stable", addr: b1.addr})
	_, _, err := unary(ctx, c, "")
	ei := rpc.Misdirected(err)
	if ei == nil {
		t.Fatalf("error %v: no misdirected detail", err)
	}
	if got := ei.GetMetadata()["node"]; got != "b" {
		t.Errorf("detail node %q, want b", got)
	}
	if !strings.Contains(err.Error(), `strict lane instance "b" refuses stable traffic`) {
		t.Errorf("error %v does not say why", err)
	}
	// A lane-b call is served as usual.
	if srv, _, err := unary(ctx, c, "b"); err != nil || srv != "b1" {
		t.Errorf("lane b call: %s, %v", srv, err)
	}
}

// TestHostileAllocsConstant pins what hostile metadata costs the server
// interceptor: the same small number of allocations for 16 KiB as for
// 1 MiB of baggage carrying the member, under every trust policy.
func TestHostileAllocsConstant(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/svc/M"}
	const budget = 24
	for _, trust := range []tagctx.Trust{tagctx.TrustAll(), tagctx.TrustNone(), tagctx.TrustTags(tagctx.MustParse("a")),
		tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))} {
		icpt := rpc.UnaryServerInterceptor(rpc.WithTrust(trust), rpc.WithNode(tagctx.Tag{}),
			rpc.WithObserver(func(context.Context, tagctx.Observation) {}))
		allocs := func(n int) float64 {
			ctx := metadata.NewIncomingContext(context.Background(),
				metadata.Pairs("baggage", strings.Repeat("k=v,", n/4)+"x-tag=evil", "user-agent", "x"))
			return testing.AllocsPerRun(20, func() { _, _ = icpt(ctx, nil, info, handler) })
		}
		if small, big := allocs(16<<10), allocs(1<<20); small != big || big > budget {
			t.Errorf("%+v: %v allocations for 16 KiB, %v for 1 MiB; want equal, at most %d", trust, small, big, budget)
		}
	}
}

// TestHostileAndSmallerFindings drives findings 3 and 6 of issue 11 through
// a real server and a plain client (a hostile caller runs no taglane):
// 1 MiB of baggage carrying the member serves untagged with the baggage
// gone and a short reason; under TrustNone, baggage that merely mentions
// x-tag is not a tag; an IPv4-mapped prefix trusts an IPv4 peer.
func TestHostileAndSmallerFindings(t *testing.T) {
	ctx := testCtx(t)
	big := strings.Repeat("k=v,", 1<<18) + "x-tag=evil"
	tests := []struct {
		name      string
		trust     tagctx.Trust
		md        []string
		wantTag   string
		wantWhy   string // part of Observation.Rejected; "" for none
		wantNoBag bool
	}{
		{name: "1 MiB baggage, TrustAll", trust: tagctx.TrustAll(), md: []string{"baggage", big}, wantWhy: "limit 8192", wantNoBag: true},
		{name: "1 MiB baggage, TrustNone", trust: tagctx.TrustNone(), md: []string{"baggage", big}, wantWhy: "stripped unread", wantNoBag: true},
		{name: "1 MiB baggage, TrustTags", trust: tagctx.TrustTags(tagctx.MustParse("a")), md: []string{"baggage", big}, wantWhy: "limit 8192", wantNoBag: true},
		{name: "TrustNone: x-tag-owner and note=x-tag are no tag", trust: tagctx.TrustNone(), md: []string{"baggage", "x-tag-owner=bob,note=x-tag"}},
		{name: "v4-mapped prefix trusts an IPv4 peer", trust: tagctx.TrustNetworks(netip.MustParsePrefix("::ffff:127.0.0.0/104")), md: []string{"x-tag", "a"}, wantTag: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seenBag []string
			in := startInstance(t, "s", tagctx.Tag{}, func(ctx context.Context, _ *instance) (string, error) {
				md, _ := metadata.FromIncomingContext(ctx)
				seenBag = md.Get("baggage")
				return "s", nil
			}, rpc.WithTrust(tt.trust))
			cc, err := grpc.NewClient(in.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			resp, err := testpb.NewTestServiceClient(cc).UnaryCall(metadata.AppendToOutgoingContext(ctx, tt.md...), &testpb.SimpleRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetUsername() != tt.wantTag {
				t.Errorf("served as %q, want %q", resp.GetUsername(), tt.wantTag)
			}
			if tt.wantNoBag && seenBag != nil {
				t.Errorf("handler saw %d bytes of baggage; want it dropped", len(strings.Join(seenBag, ",")))
			}
			in.mu.Lock()
			rejected := in.proofs[0].Rejected
			in.mu.Unlock()
			switch {
			case tt.wantWhy == "" && rejected != nil:
				t.Errorf("reported %v; want nothing", rejected)
			case tt.wantWhy != "" && (rejected == nil || !strings.Contains(rejected.Error(), tt.wantWhy) || len(rejected.Error()) > 300):
				t.Errorf("reported %v; want a short reason containing %q", rejected, tt.wantWhy)
			}
		})
	}
}
