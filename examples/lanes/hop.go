package main

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// The demo's gRPC services share one hand-written service, so the demo needs
// no generated code: each hop appends itself to the Trip it was given and
// passes it on, and the response carries the whole path back.

// Trip is a request on its way through the services.
type Trip struct {
	ID   int   `json:"id"`
	Hops []Hop `json:"hops"`
}

// Hop is one instance's proof that it served a request or a message.
type Hop struct {
	Service  string `json:"service"`
	Instance string `json:"instance"`
	Traffic  string `json:"traffic"`
	Node     string `json:"node"`
	Route    string `json:"route"`
	Via      string `json:"via"` // http, grpc-unary, grpc-stream, rocketmq
	// HandedOver: a message stable skipped while its lane was online,
	// handed to stable after the lane went offline (mq.HandedOver).
	HandedOver bool `json:"handedOver,omitempty"`
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) Name() string                       { return "json" }

func init() { encoding.RegisterCodec(jsonCodec{}) }

// hopper is the server side of the demo service.
type hopper interface {
	Call(ctx context.Context, t *Trip) (*Trip, error)
}

const (
	serviceName  = "taglane.demo.Hop"
	callMethod   = "/" + serviceName + "/Call"
	streamMethod = "/" + serviceName + "/Stream"
)

var hopService = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*hopper)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(Trip)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(hopper).Call(withVia(ctx, "grpc-unary"), req.(*Trip))
			}
			if icpt == nil {
				return call(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: callMethod}, call)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(Trip)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			out, err := srv.(hopper).Call(withVia(stream.Context(), "grpc-stream"), in)
			if err != nil {
				return err
			}
			return stream.SendMsg(out)
		},
	}},
}

type viaKey struct{}

func withVia(ctx context.Context, via string) context.Context {
	return context.WithValue(ctx, viaKey{}, via)
}

func viaOf(ctx context.Context) string {
	v, _ := ctx.Value(viaKey{}).(string)
	return v
}

// callUnary and callStream are the client side.
func callUnary(ctx context.Context, cc grpc.ClientConnInterface, t *Trip) (*Trip, error) {
	out := new(Trip)
	err := cc.Invoke(ctx, callMethod, t, out, grpc.CallContentSubtype("json"))
	return out, err
}

func callStream(ctx context.Context, cc grpc.ClientConnInterface, t *Trip) (*Trip, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := cc.NewStream(ctx, &hopService.Streams[0], streamMethod, grpc.CallContentSubtype("json"))
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(t); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	out := new(Trip)
	if err := s.RecvMsg(out); err != nil {
		return nil, err
	}
	return out, nil
}
