package etcd_test

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/tagctx"
)

// keys returns how many keys the service has in etcd.
func keys(t testing.TB, c *clientv3.Client, service string) int {
	t.Helper()
	resp, err := c.Get(testCtx(t), service+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}

// TestLifecycle goes through a lane's life on a real etcd, with real gRPC
// and HTTP servers and clients: register, graceful stop, crash, lane
// definitions changed in etcd.
func TestLifecycle(t *testing.T) {
	ctx := testCtx(t)
	srv := startEtcd(t)
	cli := newClient(t, srv)
	reg := newRegistry(t, cli)
	startProcess(t, srv, "s1", "")
	a1 := startProcess(t, srv, "a1", "a")
	// Renewed every TTL/3: the lease outlives the check right after the crash.
	b1 := startProcess(t, srv, "b1", "b", etcd.WithTTL(2*ttl))
	gc, hc := grpcClient(t, reg), httpClient(t, reg)

	served(t, ctx, gc, hc, "a", "a1")
	served(t, ctx, gc, hc, "b", "b1")
	served(t, ctx, gc, hc, "", "s1")

	// Graceful stop: the keys are gone when Close returns.
	if err := a1.stop(); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, cli, svc); n != 2 {
		t.Fatalf("after a graceful stop: %d keys of %q, want 2", n, svc)
	}
	served(t, ctx, gc, hc, "a", "s1")

	// Crash: the keys stay until the lease TTL has passed.
	b1.crash()
	crashed := time.Now()
	if n := keys(t, cli, svc); n != 2 {
		t.Fatalf("right after a crash: %d keys, want 2 (the lease is not revoked)", n)
	}
	lanetest.Eventually(t, "crashed instance expired", func() error {
		if n := keys(t, cli, svc); n != 1 {
			return errors.New("still listed")
		}
		return nil
	})
	t.Logf("crashed instance gone %v after the crash (TTL %v from its last renewal)", time.Since(crashed), 2*ttl)
	served(t, ctx, gc, hc, "b", "s1")

	// Lane definitions in etcd: the next calls follow the new chain.
	startProcess(t, srv, "a2", "a")
	served(t, ctx, gc, hc, "a", "a2")
	served(t, ctx, gc, hc, "x", "s1")
	if err := reg.SetLanes(ctx, discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{tagctx.MustParse("x"): {tagctx.MustParse("a")}}}); err != nil {
		t.Fatal(err)
	}
	served(t, ctx, gc, hc, "x", "a2")
	if err := reg.SetLanes(ctx, discovery.Lanes{}); err != nil {
		t.Fatal(err)
	}
	served(t, ctx, gc, hc, "x", "s1")
}

// TestOutage: while etcd is down, clients keep routing with the last
// instances they knew; when it is back, they pick up what changed and
// registrations are still there.
func TestOutage(t *testing.T) {
	ctx := testCtx(t)
	srv := startEtcd(t)
	reg := newRegistry(t, newClient(t, srv))
	// etcd's graceful shutdown (srv.Stop, about 5s) serves the renewal
	// streams it has and expires leases: these leases live through it
	// because Register returned only once their renewals flowed (before,
	// under load, a1's stream could still be opening when Stop began, its
	// lease expired during the shutdown and tagged calls went to s1).
	const outageTTL = 3 * time.Second
	startProcess(t, srv, "s1", "", etcd.WithTTL(outageTTL))
	startProcess(t, srv, "a1", "a", etcd.WithTTL(outageTTL))
	gc, hc := grpcClient(t, reg), httpClient(t, reg)
	served(t, ctx, gc, hc, "a", "a1")
	served(t, ctx, gc, hc, "", "s1")

	srv.Stop()
	// Longer than the lease TTL, and calls go on meanwhile. The count bound
	// is far above what the time allows (2000, the bound before, took
	// 0.4s on an idle machine: an outage shorter than the TTL).
	deadline := time.Now().Add(outageTTL + time.Second)
	calls := 0
	for time.Now().Before(deadline) && calls < 200000 {
		for _, c := range []struct{ tag, want string }{{"a", "a1"}, {"", "s1"}} {
			g, _, err := lanetest.CallGRPC(ctx, gc, c.tag)
			if err != nil || g != c.want {
				t.Fatalf("gRPC tagged %q during the outage: %q, %v", c.tag, g, err)
			}
			h, _, err := lanetest.GetHTTP(ctx, hc, httpURL, c.tag)
			if err != nil || h != c.want {
				t.Fatalf("HTTP tagged %q during the outage: %q, %v", c.tag, h, err)
			}
			calls++
		}
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	startProcess(t, srv, "b1", "b")
	served(t, ctx, gc, hc, "b", "b1")
	served(t, ctx, gc, hc, "a", "a1")
	served(t, ctx, gc, hc, "", "s1")
}

// TestBadValues: keys that are not valid endpoints are left out and
// reported, never routed to as stable instances.
func TestBadValues(t *testing.T) {
	ctx := testCtx(t)
	srv := startEtcd(t)
	cli := newClient(t, srv)
	reports := make(chan error, 100)
	reg := newRegistry(t, cli, etcd.WithErrorHandler(func(err error) {
		select {
		case reports <- err:
		default:
		}
	}))
	s1 := lanetest.StartNode(t, "s1", tagctx.Tag{})
	bad := lanetest.StartNode(t, "bad", tagctx.Tag{})
	for k, v := range map[string]string{
		svc + "/" + s1.GRPCAddr:  `{"Addr":"` + s1.GRPCAddr + `"}`,
		svc + "/" + bad.GRPCAddr: `{"Addr":"` + bad.GRPCAddr + `","Metadata":{"x-tag":"NOT a tag"}}`,
		svc + "/junk":            `not json`,
	} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	gc := grpcClient(t, reg)
	for i := range 20 {
		g, _, err := lanetest.CallGRPC(ctx, gc, "")
		if err != nil || g != "s1" {
			t.Fatalf("call %d: %q, %v", i, g, err)
		}
	}
	if err := <-reports; err == nil {
		t.Fatal("no report")
	}
}
