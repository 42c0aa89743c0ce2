// Package lanetest runs lane instances for the discovery tests: each node
// serves gRPC (the interop TestService) and HTTP on 127.0.0.1 and answers
// every call with its name and the traffic tag it saw, so a test can check
// the serving node of every call.
package lanetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// Node is one instance of a service with both transports.
type Node struct {
	Name     string
	Tag      tagctx.Tag
	GRPCAddr string
	HTTPAddr string

	grpcSrv *grpc.Server
	httpSrv *http.Server
	once    sync.Once

	mu     sync.Mutex
	routes map[tagctx.Route]int // gRPC route proofs
}

// Routes returns how many gRPC calls the node proved of each route.
func (n *Node) Routes() map[tagctx.Route]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[tagctx.Route]int, len(n.routes))
	for r, c := range n.routes {
		m[r] = c
	}
	return m
}

type service struct {
	testpb.UnimplementedTestServiceServer
	n *Node
}

func (s service) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: s.n.Name, Username: tagctx.From(ctx).String()}, nil
}

// StartNode starts a node; it stops at the end of the test, or at Stop.
// opts are added to its gRPC server's options.
func StartNode(t testing.TB, name string, tag tagctx.Tag, opts ...rpc.Option) *Node {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Name: name, Tag: tag, GRPCAddr: gl.Addr().String(), HTTPAddr: hl.Addr().String()}
	n.routes = make(map[tagctx.Route]int)
	opts = append([]rpc.Option{rpc.WithNode(tag), rpc.WithObserver(func(_ context.Context, o tagctx.Observation) {
		n.mu.Lock()
		n.routes[o.Route]++
		n.mu.Unlock()
	})}, opts...)
	n.grpcSrv = grpc.NewServer(rpc.ServerOptions(opts...)...)
	testpb.RegisterTestServiceServer(n.grpcSrv, service{n: n})
	n.httpSrv = &http.Server{
		Handler: httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%s/%s", n.Name, tagctx.From(r.Context()))
		}), httpmw.WithNode(tag)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go n.grpcSrv.Serve(gl)
	go n.httpSrv.Serve(hl)
	t.Cleanup(n.Stop)
	return n
}

// Stop stops both servers at once, as a crash would: nothing is
// deregistered.
func (n *Node) Stop() {
	n.once.Do(func() {
		n.grpcSrv.Stop()
		n.httpSrv.Close()
	})
}

// Tagged returns ctx carrying tag ("" for untagged traffic).
func Tagged(ctx context.Context, tag string) context.Context {
	if tag == "" {
		return tagctx.WithUntagged(ctx)
	}
	return tagctx.With(ctx, tagctx.MustParse(tag))
}

// CallGRPC makes one unary call tagged tag and returns the serving node
// and the tag it saw.
func CallGRPC(ctx context.Context, c testpb.TestServiceClient, tag string) (server, seen string, err error) {
	resp, err := c.UnaryCall(Tagged(ctx, tag), &testpb.SimpleRequest{})
	if err != nil {
		return "", "", err
	}
	return resp.GetServerId(), resp.GetUsername(), nil
}

// GetHTTP makes one GET of url tagged tag.
func GetHTTP(ctx context.Context, c *http.Client, url, tag string) (server, seen string, err error) {
	return DoHTTP(ctx, c, http.MethodGet, url, tag, nil)
}

// DoHTTP sends one request tagged tag with body (nil for none).
func DoHTTP(ctx context.Context, c *http.Client, method, url, tag string, body io.Reader) (server, seen string, err error) {
	req, err := http.NewRequestWithContext(Tagged(ctx, tag), method, url, body)
	if err != nil {
		return "", "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	server, seen, ok := strings.Cut(string(b), "/")
	if !ok {
		return "", "", errors.New("lanetest: reply without '/': " + string(b))
	}
	return server, seen, nil
}

// Eventually polls f until it returns nil, failing the test after 20s.
func Eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 20s", what, err)
		}
		<-tick.C
	}
}

// Served polls until calls tagged tag are served by the named nodes only,
// over gRPC and, when hc is not nil, over HTTP at url.
func Served(t testing.TB, ctx context.Context, gc testpb.TestServiceClient, hc *http.Client, url, tag string, want ...string) {
	t.Helper()
	ok := make(map[string]bool)
	for _, w := range want {
		ok[w] = true
	}
	Eventually(t, fmt.Sprintf("tag %q served by %v", tag, want), func() error {
		for range 2 * len(want) {
			g, _, err := CallGRPC(ctx, gc, tag)
			if err != nil {
				return err
			}
			h := g
			if hc != nil {
				if h, _, err = GetHTTP(ctx, hc, url, tag); err != nil {
					return err
				}
			}
			if !ok[g] || !ok[h] {
				return fmt.Errorf("served by %s (gRPC) and %s (HTTP)", g, h)
			}
		}
		return nil
	})
}
