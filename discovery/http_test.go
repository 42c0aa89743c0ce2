package discovery_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/resolver/manual"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/internal/lanetest"
	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// deadAddr returns an address nothing listens on any more.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hangup accepts connections and closes them unanswered: a request sent
// there may have been processed, so it must not be sent again.
func hangup(t *testing.T) (string, *atomic.Int32) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), &n
}

// counting counts the requests the routing Transport sends.
type counting struct {
	http.RoundTripper
	n atomic.Int32
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

func TestTransportRetry(t *testing.T) {
	ctx := testCtx(t)
	reg := discovery.NewMemory()
	a1 := lanetest.StartNode(t, "a1", tagctx.MustParse("a"))
	hang, hangs := hangup(t)
	for _, inst := range []discovery.Instance{
		{Service: "svc", Addr: a1.HTTPAddr, Tag: a1.Tag},
		{Service: "svc", Addr: deadAddr(t), Tag: a1.Tag},
		{Service: "svc", Addr: deadAddr(t), Tag: a1.Tag},
		{Service: "once", Addr: hang, Tag: a1.Tag},
		{Service: "once", Addr: a1.HTTPAddr, Tag: a1.Tag},
		{Service: "gone", Addr: deadAddr(t)},
		{Service: "gone", Addr: deadAddr(t)},
		{Service: "gone", Addr: deadAddr(t)},
		{Service: "gone", Addr: deadAddr(t)},
	} {
		if _, err := reg.Register(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	count := &counting{RoundTripper: httpmw.Transport(base)}
	tr, err := discovery.NewTransport(reg, []string{"svc", "once", "gone"}, discovery.WithBase(count))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}

	t.Run("unreachable instances are skipped when the request can be sent again", func(t *testing.T) {
		for i := range 12 {
			for _, m := range []struct {
				method string
				body   io.Reader
			}{{"GET", nil}, {"POST", strings.NewReader("replayable: GetBody is set")}} {
				srv, seen, err := lanetest.DoHTTP(ctx, c, m.method, "http://svc/", "a", m.body)
				if err != nil || srv != "a1" || seen != "a" {
					t.Fatalf("%s %d: served by %q seeing %q, %v", m.method, i, srv, seen, err)
				}
			}
		}
	})
	t.Run("a body that cannot be replayed is not retried", func(t *testing.T) {
		failed := 0
		for range 12 {
			count.n.Store(0)
			_, _, err := lanetest.DoHTTP(ctx, c, "POST", "http://svc/", "a", io.NopCloser(strings.NewReader("once")))
			if err != nil {
				failed++
			}
			if n := count.n.Load(); n != 1 {
				t.Fatalf("sent %d times, want 1", n)
			}
		}
		if failed == 0 {
			t.Error("no request met an unreachable instance: round robin is not spreading")
		}
	})
	t.Run("no retry once the request may have been sent", func(t *testing.T) {
		failed := 0
		for range 10 {
			before := hangs.Load()
			count.n.Store(0)
			if _, _, err := lanetest.GetHTTP(ctx, c, "http://once/", "a"); err != nil {
				failed++
				if count.n.Load() != 1 || hangs.Load() != before+1 {
					t.Fatalf("a request the instance may have read was sent again (%d sends)", count.n.Load())
				}
			}
		}
		if failed == 0 {
			t.Error("the hang-up instance was never picked")
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		count.n.Store(0)
		_, _, err := lanetest.GetHTTP(ctx, c, "http://gone/", "")
		if err == nil || !strings.Contains(err.Error(), "3 attempts failed") {
			t.Fatalf("err %v, want 3 attempts failed", err)
		}
		if n := count.n.Load(); n != discovery.DefaultMaxAttempts {
			t.Fatalf("%d attempts, want %d", n, discovery.DefaultMaxAttempts)
		}
	})
	t.Run("no instance: a reason", func(t *testing.T) {
		_, _, err := lanetest.GetHTTP(ctx, c, "http://svc/", "")
		if !errors.Is(err, discovery.ErrNoInstance) || !strings.Contains(err.Error(), `no stable instance for an untagged request`) {
			t.Fatalf("untagged to a service with lanes only: %v", err)
		}
	})
	t.Run("other hosts pass through", func(t *testing.T) {
		srv, _, err := lanetest.GetHTTP(ctx, c, "http://"+a1.HTTPAddr+"/", "")
		if err != nil || srv != "a1" {
			t.Fatalf("direct request: %q, %v", srv, err)
		}
	})
}

func TestNewTransportInvalid(t *testing.T) {
	reg := discovery.NewMemory()
	tests := []struct {
		name     string
		services []string
		opts     []discovery.Option
		want     string
	}{
		{name: "bad service", services: []string{"a/b"}, want: `discovery: service "a/b"`},
		{name: "zero attempts", services: []string{"s"}, opts: []discovery.Option{discovery.WithMaxAttempts(0)}, want: "discovery: WithMaxAttempts(0): want at least 1"},
		{name: "bad lanes", services: []string{"s"}, opts: []discovery.Option{discovery.WithLanes(discovery.Lanes{Fallback: "closest"})}, want: `discovery: WithLanes: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := discovery.NewTransport(reg, tt.services, tt.opts...)
			if err == nil {
				tr.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTransportStrictRefusal: the registry still lists lane a at an
// address whose server now belongs to lane b and runs httpmw.WithStrict.
// Its refusal sends the request on along the chain (here: to stable), once
// per request, and never lets lane b serve it.
func TestTransportStrictRefusal(t *testing.T) {
	ctx := testCtx(t)
	reg := discovery.NewMemory()
	stable := lanetest.StartNode(t, "stable", tagctx.Tag{})
	var served atomic.Int32
	strictB := httptest.NewServer(httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
	}), httpmw.WithNode(tagctx.MustParse("b")), httpmw.WithStrict()))
	defer strictB.Close()
	stale := strings.TrimPrefix(strictB.URL, "http://")
	for _, inst := range []discovery.Instance{
		{Service: "svc", Addr: stale, Tag: tagctx.MustParse("a")},
		{Service: "svc", Addr: stable.HTTPAddr},
	} {
		if _, err := reg.Register(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	count := &counting{RoundTripper: httpmw.Transport(base)}
	var reports atomic.Int32
	tr, err := discovery.NewTransport(reg, []string{"svc"}, discovery.WithBase(count),
		discovery.WithErrorHandler(func(error) { reports.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}

	for _, m := range []struct {
		method string
		body   io.Reader
	}{{"GET", nil}, {"POST", strings.NewReader("replayable")}} {
		count.n.Store(0)
		srv, seen, err := lanetest.DoHTTP(ctx, c, m.method, "http://svc/", "a", m.body)
		if err != nil || srv != "stable" || seen != "a" {
			t.Fatalf("%s: served by %q seeing %q, %v; want stable seeing a", m.method, srv, seen, err)
		}
		if n := count.n.Load(); n != 2 {
			t.Fatalf("%s: %d sends, want 2 (the refusal, then stable)", m.method, n)
		}
	}
	if served.Load() != 0 {
		t.Fatalf("lane b served %d requests of lane a", served.Load())
	}
	if reports.Load() == 0 {
		t.Error("the refusals were not reported")
	}

	t.Run("a body that cannot be replayed gets the refusal", func(t *testing.T) {
		req, err := http.NewRequestWithContext(lanetest.Tagged(ctx, "a"), "POST", "http://svc/", io.NopCloser(strings.NewReader("once")))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get(httpmw.RefusedHeader) == "" {
			t.Fatalf("status %d, %s=%q; want the strict instance's 421", resp.StatusCode, httpmw.RefusedHeader, resp.Header.Get(httpmw.RefusedHeader))
		}
	})
}

// Every option with a bad argument: building it does not panic, and each
// constructor that takes it returns an error naming the option and quoting
// the value (bounded).
func TestOptionErrors(t *testing.T) {
	reg := discovery.NewMemory()
	long := strings.Repeat("s", 300) + " "
	tests := []struct {
		name string
		opt  discovery.Option
		want string
	}{
		{name: "WithScheme empty", opt: discovery.WithScheme(""), want: `discovery: WithScheme(""): want a letter, then letters, digits, '+', '-' or '.'`},
		{name: "WithScheme digit first", opt: discovery.WithScheme("1lane"), want: `discovery: WithScheme("1lane"): want a letter, then letters, digits, '+', '-' or '.'`},
		{name: "WithScheme long", opt: discovery.WithScheme(long), want: `discovery: WithScheme("` + strings.Repeat("s", 64) + `..."): want a letter, then letters, digits, '+', '-' or '.'`},
		{name: "WithLanes", opt: discovery.WithLanes(discovery.Lanes{Fallback: "closest"}), want: `discovery: WithLanes: `},
		{name: "WithBase", opt: discovery.WithBase(nil), want: "discovery: WithBase(nil): want a RoundTripper"},
		{name: "WithMaxAttempts", opt: discovery.WithMaxAttempts(-1), want: "discovery: WithMaxAttempts(-1): want at least 1"},
		{name: "WithFirstStateWait", opt: discovery.WithFirstStateWait(-time.Second), want: "discovery: WithFirstStateWait(-1s): negative"},
		{name: "WithServiceConfig", opt: discovery.WithServiceConfig("[1]"), want: `discovery: WithServiceConfig("[1]"): json: cannot unmarshal`},
		{name: "WithServiceConfig null", opt: discovery.WithServiceConfig("null"), want: `discovery: WithServiceConfig("null"): want a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errR := discovery.NewResolver(reg, tt.opt)
			_, errW := discovery.Wrap(manual.NewBuilderWithScheme("w"), discovery.TagAttribute("tag"), tt.opt)
			_, errT := discovery.NewTransport(reg, []string{"s"}, tt.opt)
			_, errV := discovery.WatchLanes(reg, "s", tt.opt)
			for i, err := range []error{errR, errW, errT, errV} {
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Errorf("constructor %d: err %v, want one starting %q", i, err, tt.want)
				}
			}
		})
	}
}
