package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/taglane/taglane/tagctx"
)

// fakeSubConn names the endpoint a pick went to.
type fakeSubConn struct {
	balancer.SubConn
	name string
}

// fakeChild is a pick_first child as endpointsharding reports it: READY
// children pick their SubConn; others answer like pick_first does.
func fakeChild(name string, tag tagctx.Tag, st connectivity.State) endpointsharding.ChildState {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: name}}}
	if !tag.IsZero() {
		ep = WithEndpointTag(ep, tag)
	}
	var p balancer.Picker
	switch st {
	case connectivity.Ready:
		p = readyPicker{balancer.PickResult{SubConn: &fakeSubConn{name: name}}}
	case connectivity.TransientFailure:
		p = errPicker{errors.New("connection refused")}
	default:
		p = errPicker{balancer.ErrNoSubConnAvailable}
	}
	return endpointsharding.ChildState{Endpoint: ep, State: balancer.State{ConnectivityState: st, Picker: p}}
}

type readyPicker struct{ r balancer.PickResult }

func (p readyPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) { return p.r, nil }

type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}

// onFirstAttempt reports the endpoints named as still on their first
// connection attempt; every other endpoint has been READY or failed.
func onFirstAttempt(names ...string) func(resolver.Endpoint) bool {
	return func(ep resolver.Endpoint) bool {
		return slices.Contains(names, ep.Addresses[0].Addr)
	}
}

func mustConfig(t testing.TB, js string) *lbConfig {
	t.Helper()
	cfg, err := parseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func pickInfo(tag string) balancer.PickInfo {
	ctx := tagctx.WithUntagged(context.Background())
	if tag != "" {
		ctx = tagctx.With(ctx, tagctx.MustParse(tag))
	}
	return balancer.PickInfo{FullMethodName: "/svc/M", Ctx: ctx}
}

// describe turns a pick into a comparable string: the endpoint, "queue",
// or the status code and whether the error is a status (final) or not
// (transient).
func describe(r balancer.PickResult, err error) string {
	switch {
	case err == nil:
		return r.SubConn.(*fakeSubConn).name
	case errors.Is(err, balancer.ErrNoSubConnAvailable):
		return "queue"
	}
	if s, ok := status.FromError(err); ok {
		return "status " + s.Code().String()
	}
	return "transient"
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		js      string
		want    string // fallback and chains, or the error's telling part
		wantErr bool
	}{
		{name: "empty means stable", js: `{}`, want: "stable map[]"},
		{name: "stable", js: `{"fallback":"stable"}`, want: "stable map[]"},
		{name: "fail", js: `{"fallback":"fail"}`, want: "fail map[]"},
		{name: "chain", js: `{"parents":{"A2":["a"]}}`, want: "stable map[a2:[a]]"},
		{name: "unknown policy", js: `{"fallback":"any"}`, want: `fallback "any"`, wantErr: true},
		{name: "misspelt field", js: `{"fallbak":"fail"}`, want: `unknown field "fallbak"`, wantErr: true},
		{name: "invalid lane", js: `{"parents":{"a_2":["a"]}}`, want: `invalid tag "a_2"`, wantErr: true},
		{name: "invalid parent", js: `{"parents":{"a2":["-a"]}}`, want: `invalid tag "-a"`, wantErr: true},
		{name: "self parent", js: `{"parents":{"a":["a"]}}`, want: `"a" repeats`, wantErr: true},
		{name: "repeated parent", js: `{"parents":{"a3":["a2","a2"]}}`, want: `"a2" repeats`, wantErr: true},
		{name: "not json", js: `[`, want: "rpc: taglane_lanes config", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(tt.js))
			var got string
			if err != nil {
				got = err.Error()
				if !tt.wantErr || !strings.HasPrefix(got, "rpc: ") || !strings.Contains(got, tt.want) {
					t.Fatalf("error %q, want one containing %q", got, tt.want)
				}
				return
			}
			if tt.wantErr {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			got = fmt.Sprintf("%s %v", cfg.Fallback, cfg.parents)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("config (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPick(t *testing.T) {
	a, b := tagctx.MustParse("a"), tagctx.MustParse("b")
	var stable tagctx.Tag
	const (
		ready = connectivity.Ready
		conn  = connectivity.Connecting
		idle  = connectivity.Idle
		tf    = connectivity.TransientFailure
	)
	tests := []struct {
		name     string
		config   string
		children []endpointsharding.ChildState
		first    []string // endpoints on their first connection attempt
		tag      string
		want     string
	}{
		{name: "lane ready", tag: "a", want: "a1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, ready)}},
		{name: "other lane never", tag: "a", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("b1", b, ready)}},
		{name: "lane reconnecting falls back at once", tag: "a", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, conn)}},
		{name: "lane coming up: wait for it", tag: "a", want: "queue", first: []string{"a1"},
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, conn)}},
		{name: "lane coming up, idle", tag: "a", want: "queue", first: []string{"a1"},
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, idle)}},
		{name: "lane with one failed and one coming up endpoint waits", tag: "a", want: "queue", first: []string{"a2"},
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, tf), fakeChild("a2", a, conn)}},
		{name: "lane ready beats its own endpoint coming up", tag: "a", want: "a1", first: []string{"a2"},
			children: []endpointsharding.ChildState{fakeChild("a1", a, ready), fakeChild("a2", a, conn)}},
		{name: "another lane coming up changes nothing", tag: "a", want: "s1", first: []string{"b1"},
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("b1", b, conn)}},
		{name: "lane failing falls back at once", tag: "a", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, tf)}},
		{name: "untagged never reaches a lane", tag: "", want: "status Unavailable",
			children: []endpointsharding.ChildState{fakeChild("a1", a, ready)}},
		{name: "untagged waits for connecting stable", tag: "", want: "queue",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, conn), fakeChild("a1", a, ready)}},
		{name: "idle stable counts as connecting", tag: "", want: "queue",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, idle)}},
		{name: "failing stable is transient", tag: "", want: "transient",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, tf), fakeChild("a1", a, ready)}},
		{name: "lane connecting, stable failing: queue", tag: "a", want: "queue",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, tf), fakeChild("a1", a, conn), fakeChild("b1", b, ready)}},
		{name: "no lane and no stable", tag: "c", want: "status Unavailable",
			children: []endpointsharding.ChildState{fakeChild("a1", a, ready)}},
		{name: "fail policy, lane ready", config: `{"fallback":"fail"}`, tag: "a", want: "a1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, ready)}},
		{name: "fail policy, no lane", config: `{"fallback":"fail"}`, tag: "c", want: "status Unavailable",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready)}},
		{name: "fail policy, lane failing", config: `{"fallback":"fail"}`, tag: "a", want: "transient",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, tf)}},
		{name: "fail policy, untagged still stable", config: `{"fallback":"fail"}`, tag: "", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, ready)}},
		{name: "chain to parent", config: `{"parents":{"a2":["a"]}}`, tag: "a2", want: "a1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, ready)}},
		{name: "chain waits for a parent coming up", config: `{"parents":{"a2":["a"]}}`, tag: "a2", want: "queue", first: []string{"a1"},
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, conn)}},
		{name: "chain to stable", config: `{"parents":{"a2":["a"]}}`, tag: "a2", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a1", a, tf)}},
		{name: "chain with fail stops at parents", config: `{"fallback":"fail","parents":{"a2":["a"]}}`, tag: "a2", want: "status Unavailable",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready)}},
		{name: "chain is not followed backwards", config: `{"parents":{"a2":["a"]}}`, tag: "a", want: "s1",
			children: []endpointsharding.ChildState{fakeChild("s1", stable, ready), fakeChild("a2", tagctx.MustParse("a2"), ready)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := tt.config
			if js == "" {
				js = "{}"
			}
			p := newPicker(mustConfig(t, js), tt.children, onFirstAttempt(tt.first...))
			got := describe(p.Pick(pickInfo(tt.tag)))
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("pick (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPickErrorSaysWhy(t *testing.T) {
	tests := []struct {
		name   string
		config string
		tag    string
		want   string
	}{
		{name: "unknown lane, stable policy", config: `{}`, tag: "c",
			want: `rpc: no ready endpoint for tag "c" (fallback policy "stable"; tried lane "c", stable): no endpoint`},
		{name: "unknown lane, fail policy", config: `{"fallback":"fail"}`, tag: "c",
			want: `rpc: no ready endpoint for tag "c" (fallback policy "fail"; tried lane "c"): no endpoint`},
		{name: "chain", config: `{"parents":{"a2":["a"]}}`, tag: "a2",
			want: `rpc: no ready endpoint for tag "a2" (fallback policy "stable"; tried lane "a2", lane "a", stable): no endpoint`},
		{name: "untagged", config: `{}`, tag: "",
			want: `rpc: no ready stable endpoint for an untagged call: no endpoint`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPicker(mustConfig(t, tt.config), []endpointsharding.ChildState{
				fakeChild("b1", tagctx.MustParse("b"), connectivity.Ready),
			}, onFirstAttempt())
			_, err := p.Pick(pickInfo(tt.tag))
			s := status.Convert(err)
			if diff := cmp.Diff(fmt.Sprint(s.Code(), ": ", s.Message()), "Unavailable: "+tt.want); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
		})
	}
}

// TestPickNeverMisroutes builds random topologies and configs and checks
// thousands of picks against a plain model of the rules: walking the
// chain, a pick goes to the READY endpoints of the first lane that has
// some, or queues at the first lane with an endpoint coming up; past the
// chain it queues only if an endpoint of the chain is reconnecting, else
// fails.
func TestPickNeverMisroutes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x7a61))
	lanes := []tagctx.Tag{}
	for _, s := range []string{"a", "b", "c", "d", "e", "f", "a2", "a3"} {
		lanes = append(lanes, tagctx.MustParse(s))
	}
	states := []connectivity.State{connectivity.Ready, connectivity.Ready, connectivity.Connecting, connectivity.Idle, connectivity.TransientFailure}
	const topologies, picksEach = 500, 20
	picks := 0
	for range topologies {
		// Topology: 0-5 stable endpoints, 0-5 lanes with 1-3 endpoints.
		var children []endpointsharding.ChildState
		tagOf := map[string]tagctx.Tag{}
		stateOf := map[string]connectivity.State{}
		var first []string
		add := func(name string, tag tagctx.Tag) {
			st := states[rng.IntN(len(states))]
			children = append(children, fakeChild(name, tag, st))
			tagOf[name], stateOf[name] = tag, st
			if (st == connectivity.Connecting || st == connectivity.Idle) && rng.IntN(2) == 0 {
				first = append(first, name)
			}
		}
		for i := range rng.IntN(6) {
			add(fmt.Sprintf("s%d", i), tagctx.Tag{})
		}
		perm := rng.Perm(len(lanes))
		for _, li := range perm[:rng.IntN(6)] {
			for j := range 1 + rng.IntN(3) {
				add(fmt.Sprintf("%s-%d", lanes[li], j), lanes[li])
			}
		}
		// Config: a random policy and a random chain for a2 and a3.
		fail := rng.IntN(2) == 0
		parents := map[tagctx.Tag][]tagctx.Tag{}
		if rng.IntN(2) == 0 {
			parents[lanes[6]] = []tagctx.Tag{lanes[0]}
			parents[lanes[7]] = []tagctx.Tag{lanes[6], lanes[0]}
		}
		cfg := map[string]any{"fallback": map[bool]string{true: "fail", false: "stable"}[fail]}
		if len(parents) > 0 {
			ps := map[string][]string{}
			for l, chain := range parents {
				for _, p := range chain {
					ps[l.String()] = append(ps[l.String()], p.String())
				}
			}
			cfg["parents"] = ps
		}
		b, _ := json.Marshal(cfg)
		js := string(b)
		p := newPicker(mustConfig(t, js), children, onFirstAttempt(first...))

		for range picksEach {
			tag := ""
			if n := rng.IntN(len(lanes) + 2); n < len(lanes) {
				tag = lanes[n].String()
			} else if n == len(lanes) {
				tag = "zz" // a lane nobody has
			}
			picks++
			got := describe(p.Pick(pickInfo(tag)))

			// The model.
			var chain []tagctx.Tag
			if tag == "" {
				chain = []tagctx.Tag{{}}
			} else {
				t := tagctx.MustParse(tag)
				chain = append([]tagctx.Tag{t}, parents[t]...)
				if !fail {
					chain = append(chain, tagctx.Tag{})
				}
			}
			allowed := map[string]bool{}
			pending, exists, wait := false, false, false
			for _, l := range chain {
				comingUp := false
				for name, t := range tagOf {
					if t != l {
						continue
					}
					exists = true
					switch stateOf[name] {
					case connectivity.Ready:
						allowed[name] = true
					case connectivity.Connecting, connectivity.Idle:
						pending = true
						comingUp = comingUp || slices.Contains(first, name)
					}
				}
				// The first lane with a READY endpoint takes it all; one
				// with an endpoint coming up is waited for.
				if len(allowed) > 0 {
					break
				}
				if comingUp {
					wait = true
					break
				}
			}
			var ok bool
			switch {
			case len(allowed) > 0:
				ok = allowed[got]
			case wait, pending:
				ok = got == "queue"
			case exists:
				ok = got == "transient"
			default:
				ok = got == "status Unavailable"
			}
			if !ok {
				t.Fatalf("misroute: tag %q, chain %v, topology %v %v first %v, config %s: got %q, allowed %v wait %v pending %v exists %v",
					tag, chain, tagOf, stateOf, first, js, got, allowed, wait, pending, exists)
			}
		}
	}
	t.Logf("%d picks over %d topologies, no misroute", picks, topologies)
}

func TestPickRoundRobinInLane(t *testing.T) {
	a := tagctx.MustParse("a")
	p := newPicker(mustConfig(t, "{}"), []endpointsharding.ChildState{
		fakeChild("s1", tagctx.Tag{}, connectivity.Ready),
		fakeChild("a1", a, connectivity.Ready),
		fakeChild("a2", a, connectivity.Ready),
		fakeChild("a3", a, connectivity.Connecting),
	}, onFirstAttempt("a3"))
	got := map[string]int{}
	for range 100 {
		got[describe(p.Pick(pickInfo("a")))]++
	}
	if diff := cmp.Diff(got, map[string]int{"a1": 50, "a2": 50}); diff != "" {
		t.Errorf("picks (-got +want):\n%s", diff)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	p, info := benchPicker(100)
	for _, tag := range []string{"", "l50", "nope"} {
		i := info
		if tag != "" {
			i.Ctx = tagctx.With(i.Ctx, tagctx.MustParse(tag))
		}
		if n := testing.AllocsPerRun(1000, func() { p.Pick(i) }); n != 0 {
			t.Errorf("tag %q: %v allocs per pick, want 0", tag, n)
		}
	}
}

// benchPicker has 3 stable endpoints and lanes l0..l(n-1), one READY
// endpoint each.
func benchPicker(lanes int) (*picker, balancer.PickInfo) {
	children := []endpointsharding.ChildState{
		fakeChild("s1", tagctx.Tag{}, connectivity.Ready),
		fakeChild("s2", tagctx.Tag{}, connectivity.Ready),
		fakeChild("s3", tagctx.Tag{}, connectivity.Ready),
	}
	for i := range lanes {
		name := fmt.Sprintf("l%d", i)
		children = append(children, fakeChild(name, tagctx.MustParse(name), connectivity.Ready))
	}
	cfg, _ := parseConfig([]byte("{}"))
	return newPicker(cfg, children, onFirstAttempt()), balancer.PickInfo{FullMethodName: "/svc/M", Ctx: context.Background()}
}

func BenchmarkPick(b *testing.B) {
	for _, lanes := range []int{1, 10, 1000} {
		p, info := benchPicker(lanes)
		info.Ctx = tagctx.With(info.Ctx, tagctx.MustParse(fmt.Sprintf("l%d", lanes/2)))
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
