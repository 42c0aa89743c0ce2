package discovery_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/tagctx"
)

// serveName starts an HTTP server on 127.0.0.1 that answers its name.
func serveName(name string) (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }
}

func ExampleNewTransport() {
	ctx := context.Background()
	reg := discovery.NewMemory()
	stable, stop1 := serveName("pricing (stable)")
	defer stop1()
	lane, stop2 := serveName("pricing (feature-x)")
	defer stop2()
	reg.Register(ctx, discovery.Instance{Service: "pricing", Addr: stable})
	r, _ := reg.Register(ctx, discovery.Instance{Service: "pricing", Addr: lane, Tag: tagctx.MustParse("feature-x")})

	base := &http.Transport{}
	defer base.CloseIdleConnections()
	tr, err := discovery.NewTransport(reg, []string{"pricing"}, discovery.WithBase(base))
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	get := func(ctx context.Context) string {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://pricing/quote", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	featureX := tagctx.With(ctx, tagctx.MustParse("feature-x"))
	fmt.Println(get(featureX))
	fmt.Println(get(tagctx.WithUntagged(ctx)))

	// Graceful stop: the lane's traffic falls back to stable.
	r.Close(ctx)
	// The Transport applies the change from its watch goroutine.
	for i := 0; i < 10000 && get(featureX) != "pricing (stable)"; i++ {
	}
	fmt.Println(get(featureX))
	// Output:
	// pricing (feature-x)
	// pricing (stable)
	// pricing (stable)
}

func ExampleParseLanes() {
	l, err := discovery.ParseLanes([]byte(`{"fallback":"stable","parents":{"feature-x2":["feature-x"]}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Fallback, l.Parents[tagctx.MustParse("feature-x2")])
	_, err = discovery.ParseLanes([]byte(`{"parent":{}}`))
	fmt.Println(err)
	// Output:
	// stable [feature-x]
	// discovery: lanes "{\"parent\":{}}": invalid: json: unknown field "parent"
}

// A bad option is the constructor's error, naming the option; it never
// panics.
func ExampleWithScheme() {
	reg := discovery.NewMemory()
	_, err := discovery.NewResolver(reg, discovery.WithScheme("1lane"))
	fmt.Println(err)
	b, err := discovery.NewResolver(reg, discovery.WithScheme("lanes"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Scheme())
	// Output:
	// discovery: WithScheme("1lane"): want a letter, then letters, digits, '+', '-' or '.'
	// lanes
}

func ExampleWithMaxAttempts() {
	_, err := discovery.NewTransport(discovery.NewMemory(), []string{"stock"}, discovery.WithMaxAttempts(0))
	fmt.Println(err)
	// Output:
	// discovery: WithMaxAttempts(0): want at least 1
}
