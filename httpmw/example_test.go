package httpmw_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

func ExampleMiddleware() {
	mux := http.NewServeMux()
	mux.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "lane %q", tagctx.From(r.Context()))
	})
	handler := httpmw.Middleware()(mux)

	srv := httptest.NewServer(handler)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders", nil)
	req.Header.Set("X-Tag", "Feature-X")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: lane "feature-x"
}

func ExampleNew() {
	_, err := httpmw.New(httpmw.WithHostPattern("app.test.example.com"))
	fmt.Println(err)
	// Output: httpmw: WithHostPattern("app.test.example.com"): must contain "{tag}" exactly once, not 0 times
}

func ExampleTransport() {
	// A base that prints what would go on the wire.
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		fmt.Println("X-Tag:", r.Header.Get("X-Tag"))
		fmt.Println("Baggage:", r.Header.Get("Baggage"))
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	client := &http.Client{Transport: httpmw.Transport(base)}

	// In a handler behind the middleware, r.Context() already carries it.
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://stock.test/check", nil)
	req.Header.Set("Baggage", "userid=42")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("caller's baggage untouched:", req.Header.Get("Baggage"))
	// Output:
	// X-Tag: feature-x
	// Baggage: userid=42,x-tag=feature-x
	// caller's baggage untouched: userid=42
}

func ExampleWithHostPattern() {
	handler := httpmw.Handler(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Printf("lane %q\n", tagctx.From(r.Context()))
		}),
		httpmw.WithHostPattern("app-{tag}.test.example.com"),
	)
	for _, host := range []string{
		"app-feature-x.test.example.com",
		"APP-Feature-Y.test.example.com:8443",
		"app.test.example.com", // the stable entry
	} {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil)
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// lane "feature-x"
	// lane "feature-y"
	// lane ""
}

// A production edge: outside callers cannot pick a lane, and the tag they
// sent is gone before any handler could forward it.
func ExampleWithTrust_strip() {
	handler := httpmw.Handler(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Printf("lane %q, X-Tag %q, baggage %q\n",
				tagctx.From(r.Context()), r.Header.Get("X-Tag"), r.Header.Get("Baggage"))
		}),
		httpmw.WithTrust(tagctx.TrustNone()),
		httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
			fmt.Println("reported:", o.Rejected)
		}),
	)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tag", "feature-x")
	req.Header.Set("Baggage", "userid=42,x-tag=feature-x")
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// lane "", X-Tag "", baggage "userid=42"
	// reported: httpmw: inbound tag not trusted: this entry point strips inbound tags
}

// Lane tags only from the test environment's own network.
func ExampleWithTrust_networks() {
	handler := httpmw.Handler(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Printf("%s: lane %q\n", r.RemoteAddr, tagctx.From(r.Context()))
		}),
		httpmw.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))),
	)
	for _, peer := range []string{"10.1.2.3:5000", "192.0.2.1:5000"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Tag", "feature-x")
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	// Output:
	// 10.1.2.3:5000: lane "feature-x"
	// 192.0.2.1:5000: lane ""
}

func ExampleWithRejectInvalid() {
	handler := httpmw.Handler(http.NotFoundHandler(), httpmw.WithRejectInvalid())
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Tag", "feature_x")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body)
	// Output: 400 httpmw: header "X-Tag": tagctx: invalid tag "feature_x": character '_' at byte 7 is not in [a-z0-9-]
}

// The route proof of every request, for metrics and logs.
func ExampleWithObserver() {
	handler := httpmw.Handler(http.NotFoundHandler(),
		httpmw.WithNode(tagctx.Tag{}), // a stable instance
		httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
			fmt.Printf("%s %s traffic=%q node=%q route=%s\n", o.Transport, o.Operation, o.Traffic, o.Node, o.Route)
		}),
	)
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("X-Tag", "feature-x")
	handler.ServeHTTP(httptest.NewRecorder(), req)
	// Output: http /orders traffic="feature-x" node="" route=fallback
}

// A strict lane instance refuses traffic of another lane, so a client that
// reached it through stale discovery learns why and can pick again.
func ExampleWithStrict() {
	handler := httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "served")
	}), httpmw.WithStrict(), httpmw.WithNode(tagctx.MustParse("feature-x")),
		httpmw.WithObserver(func(context.Context, tagctx.Observation) {})) // hears the refusal: Rejected matches ErrMisdirected

	for _, tag := range []string{"feature-x", "feature-y"} {
		req := httptest.NewRequest(http.MethodGet, "/orders", nil)
		req.Header.Set("X-Tag", tag)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Printf("%s: %d %q\n", tag, rec.Code, rec.Header().Get(httpmw.RefusedHeader))
	}
	// Output:
	// feature-x: 200 ""
	// feature-y: 421 "traffic=feature-y node=feature-x"
}

// Behind an edge that strips tags, the transport sends "untagged" as an
// empty X-Tag, so the next hop cannot take a lane from the Host or the
// baggage the caller sent.
func ExampleTransport_untaggedMark() {
	var sent http.Header
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent = r.Header }))
	defer next.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: httpmw.Transport(tr)}

	edge := httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, next.URL, nil)
		out.Header = r.Header.Clone() // forwarding what came in
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
	}), httpmw.WithTrust(tagctx.TrustNone()))

	req := httptest.NewRequest(http.MethodGet, "http://app-evil.test.example.com/", nil)
	req.Header.Set("Baggage", "userid=42,x-tag=evil")
	edge.ServeHTTP(httptest.NewRecorder(), req)
	fmt.Printf("X-Tag %q, Baggage %q\n", sent.Get("X-Tag"), sent.Get("Baggage"))
	// Output:
	// X-Tag "", Baggage "userid=42"
}
