package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// The handlers read the tag each side delivers, as a lane-aware handler
// does: bare from the header, taglane from the context, otelhttp from the
// context's baggage.
var (
	bareHandler = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sinkString = r.Header.Get("X-Tag")
	})
	taglaneHandler = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sinkTag = tagctx.From(r.Context())
	})
	otelHandler = http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sinkString = baggage.FromContext(r.Context()).Member("x-tag").Value()
	})
)

type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

func otelBaggageOnly() otelhttp.Option {
	return otelhttp.WithPropagators(propagation.Baggage{})
}

// BenchmarkHTTPMiddleware serves one prebuilt tagged request in process
// (no network, a writer that discards): the bare handler reading the
// header itself, httpmw, and otelhttp's handler propagating baggage.
func BenchmarkHTTPMiddleware(b *testing.B) {
	serve := func(h http.Handler, header http.Header) func(*testing.B) {
		return func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header, req.RemoteAddr = header, "127.0.0.1:40000"
			w := nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		}
	}
	taglane := serve(httpmw.Handler(taglaneHandler), taglaneInbound())
	vs(b, "bare", serve(bareHandler, taglaneInbound()), taglane)
	vs(b, "otelhttp-baggage", serve(otelhttp.NewHandler(otelHandler, "serve", otelBaggageOnly()), otelInbound()), taglane)
}

// nopTransport answers at once with a fresh response: otelhttp's
// transport wraps the response's body in place, so a shared response
// would grow a chain of wrappers that every later Close walks.
type nopTransport struct{}

func (nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
}

// bareTagTransport is the floor of the transport's job: copy the request
// (a RoundTripper must not change the caller's) and set the two headers a
// tagged taglane request carries, from a tag it already knows.
type bareTagTransport struct{ base http.RoundTripper }

func (t bareTagTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header["X-Tag"] = []string{"feature-x"}
	r.Header["Baggage"] = []string{"x-tag=feature-x"}
	return t.base.RoundTrip(r)
}

// BenchmarkHTTPTransport sends one tagged request through each side's
// transport onto a base that answers at once: the bare copy-and-set,
// httpmw's transport and otelhttp's transport propagating baggage.
func BenchmarkHTTPTransport(b *testing.B) {
	base := nopTransport{}
	send := func(rt http.RoundTripper, ctx context.Context) func(*testing.B) {
		return func(b *testing.B) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://stock.test/check", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Accept", "*/*")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		}
	}
	taglane := send(httpmw.Transport(base), tagctx.With(context.Background(), tagctx.MustParse("feature-x")))
	vs(b, "bare", send(bareTagTransport{base}, context.Background()), taglane)
	vs(b, "otelhttp-baggage", send(otelhttp.NewTransport(base, otelBaggageOnly()), otelTagged(b)), taglane)
}

// httpHop is one side of a full HTTP hop over loopback: a server with the
// side's middleware and a client with the side's transport.
type httpHop struct {
	name string
	vs   int
	ctx  context.Context
	wrap func(http.Handler) http.Handler
	rt   func(http.RoundTripper) http.RoundTripper
	h    http.Handler
}

func httpHops(tb testing.TB) []httpHop {
	return []httpHop{
		{name: "bare", vs: -1, ctx: context.Background(),
			wrap: func(h http.Handler) http.Handler { return h },
			rt:   func(rt http.RoundTripper) http.RoundTripper { return bareTagTransport{rt} },
			h:    bareHandler},
		{name: "taglane", vs: 0, ctx: tagctx.With(context.Background(), tagctx.MustParse("feature-x")),
			wrap: httpmw.Middleware(),
			rt:   func(rt http.RoundTripper) http.RoundTripper { return httpmw.Transport(rt) },
			h:    taglaneHandler},
		{name: "otelhttp-baggage", vs: 0, ctx: otelTagged(tb),
			wrap: func(h http.Handler) http.Handler { return otelhttp.NewHandler(h, "serve", otelBaggageOnly()) },
			rt:   func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt, otelBaggageOnly()) },
			h:    otelHandler},
	}
}

// serveHop starts hop's server on loopback and returns a func making one
// request through hop's client.
func serveHop(tb testing.TB, hop httpHop, h http.Handler) func() {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: hop.wrap(h)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	tb.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		<-served
	})
	client := &http.Client{Transport: hop.rt(tr)}
	url := "http://" + lis.Addr().String() + "/orders"
	return func() {
		req, err := http.NewRequestWithContext(hop.ctx, http.MethodGet, url, nil)
		if err != nil {
			tb.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkHTTPPaired is a whole hop over loopback TCP per op: the client's
// transport adds the tag, the server's middleware hands it to the handler.
// bare sets and reads the headers by hand; taglane and otelhttp are run
// against it in alternating blocks of 32 requests (see paired).
func BenchmarkHTTPPaired(b *testing.B) {
	const block = 32
	var sides []side
	for _, hop := range httpHops(b) {
		call := serveHop(b, hop, hop.h)
		sides = append(sides, side{hop.name, hop.vs, func() {
			for range block {
				call()
			}
		}})
	}
	b.ReportAllocs()
	paired(b, block, sides)
}

// TestSameJobHTTP checks that each side of BenchmarkHTTPPaired delivers
// feature-x to its handler over a real hop.
func TestSameJobHTTP(t *testing.T) {
	read := map[string]func(*http.Request) string{
		"bare":             func(r *http.Request) string { return r.Header.Get("X-Tag") },
		"taglane":          func(r *http.Request) string { return tagctx.From(r.Context()).String() },
		"otelhttp-baggage": func(r *http.Request) string { return baggage.FromContext(r.Context()).Member("x-tag").Value() },
	}
	for _, hop := range httpHops(t) {
		t.Run(hop.name, func(t *testing.T) {
			seen := make(chan string, 1)
			call := serveHop(t, hop, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				seen <- read[hop.name](r)
			}))
			call()
			if got := <-seen; got != "feature-x" {
				t.Errorf("handler saw tag %q, want feature-x", got)
			}
		})
	}
}
