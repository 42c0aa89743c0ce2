package httpmw_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// serveOnce runs one request with an X-Tag header through h in process.
func serveOnce(h http.Handler, tag string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/orders/o1", nil)
	if tag != "" {
		req.Header.Set("X-Tag", tag)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var laneHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Printf("lane %q\n", tagctx.From(r.Context()))
})

func ExampleHandler() {
	h := httpmw.Handler(laneHandler)
	serveOnce(h, "feature-x")
	// Output: lane "feature-x"
}

// otelhttp outside, as documented: the server span is named after the
// route pattern of the mux inside, and carries the route proof.
func ExampleHandler_otelhttp() {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer tp.Shutdown(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(http.ResponseWriter, *http.Request) {})
	h := otelhttp.NewHandler(httpmw.Handler(mux, httpmw.WithNode(tagctx.Tag{})), "orders", otelhttp.WithTracerProvider(tp))
	serveOnce(h, "feature-x")

	span := sr.Ended()[0]
	fmt.Println(span.Name())
	for _, kv := range span.Attributes() {
		switch kv.Key {
		case "http.route", tagctx.AttrTrafficTag, tagctx.AttrRoute:
			fmt.Printf("%s=%s\n", kv.Key, kv.Value.String())
		}
	}
	// Unordered output:
	// GET /orders/{id}
	// http.route=/orders/{id}
	// taglane.traffic_tag=feature-x
	// taglane.route=fallback
}

func ExampleNewTransport() {
	_, err := httpmw.NewTransport(nil, httpmw.WithBaggageKey("bad key"))
	fmt.Println(err != nil)
	rt, err := httpmw.NewTransport(nil) // nil base: http.DefaultTransport
	fmt.Println(rt != nil, err)
	// Output:
	// true
	// true <nil>
}

// The node tag of the instance behind the middleware, for processes that
// host several instances; the route proof compares it with the traffic's.
func ExampleWithNode() {
	h := httpmw.Handler(http.NotFoundHandler(), httpmw.WithNode(tagctx.MustParse("feature-x")), httpmw.WithRouteHeader())
	fmt.Println(serveOnce(h, "feature-x").Header().Get(httpmw.RouteHeader))
	fmt.Println(serveOnce(h, "feature-y").Header().Get(httpmw.RouteHeader))
	// Output:
	// traffic=feature-x node=feature-x route=matched
	// traffic=feature-y node=feature-x route=misroute
}

func ExampleWithRouteHeader() {
	h := httpmw.Handler(http.NotFoundHandler(), httpmw.WithNode(tagctx.Tag{}), httpmw.WithRouteHeader())
	fmt.Println(serveOnce(h, "feature-x").Header().Get(httpmw.RouteHeader))
	// Output: traffic=feature-x node= route=fallback
}

// Behind a proxy that appends the caller's address to X-Forwarded-For,
// network trust judges that address, not the proxy's.
func ExampleWithForwardedFor() {
	h := httpmw.Handler(laneHandler,
		httpmw.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))),
		httpmw.WithForwardedFor())
	for _, caller := range []string{"10.1.2.3", "192.0.2.1"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "10.0.0.1:443" // the proxy
		req.Header.Set("X-Forwarded-For", caller)
		req.Header.Set("X-Tag", "feature-x")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// lane "feature-x"
	// lane ""
}

// A system that already sends a bare "tag" header: read it after X-Tag.
func ExampleWithHeaders() {
	h := httpmw.Handler(laneHandler, httpmw.WithHeaders("X-Tag", "Tag"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Tag", "feature-x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output: lane "feature-x"
}

func ExampleWithBaggageKey() {
	h := httpmw.Handler(laneHandler, httpmw.WithBaggageKey("lane"))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Baggage", "userid=42,lane=feature-x")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output: lane "feature-x"
}
