package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/tagctx"
)

// UnaryClientInterceptor is New(opts...).UnaryClientInterceptor() for
// options known to be valid; it panics otherwise.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	return must(opts).UnaryClientInterceptor()
}

// StreamClientInterceptor is New(opts...).StreamClientInterceptor() for
// options known to be valid; it panics otherwise.
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	return must(opts).StreamClientInterceptor()
}

// UnaryClientInterceptor returns an interceptor that sends the effective tag
// of the call's context (tagctx.Effective) as metadata "x-tag" and as W3C
// baggage member "x-tag", merged into any baggage already there. Other
// metadata is left as it is, and the caller's metadata is never written:
// a changed copy goes out instead. An untagged call on a stable node adds
// nothing and allocates nothing, unless the caller put baggage in its
// outgoing metadata: that is read (one copy) to remove a stale tag member.
func (l *Lanes) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	o := l.o
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		ctx = o.clientContext(ctx)
		err := invoker(ctx, method, req, reply, cc, callOpts...)
		if err == nil {
			return nil
		}
		return repick(ctx, err, method, req, reply, cc, invoker, callOpts)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streams.
func (l *Lanes) StreamClientInterceptor() grpc.StreamClientInterceptor {
	o := l.o
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(o.clientContext(ctx), desc, cc, method, callOpts...)
	}
}

// clientContext returns ctx with outgoing metadata that carries exactly
// the effective tag, or the untagged mark (an empty value) when ctx carries
// an explicit untagged decision.
func (o *options) clientContext(ctx context.Context) context.Context {
	t, decided := tagctx.Lookup(ctx)
	if !decided {
		t = tagctx.Node()
	}
	mark := decided && t.IsZero()
	// Neither lookup allocates when the key is absent, the common case;
	// otelgrpc's baggage is not here yet (its stats handler injects later).
	tagVals := metadata.ValueFromOutgoingContext(ctx, o.mdKey)
	bagVals := metadata.ValueFromOutgoingContext(ctx, tagctx.BaggageHeader)
	if t.IsZero() {
		// A tag the caller copied into its metadata (forwarding what it
		// received, say) must not outvote the context's untagged decision
		// at the next hop.
		has, err := tagctx.HasMember(bagVals, o.baggageKey)
		if !has && err == nil {
			switch {
			case !mark && len(tagVals) == 0:
				return ctx
			case mark && len(tagVals) == 0:
				return metadata.AppendToOutgoingContext(ctx, o.mdKey, "")
			case mark && len(tagVals) == 1 && tagVals[0] == "":
				return ctx
			}
		}
	} else if len(tagVals) == 0 && len(bagVals) == 0 {
		s := t.String()
		// MergeBaggage of nothing is the bare member, cached for the default key.
		return metadata.AppendToOutgoingContext(ctx, o.mdKey, s, tagctx.BaggageHeader, tagctx.MergeBaggage("", o.baggageKey, t))
	}
	md, _ := metadata.FromOutgoingContext(ctx) // a copy: the caller's stays as it was
	switch {
	case mark:
		md.Set(o.mdKey, "")
	case t.IsZero():
		md.Delete(o.mdKey)
	default:
		md.Set(o.mdKey, t.String())
	}
	// Several baggage values are one list (W3C joins them with commas);
	// one merged value keeps a single x-tag member, within what a
	// conforming reader accepts.
	merged := tagctx.MergeBaggageValues(bagVals, o.baggageKey, t)
	if merged == "" {
		md.Delete(tagctx.BaggageHeader)
	} else {
		md.Set(tagctx.BaggageHeader, merged)
	}
	return metadata.NewOutgoingContext(ctx, md)
}
