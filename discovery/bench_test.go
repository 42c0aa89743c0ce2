package discovery_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/tagctx"
)

// benchServer serves "ok" on 127.0.0.1.
func benchServer(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), ReadHeaderTimeout: time.Minute}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func get(b *testing.B, c *http.Client, req *http.Request) {
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// benchClients returns a plain client of addr and a routing client of the
// service "bench" registered at addr (one stable and one lane instance,
// the lane's request), each with its own connection pool.
func benchClients(b *testing.B) (plain, routed *http.Client, plainReq, routedReq *http.Request) {
	addr := benchServer(b)
	reg := discovery.NewMemory()
	ctx := context.Background()
	for _, inst := range []discovery.Instance{
		{Service: "bench", Addr: addr, Tag: tagctx.MustParse("feature-x")},
		{Service: "bench", Addr: benchServer(b)},
	} {
		if _, err := reg.Register(ctx, inst); err != nil {
			b.Fatal(err)
		}
	}
	pb, rb := &http.Transport{}, &http.Transport{}
	b.Cleanup(pb.CloseIdleConnections)
	b.Cleanup(rb.CloseIdleConnections)
	tr, err := discovery.NewTransport(reg, []string{"bench"}, discovery.WithBase(rb))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(tr.Close)
	tagged := tagctx.With(ctx, tagctx.MustParse("feature-x"))
	plainReq, _ = http.NewRequestWithContext(tagged, "GET", "http://"+addr+"/", nil)
	routedReq, _ = http.NewRequestWithContext(tagged, "GET", "http://bench/", nil)
	return &http.Client{Transport: pb}, &http.Client{Transport: tr}, plainReq, routedReq
}

// BenchmarkRoundTrip: one GET on loopback through a plain http.Transport
// and through the routing Transport over the same kind of Transport.
func BenchmarkRoundTrip(b *testing.B) {
	plain, routed, plainReq, routedReq := benchClients(b)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, plain, plainReq)
		}
	})
	b.Run("routed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get(b, routed, routedReq)
		}
	})
}

// BenchmarkRoutingOverhead alternates blocks of plain and routed requests,
// so both see the same machine load, and reports the median time per
// request of each and the routed overhead in percent.
func BenchmarkRoutingOverhead(b *testing.B) {
	plain, routed, plainReq, routedReq := benchClients(b)
	const block = 50
	var ps, rs []float64
	run := func(c *http.Client, req *http.Request) float64 {
		start := time.Now()
		for range block {
			get(b, c, req)
		}
		return float64(time.Since(start).Nanoseconds()) / block
	}
	for b.Loop() {
		ps = append(ps, run(plain, plainReq))
		rs = append(rs, run(routed, routedReq))
	}
	slices.Sort(ps)
	slices.Sort(rs)
	p, r := ps[len(ps)/2], rs[len(rs)/2]
	b.ReportMetric(p, "plain-ns/req")
	b.ReportMetric(r, "routed-ns/req")
	b.ReportMetric(100*(r-p)/p, "overhead-%")
}
