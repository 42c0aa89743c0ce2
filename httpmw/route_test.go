package httpmw_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// TestRoutePatternSurvives: with otelhttp outside httpmw and a router
// inside, the server span is named after the route pattern and carries
// http.route, as it would without httpmw, for tagged and untagged requests
// on stable and lane instances (the cases where httpmw hands the router a
// copy of the request, and those where it does not). The observation's
// Operation is the pattern too, not the raw path.
func TestRoutePatternSurvives(t *testing.T) {
	featureX := tagctx.MustParse("feature-x")
	type setup func(tp trace.TracerProvider, mp *sdkmetric.MeterProvider, mw func(http.Handler) http.Handler, h http.HandlerFunc) http.Handler
	routers := []struct {
		name    string
		setup   setup
		pattern string // what the router sets as Request.Pattern
	}{
		{
			name: "ServeMux",
			// The documented order: otelhttp outside, httpmw, then the mux.
			setup: func(tp trace.TracerProvider, mp *sdkmetric.MeterProvider, mw func(http.Handler) http.Handler, h http.HandlerFunc) http.Handler {
				mux := http.NewServeMux()
				mux.Handle("POST /orders/{id}", h)
				return otelhttp.NewHandler(mw(mux), "orders", otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp))
			},
			pattern: "POST /orders/{id}",
		},
		{
			name: "chi",
			// chi copies the request itself before routing, so no wrapper
			// outside the router sees its pattern (otelhttp alone neither):
			// otelhttp and httpmw go in as chi middlewares, in that order.
			setup: func(tp trace.TracerProvider, mp *sdkmetric.MeterProvider, mw func(http.Handler) http.Handler, h http.HandlerFunc) http.Handler {
				r := chi.NewRouter()
				r.Use(otelhttp.NewMiddleware("orders", otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp)), mw)
				r.Post("/orders/{id}", h)
				return r
			},
			pattern: "/orders/{id}",
		},
	}
	traffic := []struct {
		name string
		tag  string
		node tagctx.Tag
	}{
		{name: "untagged on stable", node: tagctx.Tag{}}, // httpmw passes the request on untouched
		{name: "tagged on stable", tag: "feature-x", node: tagctx.Tag{}},
		{name: "tagged on lane", tag: "feature-x", node: featureX},
		{name: "untagged on lane", node: featureX}, // marked untagged: a copy
	}
	for _, rt := range routers {
		for _, tr := range traffic {
			t.Run(rt.name+"/"+tr.name, func(t *testing.T) {
				sr := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
				t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				reader := sdkmetric.NewManualReader()
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
				t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

				var (
					mu  sync.Mutex
					obs []tagctx.Observation
				)
				mw := httpmw.Middleware(httpmw.WithNode(tr.node), httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
					mu.Lock()
					obs = append(obs, o)
					mu.Unlock()
				}))
				h := rt.setup(tp, mp, mw, func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, tagctx.From(r.Context()).String()+" "+r.PathValue("id"))
				})
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				client := &http.Client{Transport: &http.Transport{}}
				t.Cleanup(client.CloseIdleConnections)

				req, err := http.NewRequest(http.MethodPost, srv.URL+"/orders/o2-header", strings.NewReader("{}"))
				if err != nil {
					t.Fatal(err)
				}
				if tr.tag != "" {
					req.Header.Set("X-Tag", tr.tag)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if diff := cmp.Diff(string(body), tr.tag+" o2-header"); diff != "" {
					t.Errorf("handler saw (-got +want):\n%s", diff)
				}
				srv.Close() // the server span has ended once the server is closed

				var server sdktrace.ReadOnlySpan
				for _, s := range sr.Ended() {
					if s.SpanKind() == trace.SpanKindServer {
						server = s
					}
				}
				if server == nil {
					t.Fatal("no server span")
				}
				if diff := cmp.Diff(server.Name(), "POST /orders/{id}"); diff != "" {
					t.Errorf("span name (-got +want):\n%s", diff)
				}
				attrs := map[attribute.Key]string{}
				for _, kv := range server.Attributes() {
					attrs[kv.Key] = kv.Value.String()
				}
				want := map[attribute.Key]string{
					"http.route":          "/orders/{id}",
					tagctx.AttrTrafficTag: tr.tag,
					tagctx.AttrNodeTag:    tr.node.String(),
				}
				for k, v := range want {
					if attrs[k] != v {
						t.Errorf("span attribute %s = %q, want %q", k, attrs[k], v)
					}
				}
				if got := metricRoute(t, reader); got != "/orders/{id}" {
					t.Errorf("http.route on otelhttp's duration metric = %q, want %q", got, "/orders/{id}")
				}
				mu.Lock()
				defer mu.Unlock()
				if len(obs) != 1 || obs[0].Operation != rt.pattern {
					t.Errorf("observations %+v, want one with Operation %q", obs, rt.pattern)
				}
			})
		}
	}
}

// metricRoute returns the http.route of otelhttp's request duration metric.
func metricRoute(t *testing.T, r *sdkmetric.ManualReader) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "http.server.request.duration" {
				for _, dp := range h.DataPoints {
					if v, ok := dp.Attributes.Value("http.route"); ok {
						return v.AsString()
					}
				}
			}
		}
	}
	return ""
}

// TestOperationWithoutRouter: with no router to set a pattern, the
// observation names the path, as before.
func TestOperationWithoutRouter(t *testing.T) {
	var got string
	h := httpmw.Handler(http.NotFoundHandler(), httpmw.WithNode(tagctx.Tag{}),
		httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { got = o.Operation }))
	req := httptest.NewRequest(http.MethodGet, "/orders/o1", nil)
	req.Header.Set("X-Tag", "feature-x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "/orders/o1" {
		t.Errorf("Operation %q, want the path", got)
	}
}

// TestProofRecordedOnPanic: a handler that panics still leaves its proof.
func TestProofRecordedOnPanic(t *testing.T) {
	n := 0
	h := httpmw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }),
		httpmw.WithNode(tagctx.Tag{}),
		httpmw.WithObserver(func(context.Context, tagctx.Observation) { n++ }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tag", "feature-x")
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	if n != 1 {
		t.Errorf("observer ran %d times, want 1", n)
	}
}

// BenchmarkMiddlewareMetrics: the middleware with tagctx.Metrics (on the
// OpenTelemetry SDK) as its observer, against a no-op observer: untagged
// traffic on a stable node must stay at 0 allocations, tagged at the
// middleware's own 2.
func BenchmarkMiddlewareMetrics(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	metrics, err := tagctx.NewMetrics(mp)
	if err != nil {
		b.Fatal(err)
	}
	observers := []struct {
		name string
		obs  tagctx.Observer
	}{
		{"noop-observer", func(context.Context, tagctx.Observation) {}},
		{"metrics", metrics.Observe},
	}
	for _, traffic := range []string{"untagged", "tagged"} {
		header := http.Header{"Accept": {"*/*"}}
		if traffic == "tagged" {
			header.Set("X-Tag", "feature-x")
		}
		for _, o := range observers {
			b.Run(traffic+"/"+o.name, func(b *testing.B) {
				benchServe(b, httpmw.Handler(final, httpmw.WithNode(tagctx.Tag{}), httpmw.WithObserver(o.obs)), header)
			})
		}
	}
}
