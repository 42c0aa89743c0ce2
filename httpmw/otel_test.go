package httpmw_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// TestOtelhttp composes with otelhttp the way the package doc says: its
// handler outside (so the route proof lands on its server span), its
// transport outside (so the tag member is merged into the baggage it
// writes, not overwritten by it).
func TestOtelhttp(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	otelOpts := []otelhttp.Option{
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.Baggage{}),
	}

	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("Baggage"))
	}))
	t.Cleanup(b.Close)
	aClient := &http.Client{Transport: otelhttp.NewTransport(httpmw.Transport(&http.Transport{}), otelOpts...)}
	t.Cleanup(aClient.CloseIdleConnections)
	a := httptest.NewServer(otelhttp.NewHandler(httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The service's own baggage, which must survive beside the tag.
		m, _ := baggage.NewMemberRaw("userid", "42")
		bag, _ := baggage.New(m)
		ctx := baggage.ContextWithBaggage(r.Context(), bag)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL, nil)
		resp, err := aClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(w, resp.Body)
	}), httpmw.WithNode(tagctx.Tag{})), "a", otelOpts...))
	t.Cleanup(a.Close)

	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	req, _ := http.NewRequest(http.MethodGet, a.URL, nil)
	req.Header.Set("X-Tag", "feature-x")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if diff := cmp.Diff(string(body), "userid=42,x-tag=feature-x"); diff != "" {
		t.Errorf("baggage B received (-got +want):\n%s", diff)
	}

	var server sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			server = s
		}
	}
	if server == nil {
		t.Fatal("no server span")
	}
	var got []attribute.KeyValue
	for _, kv := range server.Attributes() {
		switch kv.Key {
		case tagctx.AttrTrafficTag, tagctx.AttrNodeTag, tagctx.AttrRoute:
			got = append(got, kv)
		}
	}
	want := []attribute.KeyValue{
		tagctx.AttrTrafficTag.String("feature-x"),
		tagctx.AttrNodeTag.String(""),
		tagctx.AttrRoute.String("fallback"),
	}
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b attribute.KeyValue) bool { return a == b })); diff != "" {
		t.Errorf("server span attributes (-got +want):\n%s", diff)
	}
}

// TestTransportConcurrent drives the member cache from many goroutines,
// past its bound, for the race detector.
func TestTransportConcurrent(t *testing.T) {
	var got sync.Map // tag -> baggage sent
	rt := httpmw.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got.Store(r.Header.Get("X-Tag"), r.Header.Get("Baggage"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				tag := tagctx.MustParse(fmt.Sprintf("lane-%d", (i*7+g)%400))
				req, _ := http.NewRequestWithContext(tagctx.With(context.Background(), tag), http.MethodGet, "http://b.test/", nil)
				if _, err := rt.RoundTrip(req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := 0
	got.Range(func(k, v any) bool {
		n++
		if want := "x-tag=" + k.(string); v != want {
			t.Errorf("tag %s sent baggage %q, want %q", k, v, want)
		}
		return true
	})
	if n != 400 {
		t.Errorf("%d tags sent, want 400", n)
	}
}
