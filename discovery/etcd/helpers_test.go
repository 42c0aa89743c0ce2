package etcd_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/discovery/etcd/etcdtest"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

const (
	svc     = "echo"
	httpSvc = "echo-http"
	httpURL = "http://" + httpSvc + "/"
	ttl     = time.Second
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startEtcd(t testing.TB) *etcdtest.Server {
	t.Helper()
	s, err := etcdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t testing.TB, s *etcdtest.Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint()},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newRegistry(t testing.TB, c *clientv3.Client, opts ...etcd.Option) *etcd.Registry {
	t.Helper()
	reg, err := etcd.New(c, append([]etcd.Option{etcd.WithTTL(ttl)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// process is one lane instance as a process: its servers, its own etcd
// client and its registrations (gRPC under svc, HTTP under httpSvc).
type process struct {
	*lanetest.Node
	cli  *clientv3.Client
	regs []discovery.Registration
}

func startProcess(t testing.TB, s *etcdtest.Server, name, tag string, opts ...etcd.Option) *process {
	t.Helper()
	var tg tagctx.Tag
	if tag != "" {
		tg = tagctx.MustParse(tag)
	}
	p := &process{Node: lanetest.StartNode(t, name, tg), cli: newClient(t, s)}
	reg := newRegistry(t, p.cli, opts...)
	ctx := testCtx(t)
	for _, inst := range []discovery.Instance{
		{Service: svc, Addr: p.GRPCAddr, Tag: tg},
		{Service: httpSvc, Addr: p.HTTPAddr, Tag: tg},
	} {
		r, err := reg.Register(ctx, inst)
		if err != nil {
			t.Fatal(err)
		}
		p.regs = append(p.regs, r)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop is a graceful stop: deregister, then stop serving.
func (p *process) stop() error {
	var err error
	// Bounded: after a failed test etcd may be down, and Revoke waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range p.regs {
		if e := r.Close(ctx); e != nil && err == nil {
			err = e
		}
	}
	p.Node.Stop()
	return err
}

// crash stops serving and stops renewing the lease without revoking it.
func (p *process) crash() {
	p.Node.Stop()
	p.cli.Close()
}

func grpcClient(t testing.TB, reg discovery.Registry) testpb.TestServiceClient {
	t.Helper()
	b, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("taglane:///"+svc, append(rpc.DialOptions(),
		grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func httpClient(t testing.TB, reg discovery.Registry) *http.Client {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	tr, err := discovery.NewTransport(reg, []string{httpSvc}, discovery.WithBase(httpmw.Transport(base)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return &http.Client{Transport: tr}
}

// served polls until calls tagged tag are served by the named nodes only,
// over gRPC and (hc not nil) HTTP.
func served(t testing.TB, ctx context.Context, gc testpb.TestServiceClient, hc *http.Client, tag string, want ...string) {
	t.Helper()
	lanetest.Served(t, ctx, gc, hc, httpURL, tag, want...)
}
