package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/discovery/etcd/etcdtest"
	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// Every instance of the demo registers in etcd, as a lane instance does in
// the field, and every caller finds its callee there: the gRPC chain
// through the discovery resolver, the HTTP hop to pricing through the
// discovery Transport.

const (
	// leaseTTL is how long a crashed instance stays listed. etcd's
	// smallest lease with default settings is 2s.
	leaseTTL = 2 * time.Second
	// etcdPrefix keeps the demo's keys apart on a shared etcd.
	etcdPrefix = "taglane-demo/"
)

// registry is the demo's etcd: embedded unless -etcd names one.
type registry struct {
	server   *etcdtest.Server // nil with -etcd
	endpoint string
	reg      *etcd.Registry              // the callers' view
	cli      *clientv3.Client            // the callers' client
	procs    map[string]*clientv3.Client // instance -> its own client, as its own process would have
	http     *http.Transport
}

func (w *world) startRegistry(endpoint string) error {
	r := &registry{endpoint: endpoint, procs: make(map[string]*clientv3.Client), http: &http.Transport{}}
	w.closers = append(w.closers, r.close)
	w.registry = r
	if endpoint == "" {
		s, err := etcdtest.Start()
		if err != nil {
			return err
		}
		r.server, r.endpoint = s, s.Endpoint()
	}
	cli, err := r.client()
	if err != nil {
		return err
	}
	r.cli = cli
	r.reg, err = etcd.New(cli, etcd.WithPrefix(etcdPrefix), etcd.WithTTL(leaseTTL))
	return err
}

func (r *registry) client() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{r.endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", r.endpoint, err)
	}
	return cli, nil
}

func (r *registry) describe() string {
	if r.server != nil {
		return "embedded etcd " + r.endpoint
	}
	return "etcd " + r.endpoint
}

func (r *registry) close() {
	r.http.CloseIdleConnections()
	for _, c := range r.procs {
		c.Close()
	}
	if r.cli != nil {
		r.cli.Close()
	}
	if r.server != nil {
		r.server.Close()
	}
}

// register registers an instance of service at addr under a lease of its
// own client; closing that client without revoking is the instance's
// crash.
func (w *world) register(ctx context.Context, service string, node tagctx.Tag, addr string) error {
	r := w.registry
	cli, err := r.client()
	if err != nil {
		return err
	}
	r.procs[instanceName(service, node)] = cli
	reg, err := etcd.New(cli, etcd.WithPrefix(etcdPrefix), etcd.WithTTL(leaseTTL))
	if err != nil {
		return err
	}
	g, err := reg.Register(ctx, discovery.Instance{Service: service, Addr: addr, Tag: node})
	if err != nil {
		return err
	}
	w.closers = append(w.closers, func() { _ = g.Close(context.Background()) })
	return nil
}

// dial returns a connection to service that finds its instances in etcd.
func (w *world) dial(service string) (*grpc.ClientConn, error) {
	b, err := discovery.NewResolver(w.registry.reg)
	if err != nil {
		return nil, err
	}
	lanes, err := rpc.New()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("taglane:///"+service, lanes.DialOptions(
		grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, func() { _ = conn.Close() })
	return conn, nil
}

// crash stops an instance's server and its etcd client without
// deregistering, then waits until its lease has expired and etcd dropped
// it, and returns how long that took.
func (w *world) crash(ctx context.Context, service string, node tagctx.Tag, stop func()) (time.Duration, error) {
	name := instanceName(service, node)
	stop()
	w.registry.procs[name].Close()
	w.markCrashed(service, node)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, leaseTTL+30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := w.registry.cli.Get(ctx, etcdPrefix+service+"/", clientv3.WithPrefix())
		if err != nil {
			return 0, err
		}
		listed := false
		for _, kv := range resp.Kvs {
			if inst, err := etcd.ParseEndpoint(service, kv.Value); err == nil && inst.Tag == node {
				listed = true
			}
		}
		if !listed {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s still registered: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// markCrashed records that an instance crashed, so that the hops checked
// after it expect its lane's traffic at the fallback. It is the world's,
// not the process's: a test may run the demo twice in one process.
func (w *world) markCrashed(service string, node tagctx.Tag) {
	w.crashedMu.Lock()
	defer w.crashedMu.Unlock()
	if w.crashed == nil {
		w.crashed = make(map[string]bool)
	}
	w.crashed[instanceName(service, node)] = true
}

func (w *world) isCrashed(service string, node tagctx.Tag) bool {
	w.crashedMu.Lock()
	defer w.crashedMu.Unlock()
	return w.crashed[instanceName(service, node)]
}

// serveHTTPService starts an HTTP instance of a service that appends its
// hop to the trip it is posted, registers it, and returns a stop func.
func (w *world) serveHTTPService(ctx context.Context, service string, node tagctx.Tag) (func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		t := new(Trip)
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(t); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		t.Hops = append(t.Hops, hopOf(r.Context(), service, node, "http"))
		_ = json.NewEncoder(rw).Encode(t)
	})
	mw, err := httpmw.New(httpmw.WithNode(node), httpmw.WithObserver(w.ledger.observe))
	if err != nil {
		lis.Close()
		return nil, err
	}
	srv := &http.Server{Handler: mw(h), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	stop := func() { _ = srv.Close() }
	w.closers = append(w.closers, stop)
	return stop, w.register(ctx, service, node, lis.Addr().String())
}

// httpCaller returns the client of HTTP service calls: requests for
// http://<service>/ go to an instance of the caller's lane through etcd,
// and httpmw sends the tag on.
func (w *world) httpCaller(services ...string) (*http.Client, error) {
	tagging, err := httpmw.NewTransport(w.registry.http)
	if err != nil {
		return nil, err
	}
	tr, err := discovery.NewTransport(w.registry.reg, services, discovery.WithBase(tagging))
	if err != nil {
		return nil, err
	}
	w.closers = append(w.closers, tr.Close)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// callHTTP posts the trip to service and returns it with the hops added.
func callHTTP(ctx context.Context, c *http.Client, service string, t *Trip) (*Trip, error) {
	body, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	// bytes.Reader: the request can be sent again to another instance if
	// the first is unreachable.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+service+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, errors.New(resp.Status + ": " + string(b))
	}
	out := new(Trip)
	return out, json.NewDecoder(resp.Body).Decode(out)
}
