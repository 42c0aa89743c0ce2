package etcd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/tagctx"
)

// heldRenewals returns a client whose lease renewal streams do not open
// until release is called: what a registrant sees when etcd refuses new
// streams (a graceful shutdown) right after it granted the lease and wrote
// the key.
func heldRenewals(t *testing.T, endpoint string) (c *clientv3.Client, release func()) {
	t.Helper()
	held := make(chan struct{})
	hold := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == "/etcdserverpb.Lease/LeaseKeepAlive" {
			select {
			case <-held:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithStreamInterceptor(hold)},
	})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			close(held)
		}
	}
	t.Cleanup(func() { release(); c.Close() })
	return c, release
}

// TestRegisterWaitsForRenewal: Register returns only once the lease is
// being renewed. Before, it returned when the key was written, and a
// lease whose renewal stream never opened expired under a registration
// the caller believed in.
func TestRegisterWaitsForRenewal(t *testing.T) {
	srv := startEtcd(t)
	cli := newClient(t, srv)
	held, release := heldRenewals(t, srv.Endpoint())
	reg := newRegistry(t, held)
	inst := discovery.Instance{Service: svc, Addr: "127.0.0.1:1", Tag: tagctx.MustParse("a")}

	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	r, err := reg.Register(ctx, inst)
	if err == nil {
		r.Close(testCtx(t))
		t.Fatal("Register returned with no renewal of its lease")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "etcd: register ") {
		t.Fatalf("Register: %v, want an etcd: register error wrapping the deadline", err)
	}
	// Nothing left behind: the key went with its revoked lease.
	if n := keys(t, cli, svc); n != 0 {
		t.Fatalf("after a failed Register: %d keys, want 0", n)
	}

	// Once renewals get through, Register works on the same client.
	release()
	r, err = reg.Register(testCtx(t), inst)
	if err != nil {
		t.Fatal(err)
	}
	if n := keys(t, cli, svc); n != 1 {
		t.Fatalf("registered: %d keys, want 1", n)
	}
	if err := r.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, cli, svc); n != 0 {
		t.Fatalf("after Close: %d keys, want 0", n)
	}
}
