package tagctx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys of the route proof.
const (
	AttrTrafficTag = attribute.Key("taglane.traffic_tag")
	AttrNodeTag    = attribute.Key("taglane.node_tag")
	AttrRoute      = attribute.Key("taglane.route")
	// AttrReason holds, on an EventRejected span event, why a tag the
	// caller sent was not accepted.
	AttrReason = attribute.Key("taglane.reason")
)

// EventRejected is the span event Record adds when a tag was refused, so
// the reason is on the trace even where no observer is installed.
const EventRejected = "taglane.tag_rejected"

// Route is the verdict on one hop: did the instance that served it belong
// to the traffic's lane?
type Route uint8

const (
	// RouteMatched: traffic tag equals node tag (stable on stable included).
	RouteMatched Route = iota + 1
	// RouteFallback: tagged traffic served by a stable instance because the
	// lane has none of this service.
	RouteFallback
	// RouteMisroute: served by another lane, or stable traffic served by a
	// lane instance. Must never happen.
	RouteMisroute
)

func (r Route) String() string {
	switch r {
	case RouteMatched:
		return "matched"
	case RouteFallback:
		return "fallback"
	case RouteMisroute:
		return "misroute"
	}
	return "unknown"
}

// CheckChain reports why lane cannot have the parent chain parents (as in
// rpc.WithParents and mq.WithParents), nil if it can: stable has no
// parents, stable is never listed (it ends every chain by itself), and no
// lane appears twice.
func CheckChain(lane Tag, parents []Tag) error {
	if lane.IsZero() {
		return errors.New("stable has no parents")
	}
	for i, p := range parents {
		switch {
		case p.IsZero():
			return errors.New("stable ends every chain by itself; do not list it")
		case p == lane || slices.Contains(parents[:i], p):
			return fmt.Errorf("%q repeats a lane of the chain", p.s)
		}
	}
	return nil
}

// Decide classifies a hop. parents lists lanes the traffic's lane may fall
// back to before stable (a chain such as feature-x2 -> feature-x); a hop
// served by one of them is a fallback, not a misroute.
func Decide(traffic, node Tag, parents ...Tag) Route {
	switch {
	case traffic == node:
		return RouteMatched
	case node.IsZero():
		return RouteFallback
	}
	if !traffic.IsZero() {
		for _, p := range parents {
			if p == node {
				return RouteFallback
			}
		}
	}
	return RouteMisroute
}

var misroutes atomic.Uint64

// Misroutes returns how many misroutes Record saw in this process: a
// counter to export as a metric or check in a test, which should stay 0.
func Misroutes() uint64 { return misroutes.Load() }

// Observation is the proof of one server-side hop.
type Observation struct {
	Transport string // "http", "grpc", "rocketmq"
	Operation string // request path, full gRPC method, topic
	Traffic   Tag
	Node      Tag
	Route     Route
	// Rejected is why a tag the caller sent was not accepted (invalid, over
	// limits, or not trusted); the hop then ran as untagged. Nil otherwise.
	Rejected error
}

// Observer receives every Observation, for metrics and logs. It runs on the
// request path: keep it fast, and safe for concurrent use.
type Observer func(context.Context, Observation)

// Record puts o on the span in ctx, if it is recording (a refused tag as an
// EventRejected event with its reason), and hands it to observer, if not
// nil. A misroute is always reported: it is counted (Misroutes), and with
// no observer it is logged as a warning through slog.Default, so it cannot
// pass unseen in a process that installed neither tracing nor an observer.
func Record(ctx context.Context, o Observation, observer Observer) {
	if o.Route == RouteMisroute {
		misroutes.Add(1)
		if observer == nil {
			slog.Default().LogAttrs(ctx, slog.LevelWarn, "taglane: misroute",
				slog.String("transport", o.Transport), slog.String("operation", o.Operation),
				slog.String(string(AttrTrafficTag), o.Traffic.s), slog.String(string(AttrNodeTag), o.Node.s))
		}
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(
			AttrTrafficTag.String(o.Traffic.s),
			AttrNodeTag.String(o.Node.s),
			AttrRoute.String(o.Route.String()),
		)
		if o.Rejected != nil {
			span.AddEvent(EventRejected, trace.WithAttributes(AttrReason.String(o.Rejected.Error())))
		}
	}
	if observer != nil {
		observer(ctx, o)
	}
}
