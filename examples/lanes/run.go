package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/taglane/taglane/tagctx"
)

type config struct {
	Requests   int           // per phase
	NameServer string        // empty: the embedded broker
	Etcd       string        // host:port; empty: an embedded etcd
	Timeout    time.Duration // for all messages to be handled
	Out        io.Writer
}

// summary is what the demo proves.
type summary struct {
	Requests, Hops, Fallbacks, Rejected int
	Messages, Deliveries, Redelivered   int
	Duplicates, Misroutes, Lost         int
	Others                              int // earlier runs' messages, not counted
}

func (s summary) ok() bool { return s.Misroutes == 0 && s.Lost == 0 }

// scenario is one way a request enters the gateway.
type scenario struct {
	name    string
	tag     tagctx.Tag // the traffic tag it must carry through every hop
	prepare func(r *http.Request)
}

var scenarios = []scenario{
	{name: "no tag (stable)"},
	{name: "header X-Tag: feature-x", tag: laneX, prepare: func(r *http.Request) { r.Header.Set("X-Tag", "feature-x") }},
	{name: "host app-feature-y.test.example.com", tag: laneY, prepare: func(r *http.Request) { r.Host = "app-feature-y.test.example.com" }},
	{name: "baggage x-tag=feature-x", tag: laneX, prepare: func(r *http.Request) { r.Header.Set("Baggage", "user=42,x-tag=feature-x") }},
	{name: "header X-Tag: feature-z (no lane has it)", tag: tagctx.MustParse("feature-z"), prepare: func(r *http.Request) { r.Header.Set("X-Tag", "feature-z") }},
	{name: "header X-Tag: Bad_Tag! (invalid: stable, reported)", prepare: func(r *http.Request) { r.Header.Set("X-Tag", "Bad_Tag!") }},
}

// bus is the RocketMQ side of the demo.
type bus interface {
	publish(ctx context.Context, id int) error
	stopLane() error // takes notifier@feature-x offline
	waitReady(ctx context.Context) error
	delivered() map[int][]Hop
	redelivered() int
	others() int // messages of other runs handled and not counted
	close()
}

func run(ctx context.Context, cfg config) (summary, error) {
	var sum summary
	w := &world{}
	defer w.close()
	out := cfg.Out
	misroutesBefore := tagctx.Misroutes()
	if err := w.startRegistry(cfg.Etcd); err != nil {
		return sum, fmt.Errorf("registry: %w", err)
	}

	b, err := startBus(ctx, cfg, w)
	if err != nil {
		return sum, fmt.Errorf("rocketmq: %w", err)
	}
	defer b.close()

	billing, err := w.startService(ctx, "billing", func(node tagctx.Tag) *instance {
		return &instance{service: "billing", node: node}
	})
	if err != nil {
		return sum, err
	}
	stock, err := w.startService(ctx, "stock", func(node tagctx.Tag) *instance {
		return &instance{service: "stock", node: node, next: func(ctx context.Context, t *Trip) (*Trip, error) {
			return callStream(ctx, billing, t)
		}}
	})
	if err != nil {
		return sum, err
	}
	for _, node := range append([]tagctx.Tag{{}}, lookupService("pricing").lanes...) {
		if _, err := w.serveHTTPService(ctx, "pricing", node); err != nil {
			return sum, err
		}
	}
	pricing, err := w.httpCaller("pricing")
	if err != nil {
		return sum, err
	}
	orders, err := w.startService(ctx, "orders", func(node tagctx.Tag) *instance {
		return &instance{service: "orders", node: node,
			next: func(ctx context.Context, t *Trip) (*Trip, error) {
				t, err := callUnary(ctx, stock, t)
				if err != nil {
					return nil, err
				}
				return callHTTP(ctx, pricing, "pricing", t)
			},
			after: func(ctx context.Context, t *Trip) error { return b.publish(ctx, t.ID) },
		}
	})
	if err != nil {
		return sum, err
	}
	gateway, err := w.serveHTTP(gatewayHandler(orders))
	if err != nil {
		return sum, err
	}
	if err := b.waitReady(ctx); err != nil {
		return sum, err
	}

	fmt.Fprintf(out, "taglane demo: gateway %s, services %s\n", gateway, describeTopology())
	fmt.Fprintf(out, "registry: %s; every instance registered under a %v lease, every caller resolves there\n\n", w.registry.describe(), leaseTTL)
	expected := map[int]tagctx.Tag{}
	// An outside caller: a plain client. httpmw.Transport sends the tag of
	// its context and would replace the headers set by hand here.
	client := &http.Client{}
	send := func(id int) error {
		sc := scenarios[id%len(scenarios)]
		trip, err := get(ctx, client, gateway, id, sc)
		if err != nil {
			return fmt.Errorf("request %d (%s): %w", id, sc.name, err)
		}
		expected[id] = sc.tag
		sum.Requests++
		fmt.Fprintf(out, "request %d  %s\n", id, sc.name)
		for _, h := range trip.Hops {
			verdict := w.check(h, sc.tag)
			if verdict != "" {
				sum.Misroutes++
			}
			fmt.Fprintf(out, "    %-9s %-12s %-18s traffic=%-10s node=%-10s %s%s\n",
				h.Service, h.Via, h.Instance, dash(h.Traffic), dash(h.Node), h.Route, verdict)
		}
		return nil
	}

	fmt.Fprintf(out, "== phase 1: every lane consumer online\n")
	id := 0
	for ; id < cfg.Requests; id++ {
		if err := send(id); err != nil {
			return sum, err
		}
	}
	fmt.Fprintf(out, "\n== phase 2: billing@feature-y crashes; notifier@feature-x goes offline mid-run\n")
	took, err := w.crash(ctx, "billing", laneY, w.stops[instanceName("billing", laneY)])
	if err != nil {
		return sum, err
	}
	fmt.Fprintf(out, "    -- billing@feature-y crashed (lease not revoked); etcd dropped it %.1fs later (lease TTL %v from its last renewal): feature-y falls back to billing@stable --\n", took.Seconds(), leaseTTL)
	for ; id < 2*cfg.Requests; id++ {
		if id == cfg.Requests+cfg.Requests/2 {
			if err := b.stopLane(); err != nil {
				return sum, err
			}
			fmt.Fprintf(out, "    -- notifier@feature-x shut down; stable takes over its messages --\n")
		}
		if err := send(id); err != nil {
			return sum, err
		}
	}

	fmt.Fprintf(out, "\n== messages (order-events), waiting for every one to be handled\n")
	got := waitDelivered(ctx, b, len(expected), cfg.Timeout)
	ids := make([]int, 0, len(expected))
	for id := range expected {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		hops := got[id]
		sum.Messages++
		if len(hops) == 0 {
			sum.Lost++
			fmt.Fprintf(out, "message %d  tag=%-10s LOST\n", id, dash(expected[id].String()))
			continue
		}
		sum.Deliveries += len(hops)
		sum.Duplicates += len(hops) - 1
		for i, h := range hops {
			verdict := ""
			if h.Traffic != expected[id].String() {
				verdict = fmt.Sprintf("  <- MISROUTE: carried %q, sent with %q", h.Traffic, expected[id])
			} else if h.Route == tagctx.RouteMisroute.String() {
				verdict = "  <- MISROUTE"
			}
			if verdict != "" {
				sum.Misroutes++
			}
			label := fmt.Sprintf("message %d", id)
			if i > 0 {
				label = "  again"
			}
			route := h.Route
			if h.HandedOver {
				route += " (handed over)"
			}
			fmt.Fprintf(out, "%-11s tag=%-10s %-18s node=%-10s %s%s\n", label, dash(h.Traffic), h.Instance, dash(h.Node), route, verdict)
		}
	}
	sum.Redelivered, sum.Others = b.redelivered(), b.others()

	w.ledger.mu.Lock()
	sum.Hops, sum.Fallbacks, sum.Rejected = w.ledger.hops, w.ledger.fallbacks, len(w.ledger.rejected)
	for _, m := range w.ledger.misroutes {
		fmt.Fprintf(out, "MISROUTE reported by an entry point: %s\n", m)
	}
	sum.Misroutes += len(w.ledger.misroutes)
	// Every hop in this process records its proof through tagctx, which
	// counts misroutes whether or not an observer saw them.
	if n := int(tagctx.Misroutes() - misroutesBefore); n > len(w.ledger.misroutes) {
		fmt.Fprintf(out, "MISROUTE recorded by %d hops no observer saw\n", n-len(w.ledger.misroutes))
		sum.Misroutes += n - len(w.ledger.misroutes)
	}
	w.ledger.mu.Unlock()

	fmt.Fprintf(out, "\nsummary: requests=%d hops=%d fallbacks=%d rejected-tags=%d messages=%d deliveries=%d redelivered=%d duplicates=%d misroutes=%d lost=%d other-runs=%d\n",
		sum.Requests, sum.Hops, sum.Fallbacks, sum.Rejected, sum.Messages, sum.Deliveries, sum.Redelivered, sum.Duplicates, sum.Misroutes, sum.Lost, sum.Others)
	return sum, nil
}

// check says what is wrong with a hop of traffic tagged want, or "".
func (w *world) check(h Hop, want tagctx.Tag) string {
	if h.Traffic != want.String() {
		return fmt.Sprintf("  <- MISROUTE: hop carried %q, request was %q", h.Traffic, want)
	}
	if exp := instanceName(h.Service, w.expectedNode(h.Service, want)); h.Instance != exp {
		return "  <- MISROUTE: expected " + exp
	}
	if h.Route == tagctx.RouteMisroute.String() {
		return "  <- MISROUTE"
	}
	return ""
}

func gatewayHandler(orders *grpc.ClientConn) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.URL.Query().Get("id"))
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		trip := &Trip{ID: id, Hops: []Hop{hopOf(r.Context(), "gateway", tagctx.Tag{}, "http")}}
		trip, err = callUnary(r.Context(), orders, trip)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(trip)
	})
}

func get(ctx context.Context, c *http.Client, base string, id int, sc scenario) (*Trip, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/order?id="+strconv.Itoa(id), nil)
	if err != nil {
		return nil, err
	}
	if sc.prepare != nil {
		sc.prepare(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	trip := new(Trip)
	return trip, json.NewDecoder(resp.Body).Decode(trip)
}

// waitDelivered polls until every message was handled at least once or the
// timeout passes, and returns what was handled.
func waitDelivered(ctx context.Context, b bus, n int, timeout time.Duration) map[int][]Hop {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got := b.delivered()
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			return got
		case <-tick.C:
		}
	}
}

func describeTopology() string {
	var parts []string
	for _, s := range topology {
		names := []string{"stable"}
		for _, l := range s.lanes {
			names = append(names, l.String())
		}
		parts = append(parts, s.name+"("+strings.Join(names, ",")+")")
	}
	return strings.Join(parts, " ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
