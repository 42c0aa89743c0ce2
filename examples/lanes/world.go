package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// The topology: which services exist and which lanes have an instance of
// them. Everything else about the demo follows from this table.
var (
	laneX = tagctx.MustParse("feature-x")
	laneY = tagctx.MustParse("feature-y")

	// gateway (HTTP) -> orders -> stock -> billing (gRPC; the last hop streams),
	// and orders publishes to RocketMQ, consumed by notifier.
	topology = []service{
		{name: "gateway", lanes: nil},
		{name: "orders", lanes: []tagctx.Tag{laneX}},
		{name: "stock", lanes: nil},
		{name: "billing", lanes: []tagctx.Tag{laneY}},
		{name: "notifier", lanes: []tagctx.Tag{laneX}},
	}
)

type service struct {
	name  string
	lanes []tagctx.Tag // lanes with an instance besides the stable one
}

func lookupService(name string) service {
	for _, s := range topology {
		if s.name == name {
			return s
		}
	}
	panic("unknown service " + name)
}

// expectedNode is the node tag of the instance that must serve traffic
// tagged t on service s: its lane's instance, else stable.
func expectedNode(s string, t tagctx.Tag) tagctx.Tag {
	if slices.Contains(lookupService(s).lanes, t) {
		return t
	}
	return tagctx.Tag{}
}

func instanceName(service string, node tagctx.Tag) string {
	if node.IsZero() {
		return service + "@stable"
	}
	return service + "@" + node.String()
}

// ledger collects every route proof the entry points report.
type ledger struct {
	mu        sync.Mutex
	hops      int
	fallbacks int
	rejected  []string
	misroutes []string
}

func (l *ledger) observe(_ context.Context, o tagctx.Observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hops++
	switch o.Route {
	case tagctx.RouteFallback:
		l.fallbacks++
	case tagctx.RouteMisroute:
		l.misroutes = append(l.misroutes, fmt.Sprintf("%s %s: traffic %q served by node %q", o.Transport, o.Operation, o.Traffic, o.Node))
	}
	if o.Rejected != nil {
		l.rejected = append(l.rejected, o.Rejected.Error())
	}
}

// observeBatch is the RocketMQ consumers' observer: it reports once per
// handled batch, so it collects misroutes and rejected tags only; the
// handler counts the batch's hops with messageHops.
func (l *ledger) observeBatch(_ context.Context, o tagctx.Observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.Route == tagctx.RouteMisroute {
		l.misroutes = append(l.misroutes, fmt.Sprintf("%s %s: traffic %q served by node %q", o.Transport, o.Operation, o.Traffic, o.Node))
	}
	if o.Rejected != nil {
		l.rejected = append(l.rejected, o.Rejected.Error())
	}
}

// messageHops counts n handled messages as n hops.
func (l *ledger) messageHops(n int, fallback bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hops += n
	if fallback {
		l.fallbacks += n
	}
}

// instance is one running copy of a service.
type instance struct {
	service string
	node    tagctx.Tag
	next    func(ctx context.Context, t *Trip) (*Trip, error) // the downstream call, nil for the last hop
	after   func(ctx context.Context, t *Trip) error          // work after the downstream call (publishing)
}

func (i *instance) Call(ctx context.Context, t *Trip) (*Trip, error) {
	t.Hops = append(t.Hops, hopOf(ctx, i.service, i.node, viaOf(ctx)))
	var err error
	if i.next != nil {
		if t, err = i.next(ctx, t); err != nil {
			return nil, err
		}
	}
	if i.after != nil {
		if err := i.after(ctx, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func hopOf(ctx context.Context, service string, node tagctx.Tag, via string) Hop {
	traffic := tagctx.From(ctx)
	return Hop{
		Service:  service,
		Instance: instanceName(service, node),
		Traffic:  traffic.String(),
		Node:     node.String(),
		Route:    tagctx.Decide(traffic, node).String(),
		Via:      via,
	}
}

// world is the running demo: servers, connections and what they observed.
type world struct {
	ledger  ledger
	closers []func()
}

func (w *world) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// serveGRPC starts one gRPC instance on loopback and returns its address.
func (w *world) serveGRPC(inst *instance) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := grpc.NewServer(rpc.ServerOptions(rpc.WithNode(inst.node), rpc.WithObserver(w.ledger.observe))...)
	srv.RegisterService(&hopService, inst)
	go func() { _ = srv.Serve(lis) }()
	w.closers = append(w.closers, srv.Stop)
	return lis.Addr().String(), nil
}

// startService starts the stable instance and every lane instance of a gRPC
// service and returns a connection that routes by lane, as a caller of the
// service would have.
func (w *world) startService(name string, mk func(node tagctx.Tag) *instance) (*grpc.ClientConn, error) {
	s := lookupService(name)
	var eps []resolver.Endpoint
	for _, node := range append([]tagctx.Tag{{}}, s.lanes...) {
		addr, err := w.serveGRPC(mk(node))
		if err != nil {
			return nil, err
		}
		eps = append(eps, rpc.WithEndpointTag(resolver.Endpoint{Addresses: []resolver.Address{{Addr: addr}}}, node))
	}
	r := manual.NewBuilderWithScheme("demo-" + name)
	r.InitialState(resolver.State{Endpoints: eps})
	conn, err := grpc.NewClient(r.Scheme()+":///"+name, append(rpc.DialOptions(),
		grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = conn.Close() })
	return conn, nil
}

// serveHTTP starts the gateway on loopback.
func (w *world) serveHTTP(h http.Handler) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: httpmw.Handler(h,
		httpmw.WithHostPattern("app-{tag}.test.example.com"),
		httpmw.WithNode(tagctx.Tag{}),
		httpmw.WithObserver(w.ledger.observe))}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	w.closers = append(w.closers, func() { _ = srv.Close() })
	return "http://" + lis.Addr().String(), nil
}
