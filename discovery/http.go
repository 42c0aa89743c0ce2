package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// ErrNoInstance is wrapped by the error of a request that no instance of
// its chain can serve.
var ErrNoInstance = errors.New("no instance")

// ErrRefused is wrapped by the error of a request that a strict instance
// (httpmw.WithStrict) refused as traffic of another lane, when no other
// instance of the chain served it either.
var ErrRefused = errors.New("refused by a strict instance")

// Transport is an http.RoundTripper that sends a request for a service to
// an instance of the right lane. A request whose URL host is the name of
// one of its services ("http://orders/v1/items") goes to an instance of
// that service, chosen by the request context's effective tag
// (tagctx.Effective) with the lane balancer's rules: the tag's lane, its
// parent lanes in order, then the stable instances unless the fallback
// policy is "fail"; untagged requests go to stable instances only; round
// robin inside the chosen lane. Requests for other hosts go to the base
// RoundTripper unchanged.
//
// The Transport only routes: it does not put the tag on the request. Wrap
// it in httpmw's transport (or give that one as WithBase) so the next hop
// learns the tag.
type Transport struct {
	o        *options
	services map[string]*httpService
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport watches services in reg and returns a Transport routing
// requests for them. Close it to stop the watches.
func NewTransport(reg Registry, services []string, opts ...Option) (*Transport, error) {
	if reg == nil {
		return nil, errors.New("discovery: NewTransport: nil registry")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := o.lanes.Check(); err != nil {
		return nil, err
	}
	if o.maxAttempts < 1 {
		return nil, fmt.Errorf("discovery: NewTransport: %d max attempts, want at least 1", o.maxAttempts)
	}
	if o.base == nil {
		return nil, errors.New("discovery: NewTransport: nil base RoundTripper")
	}
	tr := &Transport{o: o, services: make(map[string]*httpService, len(services))}
	for _, name := range services {
		if err := CheckService(name); err != nil {
			tr.Close()
			return nil, err
		}
		if tr.services[name] != nil {
			continue
		}
		svc := &httpService{name: name, ready: make(chan struct{})}
		stop, err := reg.Watch(name, func(s State) { svc.update(s, o.lanes) })
		if err != nil {
			tr.Close()
			return nil, err
		}
		svc.stop = stop
		tr.services[name] = svc
	}
	return tr, nil
}

// CloseIdleConnections closes the base RoundTripper's idle connections,
// when it has such a method, as http.Client.CloseIdleConnections expects.
func (tr *Transport) CloseIdleConnections() {
	if c, ok := tr.o.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Close stops watching the registry. Requests in flight finish.
func (tr *Transport) Close() {
	for _, svc := range tr.services {
		if svc.stop != nil {
			svc.stop()
		}
	}
}

// httpService is the routing table of one service, replaced whole on every
// registry update, so a pick reads one pointer.
type httpService struct {
	name  string
	stop  func()
	table atomic.Pointer[table]
	once  sync.Once
	ready chan struct{} // closed at the first update
}

func (svc *httpService) update(s State, local Lanes) {
	svc.table.Store(newTable(s.Instances, s.Lanes.Over(local)))
	svc.once.Do(func() { close(svc.ready) })
}

// hgroup is the instances of one tag, picked in round robin.
type hgroup struct {
	addrs []string
	next  atomic.Uint32
}

// hplan is the chain of one traffic tag: the groups that exist, in order.
type hplan struct {
	groups []*hgroup
	tried  string
}

type table struct {
	plans    map[tagctx.Tag]*hplan
	unknown  *hplan
	untagged *hplan
	fallback rpc.Fallback
}

func newTable(insts []Instance, lanes Lanes) *table {
	groups := make(map[tagctx.Tag]*hgroup)
	for _, inst := range insts {
		g := groups[inst.Tag]
		if g == nil {
			g = &hgroup{}
			groups[inst.Tag] = g
		}
		g.addrs = append(g.addrs, inst.Addr)
	}
	fb := lanes.Fallback
	if fb == "" {
		fb = rpc.FallbackStable
	}
	tb := &table{plans: make(map[tagctx.Tag]*hplan, len(groups)+len(lanes.Parents)), fallback: fb}
	chain := func(t tagctx.Tag) []tagctx.Tag {
		c := append([]tagctx.Tag{t}, lanes.Parents[t]...)
		if fb != rpc.FallbackFail {
			c = append(c, tagctx.Tag{})
		}
		return c
	}
	for t := range groups {
		if !t.IsZero() {
			tb.plans[t] = makeHPlan(groups, chain(t))
		}
	}
	for t := range lanes.Parents {
		if tb.plans[t] == nil {
			tb.plans[t] = makeHPlan(groups, chain(t))
		}
	}
	tb.untagged = makeHPlan(groups, []tagctx.Tag{{}})
	var unknown []tagctx.Tag
	if fb != rpc.FallbackFail {
		unknown = []tagctx.Tag{{}}
	}
	tb.unknown = makeHPlan(groups, unknown)
	return tb
}

func makeHPlan(groups map[tagctx.Tag]*hgroup, chain []tagctx.Tag) *hplan {
	pl := &hplan{}
	names := make([]string, len(chain))
	for i, t := range chain {
		if t.IsZero() {
			names[i] = "stable"
		} else {
			names[i] = fmt.Sprintf("lane %q", t)
		}
		if g := groups[t]; g != nil {
			pl.groups = append(pl.groups, g)
		}
	}
	pl.tried = strings.Join(names, ", ")
	return pl
}

// plan returns the chain of traffic tag t: a map lookup, whatever the
// number of lanes.
func (tb *table) plan(t tagctx.Tag) *hplan {
	if t.IsZero() {
		return tb.untagged
	}
	if pl, ok := tb.plans[t]; ok {
		return pl
	}
	return tb.unknown
}

// pick returns the instance that serves a request tagged t first: round
// robin in the first group of its chain. It does not allocate.
func (tb *table) pick(t tagctx.Tag) (string, bool) {
	pl := tb.plan(t)
	if len(pl.groups) == 0 {
		return "", false
	}
	g := pl.groups[0]
	return g.addrs[g.next.Add(1)%uint32(len(g.addrs))], true
}

func (tr *Transport) noInstance(svc string, tb *table, t tagctx.Tag) error {
	pl := tb.plan(t)
	if t.IsZero() {
		return fmt.Errorf("discovery: service %q: no stable instance for an untagged request: %w", svc, ErrNoInstance)
	}
	tried := pl.tried
	if pl == tb.unknown {
		tried = fmt.Sprintf("lane %q", t)
		if pl.tried != "" {
			tried += ", " + pl.tried
		}
	}
	return fmt.Errorf("discovery: service %q: no instance for tag %q (fallback policy %q; tried %s): %w", svc, t, tb.fallback, tried, ErrNoInstance)
}

// RoundTrip routes req (see Transport). When an instance is unreachable
// (the connection could not be made, so nothing was sent), the request
// goes to the next instance of its chain: the lane's other instances, then
// the next lane's, up to WithMaxAttempts, and only if its body can be sent
// again (no body, or Request.GetBody). A strict instance's refusal (421
// with httpmw.RefusedHeader: the registry is stale and the address serves
// another lane now) is treated the same way, since the instance refused
// before serving. Any other error after a connection was made is returned
// as it is: the request may have been sent.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	svc := tr.services[req.URL.Host]
	if svc == nil {
		return tr.o.base.RoundTrip(req)
	}
	ctx := req.Context()
	tb := svc.table.Load()
	if tb == nil {
		var err error
		if tb, err = svc.wait(ctx, tr.o.firstWait); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	t := tagctx.Effective(ctx)
	pl := tb.plan(t)
	if len(pl.groups) == 0 {
		closeBody(req)
		return nil, tr.noInstance(svc.name, tb, t)
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	attempts := 0
	var lastErr error
	for gi, g := range pl.groups {
		n := len(g.addrs)
		start := g.next.Add(1)
		for i := range n {
			if attempts == tr.o.maxAttempts {
				return nil, fmt.Errorf("discovery: service %q: %d attempts failed: %w", svc.name, attempts, lastErr)
			}
			addr := g.addrs[(start+uint32(i))%uint32(n)]
			// The caller's request is not changed: a copy goes out, its URL
			// copied in the same allocation.
			rr := &routed{r: *req, u: *req.URL}
			rr.u.Host = addr
			out := &rr.r
			out.URL = &rr.u
			if out.Host == "" {
				out.Host = svc.name // the service name, not the instance's address
			}
			if attempts > 0 && req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("discovery: service %q: replay body: %w", svc.name, err)
				}
				out.Body = body
			}
			attempts++
			resp, err := tr.o.base.RoundTrip(out)
			if err == nil {
				refused := resp.Header.Get(httpmw.RefusedHeader)
				if resp.StatusCode != http.StatusMisdirectedRequest || refused == "" || !replayable || ctx.Err() != nil {
					return resp, nil
				}
				// A strict instance (httpmw.WithStrict) refused the request
				// before serving it: the registry is stale, the address now
				// belongs to another lane. The request was not processed, so
				// it goes to the next instance, as after a refused dial.
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
				resp.Body.Close()
				err = fmt.Errorf("discovery: service %q: instance %s refused the request (%s): %w", svc.name, addr, tagctx.Quote(refused), ErrRefused)
				tr.o.report(err)
				lastErr = err
				continue
			}
			if !notSent(err) || !replayable || ctx.Err() != nil {
				return nil, err
			}
			tr.o.report(fmt.Errorf("discovery: service %q: instance %s (group %d of the chain) unreachable: %w", svc.name, addr, gi, err))
			lastErr = err
		}
	}
	return nil, fmt.Errorf("discovery: service %q: no instance of the chain served the request: %w", svc.name, lastErr)
}

// routed is a request sent to an instance and its URL.
type routed struct {
	r http.Request
	u url.URL
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// notSent reports whether err says the connection was never made, so the
// request cannot have reached the instance.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (svc *httpService) wait(ctx context.Context, d time.Duration) (*table, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-svc.ready:
		return svc.table.Load(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("discovery: service %q: waiting for the registry: %w", svc.name, ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("discovery: service %q: no state from the registry within %v: %w", svc.name, d, ErrNoInstance)
	}
}
