package etcd_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/discovery/internal/lanetest"
)

// TestRandomLifecycles registers, stops and crashes stable and lane
// instances at random while gRPC and HTTP calls of every lane flow, and
// checks the serving node of every call: zero misroutes (a call served by
// another lane, or untagged traffic served by a lane), and every call
// either served in its lane or by stable, or failed with an error.
func TestRandomLifecycles(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx := testCtx(t)
	srv := startEtcd(t)
	reg := newRegistry(t, newClient(t, srv))
	gc, hc := grpcClient(t, reg), httpClient(t, reg)

	lanes := []string{"", "a", "b"}
	traffic := []string{"", "a", "b", "c"}
	tagOf := map[string]string{} // node name -> node tag
	var live []*process
	start := func() {
		name := "n" + string(rune('0'+len(tagOf)/10)) + string(rune('0'+len(tagOf)%10))
		tag := lanes[rng.IntN(len(lanes))]
		tagOf[name] = tag
		live = append(live, startProcess(t, srv, name, tag))
	}
	for range 3 {
		start()
	}
	const steps, callsPerStep = 30, 8
	var served, failed int
	for step := range steps {
		switch op := rng.IntN(5); {
		case op <= 2 || len(live) == 0:
			start()
		case op == 3:
			i := rng.IntN(len(live))
			if err := live[i].stop(); err != nil {
				t.Fatalf("step %d: graceful stop of %s: %v", step, live[i].Name, err)
			}
			live = append(live[:i], live[i+1:]...)
		default:
			i := rng.IntN(len(live))
			live[i].crash()
			live = append(live[:i], live[i+1:]...)
		}
		for range callsPerStep {
			tag := traffic[rng.IntN(len(traffic))]
			callCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
			g, gseen, gerr := lanetest.CallGRPC(callCtx, gc, tag)
			h, hseen, herr := lanetest.GetHTTP(callCtx, hc, httpURL, tag)
			cancel()
			for _, r := range []struct {
				via, node, seen string
				err             error
			}{{"gRPC", g, gseen, gerr}, {"HTTP", h, hseen, herr}} {
				if r.err != nil {
					if status.Code(r.err) == codes.DeadlineExceeded || errors.Is(r.err, context.DeadlineExceeded) {
						t.Errorf("step %d: %s call tagged %q failed by its deadline, not with a reason: %v", step, r.via, tag, r.err)
					}
					failed++
					continue
				}
				served++
				nodeTag := tagOf[r.node]
				if nodeTag != tag && nodeTag != "" {
					t.Errorf("step %d: misroute: %s call tagged %q served by %s of lane %q", step, r.via, tag, r.node, nodeTag)
				}
				if r.seen != tag {
					t.Errorf("step %d: %s call tagged %q seen as %q by %s", step, r.via, tag, r.seen, r.node)
				}
			}
		}
	}
	t.Logf("%d calls served, %d failed with a reason", served, failed)
	if served < steps*callsPerStep/2 {
		t.Errorf("only %d of %d calls served: the test did not exercise routing", served, 2*steps*callsPerStep)
	}
}
