package rpc

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"go.opentelemetry.io/otel/baggage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/tagctx"
)

// transport is the Observation.Transport of gRPC hops.
const transport = "grpc"

// ErrUntrusted is matched (errors.Is) by Observation.Rejected when the
// trust policy refused an inbound tag, as opposed to an invalid one
// (tagctx.ErrInvalidTag) or metadata over the limits (tagctx.ErrLimit).
// It is tagctx.ErrUntrusted, so one errors.Is works for every entry point.
var ErrUntrusted = tagctx.ErrUntrusted

// ErrMisdirected is matched by Observation.Rejected when WithStrict
// refused a call this instance should not serve. It is
// tagctx.ErrMisdirected.
var ErrMisdirected = tagctx.ErrMisdirected

// errStripped is the refusal under tagctx.TrustNone, prebuilt: it is
// reported without parsing what was stripped.
var errStripped = fmt.Errorf("rpc: inbound tag %w: this entry point strips inbound tags", ErrUntrusted)

// UnaryServerInterceptor is New(opts...).UnaryServerInterceptor() for
// options known to be valid; it panics otherwise.
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	return must(opts).UnaryServerInterceptor()
}

// StreamServerInterceptor is New(opts...).StreamServerInterceptor() for
// options known to be valid; it panics otherwise.
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	return must(opts).StreamServerInterceptor()
}

// UnaryServerInterceptor returns an interceptor that puts the traffic tag of
// each call (metadata key "x-tag", else W3C baggage member "x-tag") into the
// handler's context, applies the trust and invalid-tag policies, and records
// the route proof (span attributes and WithObserver).
func (l *Lanes) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	o := l.o
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := o.serverContext(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams: the
// handler finds the tag in ServerStream.Context().
func (l *Lanes) StreamServerInterceptor() grpc.StreamServerInterceptor {
	o := l.o
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		orig := ss.Context()
		ctx, err := o.serverContext(orig, info.FullMethod)
		if err != nil {
			return err
		}
		if ctx != orig {
			ss = &serverStream{ServerStream: ss, ctx: ctx}
		}
		return handler(srv, ss)
	}
}

// serverStream hands the handler the context that carries the tag.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// serverContext decides the traffic tag of one call and returns the
// handler's context. A non-nil error is the status to fail the call with.
func (o *options) serverContext(ctx context.Context, method string) (context.Context, error) {
	// Read in place (see incomingPair): the values are not ours to modify,
	// and untagged calls stay free of allocations.
	tagVals, bagVals := incomingPair(ctx, o.mdKey, tagctx.BaggageHeader)

	var (
		traffic  tagctx.Tag
		decided  bool // a tag or the untagged mark came in: forward the decision
		rejected error
	)
	switch {
	case len(tagVals) == 0 && len(bagVals) == 0:
		// Untagged: the common case, decided without parsing.
	case o.trust.Strips():
		// A production edge: whatever came in, valid or not, is not this
		// caller's to choose. Only the untagged mark is no tag.
		if nonEmpty(tagVals) {
			rejected = errStripped
		} else if has, err := tagctx.HasMember(bagVals, o.baggageKey); err != nil {
			rejected = fmt.Errorf("rpc: inbound baggage %w, stripped unread: %w", ErrUntrusted, err)
		} else if has {
			rejected = errStripped
		}
	default:
		t, found, err := tagctx.Extract(tagVals, bagVals, o.baggageKey)
		switch {
		case err != nil:
			if o.reject {
				o.record(ctx, method, tagctx.Tag{}, o.nodeTag(), 0, err)
				return nil, status.Error(codes.InvalidArgument, "rpc: tag not accepted: "+err.Error())
			}
			rejected = err
		case found && t.IsZero():
			decided = true // the untagged mark
		case found:
			// TrustAll believes every tag: no need to look up the peer,
			// a walk up the context chain.
			if o.trust.AcceptsAll() {
				traffic = t
			} else if err := o.trust.Check(t, peerAddr(ctx)); err != nil {
				rejected = fmt.Errorf("rpc: %w", err)
			} else {
				traffic = t
			}
		}
	}
	if rejected != nil {
		ctx = o.scrubMetadata(ctx)
	}
	// otelgrpc may have put the caller's member into the context's
	// OpenTelemetry baggage, which its client side sends on: it must say
	// what was decided. Only a call with baggage can have put it there.
	if len(bagVals) > 0 {
		ctx = o.alignBaggage(ctx, traffic)
	}

	// A stable node needs no explicit untagged mark when no decision came
	// in and the trust policy accepts every tag: Effective is the zero Tag
	// either way, and skipping it keeps untagged calls on stable nodes free
	// of allocations. Any other decision is final and is marked, so the
	// client interceptor writes the untagged mark on outgoing calls. A lane
	// node must mark it, or outgoing calls would take the node tag and
	// pull stable traffic into the lane.
	if !traffic.IsZero() || decided || rejected != nil || !o.trust.AcceptsAll() ||
		!tagctx.Effective(ctx).IsZero() {
		ctx = tagctx.With(ctx, traffic)
	}
	node := o.nodeTag()
	var route tagctx.Route
	if traffic.IsZero() {
		route = tagctx.Decide(traffic, node)
	} else {
		route = tagctx.Decide(traffic, node, o.parentsOf(traffic)...)
	}
	if o.strict && route == tagctx.RouteMisroute {
		// Refused: served by no lane, so no misroute; the observer hears
		// why, with any refused tag too.
		why := tagctx.Misdirected("rpc", traffic, node)
		if rejected != nil {
			why = fmt.Errorf("%w (%w)", why, rejected)
		}
		o.record(ctx, method, traffic, node, 0, why)
		return nil, misdirected(ctx, traffic, node)
	}
	o.record(ctx, method, traffic, node, route, rejected)
	return ctx, nil
}

func nonEmpty(vals []string) bool {
	for _, v := range vals {
		if v != "" {
			return true
		}
	}
	return false
}

func (o *options) record(ctx context.Context, method string, traffic, node tagctx.Tag, route tagctx.Route, rejected error) {
	tagctx.Record(ctx, tagctx.Observation{
		Transport: transport,
		Operation: method,
		Traffic:   traffic,
		Node:      node,
		Route:     route, // zero ("unknown") for a rejected call: nothing served it
		Rejected:  rejected,
	}, o.observer)
}

// scrubMetadata removes a tag that was not accepted from the incoming
// metadata, so the handler's view agrees with its context and a handler
// that forwards what it received cannot pass the tag on. Baggage over the
// limits, which no conforming reader accepts, is dropped unread.
func (o *options) scrubMetadata(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx) // a copy: ours to edit
	if !ok {
		return ctx
	}
	md.Delete(o.mdKey)
	if vals := md.Get(tagctx.BaggageHeader); tagctx.CheckBaggage(vals) != nil {
		md.Delete(tagctx.BaggageHeader) // over the limits: every conforming reader ignores it whole
	} else if len(vals) > 0 {
		if rest := tagctx.MergeBaggageValues(vals, o.baggageKey, tagctx.Tag{}); rest == "" {
			md.Delete(tagctx.BaggageHeader)
		} else {
			md.Set(tagctx.BaggageHeader, rest)
		}
	}
	return metadata.NewIncomingContext(ctx, md)
}

// alignBaggage makes the tag member of the context's OpenTelemetry
// baggage say traffic (removed for the zero Tag). Free when it already does.
func (o *options) alignBaggage(ctx context.Context, traffic tagctx.Tag) context.Context {
	b := baggage.FromContext(ctx)
	if b.Len() == 0 {
		return ctx
	}
	if m := b.Member(o.baggageKey); m.Key() != "" && m.Value() != traffic.String() {
		if nb, err := tagctx.ToBaggage(b, o.baggageKey, traffic); err == nil {
			return baggage.ContextWithBaggage(ctx, nb)
		}
		return baggage.ContextWithBaggage(ctx, b.DeleteMember(o.baggageKey))
	}
	return ctx
}

// peerAddr returns the caller's IP, invalid when unknown (network trust then
// refuses).
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
