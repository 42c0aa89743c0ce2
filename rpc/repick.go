package rpc

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/tagctx"
)

// Strict servers (WithStrict) refuse a misroute with codes.Unavailable and
// an errdetails.ErrorInfo of this domain and reason, whose metadata names
// the call's traffic tag ("traffic"), the server's node tag ("node") and
// the address the server accepted the connection on ("addr").
const (
	MisdirectedDomain = "taglane"
	MisdirectedReason = "MISDIRECTED"
)

// MaxRepicks bounds how often the client interceptor re-picks a unary call
// that a strict server refused: each refusal rules out one more endpoint.
const MaxRepicks = 3

// misdirected is a strict server's refusal of a call it should not serve.
func misdirected(ctx context.Context, traffic, node tagctx.Tag) error {
	msg := tagctx.Misdirected("rpc", traffic, node).Error()
	md := map[string]string{"traffic": traffic.String(), "node": node.String()}
	if p, ok := peer.FromContext(ctx); ok && p.LocalAddr != nil {
		md["addr"] = p.LocalAddr.String()
	}
	st, err := status.New(codes.Unavailable, msg+" (stale discovery?)").WithDetails(&errdetails.ErrorInfo{
		Reason:   MisdirectedReason,
		Domain:   MisdirectedDomain,
		Metadata: md,
	})
	if err != nil { // only for a detail that cannot be marshalled
		return status.Error(codes.Unavailable, msg)
	}
	return st.Err()
}

// Misdirected returns the ErrorInfo of a strict server's refusal, or nil
// if err is none.
func Misdirected(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return nil
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == MisdirectedDomain && ei.GetReason() == MisdirectedReason {
			return ei
		}
	}
	return nil
}

// avoidKey marks a call's context with the endpoints that refused it.
type avoidKey struct{}

// repicking counts the re-picked calls in flight in the process, so a pick
// looks for an avoid set in the context (a walk up its chain) only while
// some call has one: every other pick pays one atomic load.
var repicking atomic.Int32

// avoiding returns the avoid set of a re-picked call's context (call is
// true), else the addresses this picker has seen refuse calls of tag t,
// else nil.
func (p *picker) avoiding(ctx context.Context, t tagctx.Tag) (av *avoidSet, call bool) {
	if repicking.Load() > 0 {
		if av, _ := ctx.Value(avoidKey{}).(*avoidSet); av != nil {
			return av, true
		}
	}
	if m := p.refused.Load(); m != nil {
		return (*m)[t], false
	}
	return nil, false
}

// remember adds the addresses of a call's avoid set to the picker's for
// tag t, so later calls of t skip the refusing endpoints without a refusal
// each, until the picker is rebuilt (the resolver or an endpoint's state
// changed). Per tag, because whether an instance refuses depends on the
// traffic. Copied on write: picks read it without a lock.
func (p *picker) remember(t tagctx.Tag, av *avoidSet) {
	av.mu.Lock()
	addrs, why, last := slices.Clone(av.addrs), av.why, av.last
	av.mu.Unlock()
	for {
		old := p.refused.Load()
		next := make(map[tagctx.Tag]*avoidSet)
		if old != nil {
			maps.Copy(next, *old)
		}
		set := &avoidSet{why: why, last: last}
		if prev := next[t]; prev != nil {
			set.addrs = slices.Clone(prev.addrs)
		}
		grew := false
		for _, a := range addrs {
			if !slices.Contains(set.addrs, a) {
				set.addrs, grew = append(set.addrs, a), true
			}
		}
		if !grew {
			return
		}
		next[t] = set
		if p.refused.CompareAndSwap(old, &next) {
			return
		}
	}
}

// avoidSet is the addresses (host:port) a re-picked call must not go to.
type avoidSet struct {
	addrs []string
	why   string                // the last refusal, for the error when nothing is left
	last  *errdetails.ErrorInfo // and its detail, passed on in that error

	// picked is the addresses of the endpoint pickAvoiding chose last, so
	// an endpoint whose refusal names an address it is not resolved as
	// (a host name, say) is still ruled out after one more attempt.
	mu     sync.Mutex
	picked []string
}

func (a *avoidSet) has(ep []string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range ep {
		if slices.Contains(a.addrs, x) {
			return true
		}
	}
	return false
}

// repick takes the error of a unary call and, while a strict server
// refuses it as misdirected, runs the call again (at most MaxRepicks
// times) with the refusing endpoints ruled out, so it lands on the right
// instance, or the lane's fallback, or fails with the reason.
func repick(ctx context.Context, err error, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts []grpc.CallOption) error {
	var av *avoidSet
	var p peer.Peer
	for range MaxRepicks {
		ei := Misdirected(err)
		if ei == nil || ei.GetMetadata()["exhausted"] != "" {
			return err
		}
		if av == nil {
			av = &avoidSet{}
			opts = append(slices.Clip(opts), grpc.Peer(&p))
			repicking.Add(1)
			defer repicking.Add(-1)
		}
		// The address the server accepted on, which is what the resolver
		// gave unless a proxy or a host name sits between; from the second
		// attempt on, also the address gRPC connected to and the endpoint
		// pickAvoiding chose.
		av.mu.Lock()
		av.why, av.last = status.Convert(err).Message(), ei
		if a := ei.GetMetadata()["addr"]; a != "" {
			av.addrs = append(av.addrs, normalizeAddr(a))
		}
		if p.Addr != nil {
			av.addrs = append(av.addrs, normalizeAddr(p.Addr.String()))
			p = peer.Peer{}
		}
		av.addrs, av.picked = append(av.addrs, av.picked...), nil
		av.mu.Unlock()
		err = invoker(context.WithValue(ctx, avoidKey{}, av), method, req, reply, cc, opts...)
		if err == nil {
			return nil
		}
	}
	return err
}

// pickAvoiding is Pick once a strict server refused a call: the first
// READY endpoint of the chain (lane, parents, stable unless the policy is
// fail) whose address is not in av. call says av is the call's own (a
// re-pick), which the picker then remembers for later calls.
func (p *picker) pickAvoiding(info balancer.PickInfo, t tagctx.Tag, pl *plan, av *avoidSet, call bool) (balancer.PickResult, error) {
	if call {
		p.remember(t, av)
	}
	var addrs []string
	for _, g := range pl.ready {
		n := int(g.next.Add(1))
		for i := range g.pickers {
			j := (n + i) % len(g.pickers)
			addrs = addrs[:0]
			for _, a := range g.eps[j].Addresses {
				addrs = append(addrs, normalizeAddr(a.Addr))
			}
			if !av.has(addrs) {
				if call {
					av.mu.Lock()
					av.picked = append(av.picked[:0], addrs...)
					av.mu.Unlock()
				}
				return g.pickers[j].Pick(info)
			}
		}
	}
	what := "an untagged call"
	if !t.IsZero() {
		what = fmt.Sprintf("tag %q (tried %s)", t, pl.tried)
	}
	av.mu.Lock()
	defer av.mu.Unlock()
	st := status.Newf(codes.Unavailable, "rpc: no endpoint left for %s: %s refused it as misdirected; last: %s",
		what, strings.Join(slices.Compact(slices.Sorted(slices.Values(av.addrs))), ", "), av.why)
	// The refusal's detail, marked exhausted: re-picking cannot help.
	detail := &errdetails.ErrorInfo{Reason: MisdirectedReason, Domain: MisdirectedDomain, Metadata: map[string]string{"exhausted": "true"}}
	if av.last != nil {
		maps.Copy(detail.Metadata, av.last.GetMetadata())
		detail.Metadata["exhausted"] = "true"
	}
	if d, err := st.WithDetails(detail); err == nil {
		st = d
	}
	return balancer.PickResult{}, st.Err()
}

// normalizeAddr spells an IP address and port as the server reports it
// (IPv4 unmapped); anything else, such as a host name, is compared as is:
// no lookup on the pick path.
func normalizeAddr(a string) string {
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return a
}
