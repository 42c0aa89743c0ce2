package rpc

import (
	"context"
	"reflect"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// grpc's metadata package keeps a call's metadata in its context under two
// unexported keys, and its exported readers copy: FromIncomingContext
// copies every entry, ValueFromIncomingContext the values it finds, and
// for an absent key it scans the whole map with strings.EqualFold, so the
// untagged call, the common one, paid for two such scans. The interceptors
// read the metadata in place instead, under the keys grpc itself asks a
// context for (learnt once by handing its readers a context that records
// the key). Each key is checked by a round trip through grpc's own
// constructors and readers before it is used; if grpc ever stores metadata
// another way, the check fails and the interceptors use the exported
// readers, slower and still right.
var (
	// incomingKey finds the metadata.MD a server received, nil if unusable.
	incomingKey = learnIncomingKey()
	// outgoingKey finds the outgoing metadata, nil if unusable. Its value
	// is of an unexported grpc type: only tested for presence, or set to
	// a value grpc itself built (sentMD).
	outgoingKey = learnOutgoingKey()
)

// keySpy is a context that records the first key it is asked for.
type keySpy struct {
	context.Context
	key any
}

func (s *keySpy) Value(key any) any {
	if s.key == nil {
		s.key = key
	}
	return nil
}

// spyKey returns the key read asks its context for, if it is one that can
// index a context (comparable) and read asked for exactly one.
func spyKey(read func(context.Context)) any {
	spy := &keySpy{Context: context.Background()}
	read(spy)
	if spy.key == nil || !reflect.TypeOf(spy.key).Comparable() {
		return nil
	}
	return spy.key
}

func learnIncomingKey() any {
	key := spyKey(func(ctx context.Context) { metadata.ValueFromIncomingContext(ctx, "x") })
	if key == nil {
		return nil
	}
	// The value under key must be the very map NewIncomingContext was
	// given, not a copy: a later entry shows through.
	md := metadata.MD{"taglane-probe": {"1"}}
	got, ok := metadata.NewIncomingContext(context.Background(), md).Value(key).(metadata.MD)
	if !ok {
		return nil
	}
	md["taglane-probe-2"] = []string{"2"}
	if len(got) != 2 || len(got["taglane-probe-2"]) != 1 {
		return nil
	}
	return key
}

func learnOutgoingKey() any {
	key := spyKey(func(ctx context.Context) { metadata.ValueFromOutgoingContext(ctx, "x") })
	if key == nil {
		return nil
	}
	// A value taken from one context and put under key into another must
	// carry the same metadata there: that is how clientContext reuses one.
	src := metadata.AppendToOutgoingContext(context.Background(), "taglane-probe", "1", "taglane-probe", "2")
	v := src.Value(key)
	if v == nil || context.Background().Value(key) != nil {
		return nil
	}
	md, ok := metadata.FromOutgoingContext(context.WithValue(context.Background(), key, v))
	if !ok || len(md) != 1 || strings.Join(md["taglane-probe"], ",") != "1,2" {
		return nil
	}
	return key
}

// incomingPair returns the values of keys a and b (lower case) in the
// metadata ctx received, as metadata.ValueFromIncomingContext would, but
// not copied: the caller must not modify them.
func incomingPair(ctx context.Context, a, b string) (av, bv []string) {
	if incomingKey == nil {
		return metadata.ValueFromIncomingContext(ctx, a), metadata.ValueFromIncomingContext(ctx, b)
	}
	md, _ := ctx.Value(incomingKey).(metadata.MD)
	av, aok := md[a]
	bv, bok := md[b]
	if aok && bok || len(md) == 0 || fromTransport(ctx, md) {
		return av, bv
	}
	// A map built in process (an interceptor's or a test's) may spell a
	// key otherwise, and grpc's readers match keys in any case: one pass
	// for both keys, where ValueFromIncomingContext made one per key.
	// Only a key of the right length is compared.
	for k, v := range md {
		switch {
		case !aok && len(k) == len(a) && strings.EqualFold(k, a):
			av, aok = v, true
		case !bok && len(k) == len(b) && strings.EqualFold(k, b):
			bv, bok = v, true
		}
		if aok && bok {
			break
		}
	}
	return av, bv
}

// contextStream is what grpc's server transport stream offers beyond
// grpc.ServerTransportStream: its context, which carries the metadata the
// transport received.
type contextStream interface {
	Context() context.Context
}

// fromTransport reports whether md is the very map grpc's server
// transport received for the call of ctx, rather than one an interceptor
// or a test put there. Its keys are lower case: the HTTP/2 framer refuses
// a header name with an upper-case letter, and the net/http transport
// (ServeHTTP) lowercases them. So a key absent from it is absent in every
// spelling, and the scan for other spellings, the larger part of an
// untagged call's cost, can be skipped. Two short context walks: grpc
// puts the stream near the top of the handler's context, and the
// metadata near the top of the stream's.
func fromTransport(ctx context.Context, md metadata.MD) bool {
	st, ok := grpc.ServerTransportStreamFromContext(ctx).(contextStream)
	if !ok {
		return false
	}
	sctx := st.Context()
	if sctx == nil {
		return false
	}
	tmd, _ := sctx.Value(incomingKey).(metadata.MD)
	return tmd != nil && reflect.ValueOf(tmd).UnsafePointer() == reflect.ValueOf(md).UnsafePointer()
}
