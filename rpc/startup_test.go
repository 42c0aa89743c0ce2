package rpc_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// TestStartupWait: a resolver that publishes a service's lane instances
// before its stable ones must not fail the first untagged calls with "no
// ready stable endpoint": they wait for the stable instance, and only a
// chain still empty after rpc.StartupWait fails, with its reason.
func TestStartupWait(t *testing.T) {
	ctx := testCtx(t)
	s1 := startInstance(t, "s1", tagctx.Tag{}, nil)
	a1 := startInstance(t, "a1", tagctx.MustParse("a"), nil)
	c, r := dial(t, nil, a1) // lane first, as a slow resolver would
	done := make(chan error, 1)
	var srv string
	go func() {
		var err error
		srv, _, err = unary(ctx, c, "")
		done <- err
	}()
	// The call is queued (it cannot have been served: stable is not
	// published yet); a1 being READY proves the channel is up.
	waitServed(t, ctx, c, "a", a1)
	r.UpdateState(state(a1, s1))
	if err := <-done; err != nil || srv != "s1" {
		t.Fatalf("untagged call during startup: served by %q, error %v; want s1", srv, err)
	}

	// A chain that stays empty fails after the wait, not forever.
	onlyA, _ := dial(t, nil, a1)
	callCtx, cancel := context.WithTimeout(ctx, 10*rpc.StartupWait)
	defer cancel()
	start := time.Now()
	_, err := onlyA.UnaryCall(tagctx.WithUntagged(callCtx), &testpb.SimpleRequest{}, grpc.WaitForReady(true))
	wantErr(t, err, codes.Unavailable, "no ready stable endpoint for an untagged call: no endpoint")
	if callCtx.Err() != nil {
		t.Fatalf("call failed by its deadline after %v, want the startup wait to end it", time.Since(start))
	}
}
