package httpmw_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// The end-to-end tests of issue 11: real HTTP/1.1, h2c and gRPC servers on
// loopback, wired as the docs say. An edge with a restrictive trust policy
// forwards to later hops that trust every tag and read every source (tag
// header, baggage, host pattern); whatever the outside caller sent, no
// later hop may come up with a lane.

const hostPattern = "app-{tag}.test.example.com"

// seenKeys are what a later hop reports, "name=tag" each, joined by "|":
// the middleware's decision, a second extraction by tagctx.Propagator, the
// x-tag member OpenTelemetry reads from the baggage header or context.
func report(parts ...string) string { return strings.Join(parts, "|") }

// leaked returns the reports in body that carry a tag.
func leaked(body string) []string {
	var out []string
	for _, p := range strings.Split(body, "|") {
		if k, v, ok := strings.Cut(p, "="); !ok || v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// nextHop is the later HTTP hop: TrustAll, host pattern on, stable node.
// It answers with what it and a naive reader make of the request.
func nextHop(t testing.TB) *httptest.Server {
	h := httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prop := tagctx.Propagator{OnError: func(error) {}}.Extract(context.Background(), propagation.HeaderCarrier(r.Header))
		var member string
		if b, err := baggage.Parse(strings.Join(r.Header.Values("Baggage"), ",")); err == nil || b.Len() > 0 {
			member = b.Member(tagctx.DefaultBaggageKey).Value()
		}
		_, _ = io.WriteString(w, report(
			"next.mw="+tagctx.From(r.Context()).String(),
			"next.prop="+tagctx.From(prop).String(),
			"next.otel="+member))
	}), httpmw.WithHostPattern(hostPattern), httpmw.WithNode(tagctx.Tag{}))
	return startServer(t, h)
}

// startServer serves h over HTTP/1.1 and h2c, with room for hostile
// headers of a few MiB.
func startServer(t testing.TB, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = 4 << 20
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// grpcHop is the later gRPC hop: TrustAll, otelgrpc on the server side
// with the baggage propagator, stable node.
type grpcHop struct {
	testpb.UnimplementedTestServiceServer
}

func (grpcHop) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Username: report(
		"grpc.mw="+tagctx.From(ctx).String(),
		"grpc.otel="+baggage.FromContext(ctx).Member(tagctx.DefaultBaggageKey).Value())}, nil
}

func startGRPCHop(t testing.TB) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(rpc.ServerOptions(rpc.WithNode(tagctx.Tag{})),
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithPropagators(propagation.Baggage{}))))...)
	testpb.RegisterTestServiceServer(srv, grpcHop{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// propagators: OpenTelemetry alone, and with tagctx.Propagator in the
// composite, the two set-ups the package docs allow.
var propagators = map[string]propagation.TextMapPropagator{
	"otel":        propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	"otel+tagctx": propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}, tagctx.Propagator{OnError: func(error) {}}),
}

// world is a set of edges, each a real server with the given trust in
// front of a later HTTP or gRPC hop. Built once per test (and once per fuzz
// target), so each request costs only its own round trips.
type world struct {
	edges map[string]*httptest.Server
}

func newWorld(t testing.TB, trust tagctx.Trust) *world {
	t.Helper()
	next := nextHop(t)
	target, _ := url.Parse(next.URL)
	grpcAddr := startGRPCHop(t)
	w := &world{edges: map[string]*httptest.Server{}}
	edgeOpts := []httpmw.Option{httpmw.WithTrust(trust), httpmw.WithNode(tagctx.Tag{})}

	// A reverse proxy whose transport writes this hop's decision.
	proxy := func(rt http.RoundTripper) http.Handler {
		p := httputil.NewSingleHostReverseProxy(target)
		p.Transport = rt
		p.ErrorLog = nil
		return p
	}
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	w.edges["proxy"] = startServer(t, httpmw.Handler(proxy(httpmw.Transport(base)), edgeOpts...))
	// The same, with HTTP/2 (h2c) to the next hop: the untagged mark is an
	// empty header field there too.
	var p2 http.Protocols
	p2.SetUnencryptedHTTP2(true)
	base2 := &http.Transport{Protocols: &p2}
	t.Cleanup(base2.CloseIdleConnections)
	w.edges["proxy-h2c"] = startServer(t, httpmw.Handler(proxy(httpmw.Transport(base2)), edgeOpts...))
	for name, props := range propagators {
		w.edges["otelhttp+proxy/"+name] = startServer(t, otelhttp.NewHandler(
			httpmw.Handler(proxy(otelhttp.NewTransport(httpmw.Transport(base), otelhttp.WithPropagators(props))), edgeOpts...),
			"edge", otelhttp.WithPropagators(props)))
	}

	// A handler calling gRPC, once with its context and once after a
	// second extraction by tagctx.Propagator from the headers it sees.
	grpcEdge := func(more ...grpc.DialOption) http.Handler {
		cc, err := grpc.NewClient(grpcAddr, append(append(rpc.DialOptions(),
			grpc.WithTransportCredentials(insecure.NewCredentials())), more...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		c := testpb.NewTestServiceClient(cc)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			again := tagctx.Propagator{OnError: func(error) {}}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			var parts []string
			for name, ctx := range map[string]context.Context{"ctx": r.Context(), "re-extracted": again} {
				resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				parts = append(parts, strings.ReplaceAll(resp.GetUsername(), "grpc.", "grpc("+name+")."))
			}
			_, _ = io.WriteString(w, report(parts...))
		})
	}
	w.edges["grpc"] = startServer(t, httpmw.Handler(grpcEdge(), edgeOpts...))
	for name, props := range propagators {
		w.edges["otelhttp+otelgrpc/"+name] = startServer(t, otelhttp.NewHandler(
			httpmw.Handler(grpcEdge(grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(props)))), edgeOpts...),
			"edge", otelhttp.WithPropagators(props)))
	}
	return w
}

// clients: HTTP/1.1 and h2c (the Host then travels as :authority).
func clients(t testing.TB) map[string]*http.Client {
	h1 := &http.Transport{}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &p}
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2c.CloseIdleConnections)
	return map[string]*http.Client{"http1": {Transport: h1}, "h2c": {Transport: h2c}}
}

func get(c *http.Client, url, host string, header http.Header) (string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return string(body), err
}

// rawGet sends an absolute-form request line, which sets r.Host from the
// URI rather than from the Host header.
func rawGet(t testing.TB, srv *httptest.Server, uri, host string) string {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", uri, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

var restrictive = map[string]tagctx.Trust{
	"TrustNone":     tagctx.TrustNone(),
	"TrustTags":     tagctx.TrustTags(featureX),
	"TrustNetworks": tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")),
}

// TestForwardedHostDoesNotRetag is finding 1: behind an edge that is not
// TrustAll, a Host that a later hop's pattern would read picks no lane, in
// any spelling, over HTTP/1.1 and h2c.
func TestForwardedHostDoesNotRetag(t *testing.T) {
	hosts := []string{
		"app-evil.test.example.com",
		"app-evil.test.example.com:8080",
		"app-evil.test.example.com.",
		"APP-EVIL.TEST.EXAMPLE.COM",
		"App-Evil.Test.Example.Com.:443",
	}
	for trustName, trust := range restrictive {
		t.Run(trustName, func(t *testing.T) {
			w := newWorld(t, trust)
			edge := w.edges["proxy"]
			for cname, c := range clients(t) {
				for _, ename := range []string{"proxy", "proxy-h2c"} {
					for _, host := range hosts {
						body, err := get(c, w.edges[ename].URL, host, nil)
						if err != nil {
							t.Fatalf("%s to %s, Host %q: %v", cname, ename, host, err)
						}
						if l := leaked(body); l != nil {
							t.Errorf("%s to %s, Host %q: a later hop took a lane: %v", cname, ename, host, l)
						}
					}
				}
			}
			body := rawGet(t, edge, "http://app-evil.test.example.com/orders", "app-other.test.example.com")
			if l := leaked(body); l != nil {
				t.Errorf("absolute-form URI: a later hop took a lane: %v", l)
			}
		})
	}
	t.Run("TrustTags passes its own tag on", func(t *testing.T) {
		w := newWorld(t, tagctx.TrustTags(featureX))
		c := clients(t)["http1"]
		body, err := get(c, w.edges["proxy"].URL, "app-evil.test.example.com", http.Header{"X-Tag": {"feature-x"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "next.mw=feature-x|next.prop=feature-x|next.otel=feature-x"; body != want {
			t.Errorf("got %q, want %q", body, want)
		}
	})
	t.Run("control: TrustAll leaves an untagged request undecided", func(t *testing.T) {
		// Documented: under TrustAll the caller could send X-Tag anyway,
		// so the later hop's host pattern still reads the Host. This shows
		// the tests above exercise the host path.
		w := newWorld(t, tagctx.TrustAll())
		body, err := get(clients(t)["http1"], w.edges["proxy"].URL, "app-evil.test.example.com", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(body, "next.mw=evil") {
			t.Errorf("got %q: the host pattern was not exercised", body)
		}
	})
}

// TestRefusedTagLeavesNoTrace is finding 2: a refused or stripped tag
// reaches no later hop, HTTP or gRPC, with or without otelhttp/otelgrpc and
// tagctx.Propagator in the composite, and a second extraction inside the
// handler does not take it back. The NBSP-spelled key is one OpenTelemetry
// reads as x-tag.
func TestRefusedTagLeavesNoTrace(t *testing.T) {
	inputs := []http.Header{
		{"Baggage": {"x-tag=evil"}},
		{"Baggage": {"k=v, x-tag\u00a0=evil"}},
		{"Baggage": {"x-tag=evil;p=1", "k=v"}},
		{"X-Tag": {"evil"}},
		{"X-Tag": {"evil"}, "Baggage": {"x-tag=evil"}},
		{"X-Tag": {""}, "Baggage": {"x-tag=evil"}},
		{"Baggage": {strings.Repeat("k=v,", 1<<17) + "x-tag=evil"}}, // 512 KiB, over every limit
	}
	for trustName, trust := range restrictive {
		t.Run(trustName, func(t *testing.T) {
			w := newWorld(t, trust)
			for cname, c := range clients(t) {
				for ename, edge := range w.edges {
					for _, h := range inputs {
						body, err := get(c, edge.URL, "", h)
						if err != nil {
							t.Fatalf("%s via %s, %.80q: %v", ename, cname, h, err)
						}
						if l := leaked(body); l != nil {
							t.Errorf("%s via %s, %.80q: a later hop took a lane: %v", ename, cname, h, l)
						}
					}
				}
			}
		})
	}
}

// TestHostileInputBounded is finding 3: a 512 KiB Host is quoted as a
// bounded prefix in the 400 body, the observer's error and the span event.
func TestHostileInputBounded(t *testing.T) {
	var mu sync.Mutex
	var reasons []string
	h := httpmw.Handler(final, httpmw.WithHostPattern(hostPattern), httpmw.WithRejectInvalid(),
		httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
			if o.Rejected != nil {
				mu.Lock()
				reasons = append(reasons, o.Rejected.Error())
				mu.Unlock()
			}
		}))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv := startServer(t, otelhttp.NewHandler(h, "edge", otelhttp.WithTracerProvider(tp)))
	c := clients(t)["http1"]
	for _, host := range []string{
		"app-" + strings.Repeat("e", 512<<10) + ".test.example.com",
		strings.Repeat("h", 512<<10),
		"app-evil.test.example.com:http",
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || len(body) > 300 {
			t.Errorf("Host of %d bytes: %d, body of %d bytes %.120q; want 400 and a short body", len(host), resp.StatusCode, len(body), body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reasons) != 3 {
		t.Fatalf("observer saw %d rejections, want 3", len(reasons))
	}
	for _, r := range reasons {
		if len(r) > 300 {
			t.Errorf("observer reason of %d bytes: %.120q", len(r), r)
		}
	}
	events := 0
	for _, span := range sr.Ended() {
		for _, ev := range span.Events() {
			if ev.Name != httpmw.EventRejected {
				continue
			}
			events++
			for _, kv := range ev.Attributes {
				if v := kv.Value.String(); len(v) > 300 {
					t.Errorf("span event attribute %s of %d bytes: %.120q", kv.Key, len(v), v)
				}
			}
		}
	}
	if events != 3 {
		t.Errorf("%d rejection span events, want 3", events)
	}
}

// TestLargeBaggageKeepsTheLane is finding 4: baggage W3C allows beside the
// tag (64 other members; 8190 bytes with X-Tag) does not cost the lane at
// the next hop, which here reads baggage only, and what the transport
// writes is accepted whole by OpenTelemetry.
func TestLargeBaggageKeepsTheLane(t *testing.T) {
	bagOnly := startServer(t, httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := baggage.Parse(strings.Join(r.Header.Values("Baggage"), ","))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, report("mw="+tagctx.From(r.Context()).String(), "otel="+b.Member("x-tag").Value()))
	}), httpmw.WithHeaders(), httpmw.WithNode(tagctx.Tag{})))
	target, _ := url.Parse(bagOnly.URL)
	p := httputil.NewSingleHostReverseProxy(target)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	p.Transport = httpmw.Transport(base)
	edge := startServer(t, httpmw.Handler(p, httpmw.WithNode(tagctx.Tag{})))
	c := clients(t)["http1"]

	tests := []struct {
		name   string
		header http.Header
	}{
		{"64 other members, X-Tag", http.Header{"X-Tag": {"feature-x"}, "Baggage": {strings.TrimSuffix(strings.Repeat("k=v,", 64), ",")}}},
		{"64 other members and the tag member", http.Header{"Baggage": {strings.Repeat("k=v,", 64) + "x-tag=feature-x"}}},
		{"179 other members and the tag member", http.Header{"Baggage": {strings.Repeat("k=v,", 179) + "x-tag=feature-x"}}},
		{"8190 bytes of other baggage, X-Tag", http.Header{"X-Tag": {"feature-x"}, "Baggage": {"k=" + strings.Repeat("v", 8188)}}},
		{"1 MiB of other baggage, X-Tag", http.Header{"X-Tag": {"feature-x"}, "Baggage": {"k=" + strings.Repeat("v", 1<<20)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := get(c, edge.URL, "", tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if want := "mw=feature-x|otel=feature-x"; body != want {
				t.Errorf("next hop: %q, want %q", body, want)
			}
		})
	}
}

// TestForwardedForFailsClosed is finding 5: with WithForwardedFor, a
// request without X-Forwarded-For is judged as coming from nowhere, not as
// the proxy's own (trusted) address.
func TestForwardedForFailsClosed(t *testing.T) {
	h := httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, tagctx.From(r.Context()).String())
	}), httpmw.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("127.0.0.0/8"))), httpmw.WithForwardedFor(), httpmw.WithNode(tagctx.Tag{}))
	srv := startServer(t, h)
	c := clients(t)["http1"]
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"no X-Forwarded-For: refused", http.Header{"X-Tag": {"evil"}}, ""},
		{"empty X-Forwarded-For: refused", http.Header{"X-Tag": {"evil"}, "X-Forwarded-For": {""}}, ""},
		{"outside address: refused", http.Header{"X-Tag": {"evil"}, "X-Forwarded-For": {"192.0.2.1"}}, ""},
		{"trusted address: accepted", http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"127.0.0.1"}}, "feature-x"},
	} {
		body, err := get(c, srv.URL, "", tt.header)
		if err != nil {
			t.Fatal(err)
		}
		if body != tt.want {
			t.Errorf("%s: served as %q, want %q", tt.name, body, tt.want)
		}
	}
}

// TestStrictRefusesMisroutes is finding 7 for HTTP: a strict lane-b
// instance refuses lane-a and stable traffic with 421 and RefusedHeader.
func TestStrictRefusesMisroutes(t *testing.T) {
	var mu sync.Mutex
	var obs []tagctx.Observation
	srv := startServer(t, httpmw.Handler(final, httpmw.WithStrict(), httpmw.WithNode(featureY),
		httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
			mu.Lock()
			obs = append(obs, o)
			mu.Unlock()
		})))
	c := clients(t)["http1"]
	tests := []struct {
		name       string
		tag        string
		want       int
		wantHeader string
	}{
		{"own lane", "feature-y", http.StatusOK, ""},
		{"another lane", "feature-z", http.StatusMisdirectedRequest, "traffic=feature-z node=feature-y"},
		{"stable traffic", "", http.StatusMisdirectedRequest, "traffic= node=feature-y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			if tt.tag != "" {
				req.Header.Set("X-Tag", tt.tag)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || resp.Header.Get(httpmw.RefusedHeader) != tt.wantHeader {
				t.Errorf("%d %s=%q; want %d %q", resp.StatusCode, httpmw.RefusedHeader, resp.Header.Get(httpmw.RefusedHeader), tt.want, tt.wantHeader)
			}
			mu.Lock()
			o := obs[len(obs)-1]
			mu.Unlock()
			// A refused request is served by no lane: no misroute, and the
			// observer hears why.
			if refused := tt.want != http.StatusOK; refused != errors.Is(o.Rejected, httpmw.ErrMisdirected) ||
				refused && o.Route != 0 {
				t.Errorf("observed route %v, rejected %v", o.Route, o.Rejected)
			}
		})
	}
}

// FuzzTrustNoneEdge asserts the invariant behind findings 1 and 2 end to
// end: with TrustNone at the edge, no header, host or baggage input
// reaches a later hop as a tag, over HTTP/1.1 or h2c, through a reverse
// proxy or a gRPC call, with and without otelhttp/otelgrpc and
// tagctx.Propagator in the composite. The servers are built once; an
// execution is one request through one edge.
func FuzzTrustNoneEdge(f *testing.F) {
	f.Add("X-Tag", "evil", "", "", uint8(0), false)
	f.Add("x-tag", "evil", "x-tag=evil", "app-evil.test.example.com", uint8(1), true)
	f.Add("Tag", "", "k=v, x-tag\u00a0=evil;p=1", "APP-EVIL.test.example.com.:8080", uint8(2), false)
	f.Add("X-Tag", "", "x-tag=%65vil", "app-evil.test.example.com", uint8(3), true)
	f.Add("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-tag=evil", "", uint8(4), false)
	f.Add("Baggage", "x-tag=evil", "x-tag=evil", "app-evil.test.example.com", uint8(5), true)
	f.Add("X-Forwarded-Host", "app-evil.test.example.com", strings.Repeat("k=v,", 70)+"x-tag=evil", "", uint8(6), false)
	w := newWorld(f, tagctx.TrustNone())
	names := make([]string, 0, len(w.edges))
	for name := range w.edges {
		names = append(names, name)
	}
	slices.Sort(names)
	cs := clients(f)
	f.Fuzz(func(t *testing.T, name, value, bag, host string, edge uint8, h2c bool) {
		// net/http sends only token header names, values without control
		// bytes and hosts without spaces: map the input onto what it
		// sends, so executions reach the edge.
		name = strings.Map(func(r rune) rune {
			if r < 0x80 && (r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
				return r
			}
			return -1
		}, name)
		noCtl := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
		value, bag = noCtl(value), noCtl(bag)
		host = strings.Map(func(r rune) rune {
			if r <= 0x20 || r >= 0x7f {
				return -1
			}
			return r
		}, host)
		header := http.Header{}
		if name != "" {
			header[name] = strings.Split(value, "\n") // several lines too
		}
		if bag != "" {
			header["Baggage"] = append(header["Baggage"], strings.Split(bag, "\n")...)
		}
		c := cs["http1"]
		if h2c {
			c = cs["h2c"]
		}
		ename := names[int(edge)%len(names)]
		req, err := http.NewRequest(http.MethodGet, w.edges[ename].URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header, req.Host = header, host
		resp, err := c.Do(req)
		if err != nil {
			return // the client refused to send it: no input reached the edge
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		switch {
		case resp.StatusCode == http.StatusBadRequest:
			return // net/http refused a malformed request before the edge
		case resp.StatusCode != http.StatusOK:
			t.Fatalf("%s: status %d: %.300s", ename, resp.StatusCode, body)
		}
		if l := leaked(string(body)); l != nil {
			t.Fatalf("%s: a later hop took a lane: %v", ename, l)
		}
	})
}

// grpcEdge is a gRPC entry point whose handler forwards naively what it
// received: the metadata "forwarded-host" as the Host of an HTTP call to
// the next HTTP hop (through Transport), and all incoming metadata as the
// outgoing metadata of a call to the later gRPC hop.
type grpcEdge struct {
	testpb.UnimplementedTestServiceServer
	client *http.Client
	next   string
	later  testpb.TestServiceClient
}

func (e grpcEdge) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	in, _ := metadata.FromIncomingContext(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.next, nil)
	if err != nil {
		return nil, err
	}
	if h := in.Get("forwarded-host"); len(h) > 0 {
		req.Host = h[0]
	}
	for k, vs := range in {
		if k == "baggage" || k == "x-tag" {
			req.Header[http.CanonicalHeaderKey(k)] = vs
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return &testpb.SimpleResponse{}, nil // a Host net/http will not send: nothing reached the hop
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := metadata.MD{}
	for k, vs := range in {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" && !strings.HasPrefix(k, "grpc-") {
			out[k] = vs
		}
	}
	later, err := e.later.UnaryCall(metadata.NewOutgoingContext(ctx, out), &testpb.SimpleRequest{})
	if err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Username: report(string(body), later.GetUsername())}, nil
}

// startGRPCEdges starts TrustNone gRPC edges, with and without otelgrpc
// (and tagctx.Propagator in its composite), in front of the later hops.
func startGRPCEdges(t testing.TB) map[string]testpb.TestServiceClient {
	next := nextHop(t)
	laterAddr := startGRPCHop(t)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	edges := map[string]testpb.TestServiceClient{}
	start := func(name string, sopts []grpc.ServerOption, dopts []grpc.DialOption) {
		cc, err := grpc.NewClient(laterAddr, append(append(rpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials())), dopts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer(append(rpc.ServerOptions(rpc.WithTrust(tagctx.TrustNone()), rpc.WithNode(tagctx.Tag{})), sopts...)...)
		testpb.RegisterTestServiceServer(srv, grpcEdge{client: &http.Client{Transport: httpmw.Transport(base)}, next: next.URL, later: testpb.NewTestServiceClient(cc)})
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		in, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = in.Close() })
		edges[name] = testpb.NewTestServiceClient(in)
	}
	start("grpc", nil, nil)
	for name, props := range propagators {
		start("otelgrpc/"+name,
			[]grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithPropagators(props)))},
			[]grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(props)))})
	}
	return edges
}

// FuzzTrustNoneGRPCEdge is FuzzTrustNoneEdge for a gRPC entry point: no
// metadata an outside caller sends (tag key, baggage, a host the handler
// forwards) reaches a later HTTP or gRPC hop as a tag.
func FuzzTrustNoneGRPCEdge(f *testing.F) {
	f.Add("x-tag", "evil", "", "app-evil.test.example.com", uint8(0))
	f.Add("x-tag", "", "x-tag=evil", "APP-EVIL.test.example.com.:80", uint8(1))
	f.Add("baggage", "x-tag\u00a0=evil", "k=v,x-tag=evil;p=1", "", uint8(2))
	f.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-tag=evil", "app-evil.test.example.com", uint8(3))
	f.Add("x-tag-bin", "evil", strings.Repeat("k=v,", 200)+"x-tag=evil", "", uint8(0))
	edges := startGRPCEdges(f)
	names := make([]string, 0, len(edges))
	for name := range edges {
		names = append(names, name)
	}
	slices.Sort(names)
	f.Fuzz(func(t *testing.T, key, value, bag, host string, edge uint8) {
		// gRPC sends only [0-9a-z-_.] keys and printable ASCII values:
		// map the input onto what it sends, so executions reach the edge.
		key = strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || strings.ContainsRune("-_.", r) {
				return r
			}
			return -1
		}, strings.ToLower(key))
		printable := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r > 0x7e {
					return -1
				}
				return r
			}, s)
		}
		value, bag = printable(value), printable(bag)
		md := metadata.MD{}
		if key != "" {
			md[key] = append(md[key], value)
		}
		if bag != "" {
			md["baggage"] = append(md["baggage"], bag)
		}
		if host != "" {
			md["forwarded-host"] = []string{host}
		}
		name := names[int(edge)%len(names)]
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 10*time.Second)
		defer cancel()
		resp, err := edges[name].UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil {
			return // gRPC refused to send it, or the later hop refused it: nothing served as a lane
		}
		if testing.Verbose() {
			t.Logf("%s: %s", name, resp.GetUsername())
		}
		if l := leaked(resp.GetUsername()); l != nil {
			t.Fatalf("%s: a later hop took a lane: %v (metadata %.200q)", name, l, map[string][]string(md))
		}
	})
}
