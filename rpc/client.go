package rpc

import (
	"context"
	"strings"
	"sync/atomic"

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
	if outgoingKey != nil && ctx.Value(outgoingKey) == nil {
		// No outgoing metadata at all, the common case: nothing to merge
		// or remove, so what goes out depends on t alone and is built once
		// per tag (o.sent), and the call pays one allocation, the context,
		// where AppendToOutgoingContext made four.
		switch {
		case !t.IsZero():
			return context.WithValue(ctx, outgoingKey, o.sent.tagged(t))
		case mark:
			return context.WithValue(ctx, outgoingKey, o.sent.mark)
		}
		return ctx
	}
	// Neither lookup allocates when the key is absent; otelgrpc's baggage
	// is not here yet (its stats handler injects later).
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

// sentSlots sizes the cache of outgoing metadata per tag: direct-mapped,
// so a flood of distinct tags only evicts (each miss costs what every call
// cost before the cache), and memory stays fixed.
const (
	sentBits  = 6
	sentSlots = 1 << sentBits
)

// sentMD is the outgoing metadata a call with no metadata of its own
// sends, as grpc keeps it under outgoingKey: the untagged mark, and per
// tag the tag key and the bare baggage member. Shared by every call that
// sends it, so it is never modified: grpc's readers copy, and its
// transport only reads.
type sentMD struct {
	mdKey, baggageKey string
	mark              any
	slots             [sentSlots]atomic.Pointer[sentEntry]
}

type sentEntry struct {
	tag string
	raw any
}

// newSentMD returns the cache for the keys of o; nil when outgoingKey is
// unusable (clientContext then never asks it).
func newSentMD(o *options) *sentMD {
	if outgoingKey == nil {
		return nil
	}
	return &sentMD{
		mdKey:      o.mdKey,
		baggageKey: o.baggageKey,
		mark:       outgoingValue(o.mdKey, ""),
	}
}

// tagged returns the metadata sent for t, not the zero Tag.
func (s *sentMD) tagged(t tagctx.Tag) any {
	slot := &s.slots[sentSlot(t.String())]
	if e := slot.Load(); e != nil && e.tag == t.String() {
		return e.raw
	}
	// A tag parsed from a header is a substring of it: keep a copy, not
	// the header.
	str := strings.Clone(t.String())
	e := &sentEntry{tag: str, raw: outgoingValue(s.mdKey, str, tagctx.BaggageHeader, tagctx.MergeBaggage("", s.baggageKey, t))}
	slot.Store(e)
	return e.raw
}

// outgoingValue is what grpc keeps under outgoingKey for kv appended to a
// context without metadata: the form plain gRPC callers' metadata takes,
// which its transport sends without a map to walk.
func outgoingValue(kv ...string) any {
	return metadata.AppendToOutgoingContext(context.Background(), kv...).Value(outgoingKey)
}

// sentSlot hashes a tag (never empty) by its length and three of its
// bytes: a per-call cost independent of the tag's length. Tags that
// collide only take turns in the slot.
func sentSlot(s string) uint32 {
	h := uint32(len(s)) | uint32(s[0])<<8 | uint32(s[len(s)/2])<<16 | uint32(s[len(s)-1])<<24
	return (h * 0x9e3779b1) >> (32 - sentBits)
}
