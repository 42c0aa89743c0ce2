package discovery

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/taglane/taglane/tagctx"
)

// BenchmarkHTTPPick: the routing Transport's choice of an instance, for a
// service with 1, 10 and 1000 lanes (two instances each, and stable): a
// map lookup and an atomic add, flat in the number of lanes.
func BenchmarkHTTPPick(b *testing.B) {
	for _, lanes := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			insts := []Instance{{Service: "s", Addr: "10.0.0.1:80"}, {Service: "s", Addr: "10.0.0.2:80"}}
			var last tagctx.Tag
			for i := range lanes {
				last = tagctx.MustParse(fmt.Sprintf("lane-%d", i))
				for j := range 2 {
					insts = append(insts, Instance{Service: "s", Addr: fmt.Sprintf("10.1.%d.%d:80", i%250, j), Tag: last})
				}
			}
			tb := newTable(insts, Lanes{})
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tb.pick(last); !ok {
					b.Fatal("no pick")
				}
			}
		})
	}
}

type nopCC struct{}

func (nopCC) UpdateState(resolver.State) error { return nil }
func (nopCC) ReportError(error)                {}
func (nopCC) NewAddress([]resolver.Address)    {}
func (nopCC) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

// BenchmarkResolverUpdate: what the resolver does with one registry update
// of a service with 1,000 instances in 100 lanes (the gRPC state) and what
// the Transport does with it (its routing table).
func BenchmarkResolverUpdate(b *testing.B) {
	insts := make([]Instance, 1000)
	for i := range insts {
		insts[i] = Instance{Service: "s", Addr: fmt.Sprintf("10.%d.%d.1:80", i/250, i%250)}
		if i%10 != 0 {
			insts[i].Tag = tagctx.MustParse(fmt.Sprintf("lane-%d", i%100))
		}
	}
	s := State{Instances: insts}
	b.Run("grpc", func(b *testing.B) {
		o, err := newOptions(nil)
		if err != nil {
			b.Fatal(err)
		}
		r := &regResolver{cc: nopCC{}, o: o}
		b.ReportAllocs()
		for b.Loop() {
			r.update(s)
		}
	})
	b.Run("http", func(b *testing.B) {
		svc := &httpService{ready: make(chan struct{})}
		b.ReportAllocs()
		for b.Loop() {
			svc.update(s, Lanes{})
		}
	})
}
