package rpc

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
)

// Lanes is one resolved option list: the interceptors, the grpc options
// that install them and the service config that selects the lane
// balancer, all agreeing on the wire names, trust and lane definitions.
// Build it once per process (or per lane instance) with New; it is
// immutable and safe for concurrent use.
type Lanes struct {
	o  *options
	sc string
}

// New validates opts and returns the lanes they describe. An invalid
// option (WithMetadataKey, WithBaggageKey, WithFallback, WithParents) is
// returned as an error naming it and quoting the bad value; nothing
// panics.
func New(opts ...Option) (*Lanes, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	o.sent = newSentMD(o)
	sc := serviceConfig(o)
	// The balancer parses the same JSON when a client is built; checking
	// it here makes a bad config this constructor's error, not a
	// grpc.NewClient failure far from its cause.
	var raw struct {
		LB []map[string]json.RawMessage `json:"loadBalancingConfig"`
	}
	if err := json.Unmarshal([]byte(sc), &raw); err != nil {
		return nil, fmt.Errorf("rpc: service config: %w", err)
	}
	if _, err := parseConfig(raw.LB[0][Name]); err != nil {
		return nil, err
	}
	return &Lanes{o: o, sc: sc}, nil
}

// must is New for the must-style helpers, whose options are constants of
// the program, as regexp.MustCompile's pattern.
func must(opts []Option) *Lanes {
	l, err := New(opts...)
	if err != nil {
		panic(err)
	}
	return l
}

// ServiceConfig returns a service config, in JSON, that selects the lane
// balancer with the fallback policy and parent chains of the options
// (WithFallback, WithParents).
func (l *Lanes) ServiceConfig() string { return l.sc }

// DialOptions returns what a client needs, followed by extra: the client
// interceptors and, as the default service config, the lane balancer. A
// service config from the resolver replaces the default one; it must then
// select the balancer itself (see Name).
func (l *Lanes) DialOptions(extra ...grpc.DialOption) []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithChainUnaryInterceptor(l.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(l.StreamClientInterceptor()),
		grpc.WithDefaultServiceConfig(l.sc),
	}, extra...)
}

// ServerOptions returns the server interceptors, unary and streaming,
// followed by extra.
func (l *Lanes) ServerOptions(extra ...grpc.ServerOption) []grpc.ServerOption {
	return append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(l.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(l.StreamServerInterceptor()),
	}, extra...)
}

func serviceConfig(o *options) string {
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

// ServiceConfig is New(opts...).ServiceConfig() for options known to be
// valid; it panics otherwise.
func ServiceConfig(opts ...Option) string { return must(opts).sc }

// DialOptions is New(opts...).DialOptions() for options known to be valid;
// it panics otherwise. Prefer New, whose DialOptions also takes the other
// dial options, so no append(...)... is needed.
func DialOptions(opts ...Option) []grpc.DialOption { return must(opts).DialOptions() }

// ServerOptions is New(opts...).ServerOptions() for options known to be
// valid; it panics otherwise.
func ServerOptions(opts ...Option) []grpc.ServerOption { return must(opts).ServerOptions() }
