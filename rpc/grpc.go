package rpc

import (
	"encoding/json"

	"google.golang.org/grpc"
)

// ServiceConfig returns a service config, in JSON, that selects the lane
// balancer with the fallback policy and parent chains of opts
// (WithFallback, WithParents).
func ServiceConfig(opts ...Option) string {
	o := newOptions(opts)
	cfg := lbConfig{Fallback: o.fallback}
	if len(o.parents) > 0 {
		cfg.Parents = make(map[string][]string, len(o.parents))
		for lane, parents := range o.parents {
			chain := make([]string, len(parents))
			for i, p := range parents {
				chain[i] = p.String()
			}
			cfg.Parents[lane.String()] = chain
		}
	}
	js, err := json.Marshal(map[string]any{
		"loadBalancingConfig": []map[string]any{{Name: cfg}},
	})
	if err != nil {
		panic("rpc: marshal service config: " + err.Error()) // plain strings and maps cannot fail
	}
	return string(js)
}

// DialOptions returns what a client needs: the client interceptors and,
// as the default service config, the lane balancer. A service config from
// the resolver replaces the default one; it must then select the balancer
// itself (see Name).
func DialOptions(opts ...Option) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(UnaryClientInterceptor(opts...)),
		grpc.WithChainStreamInterceptor(StreamClientInterceptor(opts...)),
		grpc.WithDefaultServiceConfig(ServiceConfig(opts...)),
	}
}

// ServerOptions returns the server interceptors, unary and streaming.
func ServerOptions(opts ...Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(opts...)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(opts...)),
	}
}
