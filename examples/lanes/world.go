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
	// then orders -> pricing (HTTP, routed through the registry), and orders
	// publishes to RocketMQ, consumed by notifier.
	topology = []service{
		{name: "gateway", lanes: nil},
		{name: "orders", lanes: []tagctx.Tag{laneX}},
		{name: "stock", lanes: nil},
		{name: "billing", lanes: []tagctx.Tag{laneY}},
		{name: "pricing", lanes: []tagctx.Tag{laneX}},
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
func (w *world) expectedNode(s string, t tagctx.Tag) tagctx.Tag {
	if w.isCrashed(s, t) {
		return tagctx.Tag{} // its lease expired: the lane has no instance any more
	}
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
	ledger   ledger
	closers  []func()
	registry *registry
	stops    map[string]func() // instance name -> stop its server

	crashedMu sync.Mutex
	crashed   map[string]bool // instance names; see markCrashed
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
	lanes, err := rpc.New(rpc.WithNode(inst.node), rpc.WithObserver(w.ledger.observe))
	if err != nil {
		lis.Close()
		return "", err
	}
	srv := grpc.NewServer(lanes.ServerOptions()...)
	srv.RegisterService(&hopService, inst)
	go func() { _ = srv.Serve(lis) }()
	w.closers = append(w.closers, srv.Stop)
	if w.stops == nil {
		w.stops = make(map[string]func())
	}
	w.stops[instanceName(inst.service, inst.node)] = srv.Stop
	return lis.Addr().String(), nil
}

// startService starts the stable instance and every lane instance of a gRPC
// service, registers each in etcd, and returns a connection that finds
// them there and routes by lane, as a caller of the service would have.
func (w *world) startService(ctx context.Context, name string, mk func(node tagctx.Tag) *instance) (*grpc.ClientConn, error) {
	s := lookupService(name)
	for _, node := range append([]tagctx.Tag{{}}, s.lanes...) {
		addr, err := w.serveGRPC(mk(node))
		if err != nil {
			return nil, err
		}
		if err := w.register(ctx, name, node, addr); err != nil {
			return nil, err
		}
	}
	return w.dial(name)
}

// serveHTTP starts the gateway on loopback.
func (w *world) serveHTTP(h http.Handler) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mw, err := httpmw.New(
		httpmw.WithHostPattern("app-{tag}.test.example.com"),
		httpmw.WithNode(tagctx.Tag{}),
		httpmw.WithObserver(w.ledger.observe))
	if err != nil {
		lis.Close()
		return "", err
	}
	srv := &http.Server{Handler: mw(h)}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	w.closers = append(w.closers, func() { _ = srv.Close() })
	return "http://" + lis.Addr().String(), nil
}
