package tagctx

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Names of what Metrics records.
const (
	// MetricHops is the counter of server-side hops, one per Observation.
	MetricHops = "taglane.hops"
	// AttrTransport is the hop's transport ("http", "grpc", "rocketmq").
	AttrTransport = attribute.Key("taglane.transport")
	// RouteRejected is the taglane.route value Metrics records for a hop
	// whose inbound tag was refused (invalid, over the limits, untrusted):
	// the hop ran untagged or was answered with an error.
	RouteRejected = "rejected"
	// OtherLane is the taglane.traffic_tag value Metrics records for lanes
	// past the lane limit. It is not a valid tag, so it cannot collide
	// with a lane's own series.
	OtherLane = "_other"
)

// Limits of Metrics.
const (
	// DefaultLaneLimit is how many distinct lanes get a series of their own.
	DefaultLaneLimit = 50
	// maxTransports caps the transport attribute the same way. Transports
	// come from code, not from callers, so only a bug could reach it.
	maxTransports = 16
)

// MetricsOption configures NewMetrics. A nil MetricsOption is ignored.
// Building one never panics: a bad argument is kept, and NewMetrics
// returns it as an error naming the option.
type MetricsOption interface {
	applyMetrics(*metricsConfig)
}

type metricsConfig struct {
	laneLimit int
	err       error // the first bad option's
}

type metricsOption func(*metricsConfig)

func (f metricsOption) applyMetrics(c *metricsConfig) { f(c) }

// WithLaneLimit sets how many distinct traffic tags get their own
// taglane.traffic_tag attribute value (default DefaultLaneLimit); hops of
// further lanes are counted under OtherLane. 0 leaves the lane out of
// every series. Tags come from outside callers, so without a cap each new
// tag would be a new time series for as long as the process lives.
// Negative is an error.
func WithLaneLimit(n int) MetricsOption {
	if n < 0 {
		err := fmt.Errorf("tagctx: WithLaneLimit(%d): negative", n)
		return metricsOption(func(c *metricsConfig) {
			if c.err == nil {
				c.err = err
			}
		})
	}
	return metricsOption(func(c *metricsConfig) { c.laneLimit = n })
}

// Metrics records route decisions as OpenTelemetry metrics: the counter
// MetricHops with the attributes AttrTransport, AttrRoute ("matched",
// "fallback", "misroute" or RouteRejected) and, for tagged traffic under
// the lane limit, AttrTrafficTag. Its Observe method is an Observer; pass
// it where an entry point takes one (httpmw.WithObserver,
// rpc.WithObserver, mq.WithObserver).
//
// Observe allocates nothing once a series has been seen: the attribute
// sets are built once per (transport, lane) and kept.
type Metrics struct {
	hops      metric.Int64Counter
	laneLimit int

	tab atomic.Pointer[seriesTable] // copy on write
	mu  sync.Mutex                  // serializes writers of tab
}

// routeSlot indexes the attribute sets of one series by verdict.
const (
	slotMatched = iota
	slotFallback
	slotMisroute
	slotRejected
	nSlots
)

var slotNames = [nSlots]string{"matched", "fallback", "misroute", RouteRejected}

type seriesKey struct{ transport, lane string }

type seriesOpts [nSlots][]metric.AddOption

// seriesTable is immutable once published.
type seriesTable struct {
	m          map[seriesKey]*seriesOpts
	lanes      map[string]struct{}
	transports map[string]struct{}
}

// NewMetrics returns Metrics recording through a meter of mp. A nil mp is
// an error: pass otel.GetMeterProvider() for the global one.
func NewMetrics(mp metric.MeterProvider, opts ...MetricsOption) (*Metrics, error) {
	if mp == nil {
		return nil, fmt.Errorf("tagctx: NewMetrics: nil MeterProvider")
	}
	c := metricsConfig{laneLimit: DefaultLaneLimit}
	for _, o := range opts {
		if o != nil {
			o.applyMetrics(&c)
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	hops, err := mp.Meter("github.com/taglane/taglane/tagctx").Int64Counter(MetricHops,
		metric.WithUnit("{hop}"),
		metric.WithDescription("Server-side hops (requests, calls, message groups) by transport, route verdict and lane."))
	if err != nil {
		return nil, fmt.Errorf("tagctx: counter %s: %w", MetricHops, err)
	}
	m := &Metrics{hops: hops, laneLimit: c.laneLimit}
	m.tab.Store(&seriesTable{m: map[seriesKey]*seriesOpts{}, lanes: map[string]struct{}{}, transports: map[string]struct{}{}})
	return m, nil
}

// Observe counts o. It is an Observer.
func (m *Metrics) Observe(ctx context.Context, o Observation) {
	slot := slotOf(o)
	lane := o.Traffic.s
	if m.laneLimit == 0 {
		lane = ""
	}
	tab := m.tab.Load()
	s := tab.m[seriesKey{o.Transport, lane}]
	if s == nil {
		s = m.series(o.Transport, lane)
	}
	m.hops.Add(ctx, 1, s[slot]...)
}

func slotOf(o Observation) int {
	switch {
	case o.Route == RouteMisroute: // a misroute is the one verdict never to hide
		return slotMisroute
	case o.Rejected != nil || o.Route == 0:
		return slotRejected
	case o.Route == RouteFallback:
		return slotFallback
	}
	return slotMatched
}

// series returns the attribute sets of (transport, lane), folding lanes past
// the limit into OtherLane, and publishes a new table if the series is new.
func (m *Metrics) series(transport, lane string) *seriesOpts {
	if s := m.tab.Load().lookup(transport, lane, m.laneLimit); s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Fold again under the lock: another writer may have filled the last
	// lane slot since the lookup above.
	tab := m.tab.Load()
	transport, lane = tab.fold(transport, lane, m.laneLimit)
	if s := tab.m[seriesKey{transport, lane}]; s != nil {
		return s
	}
	next := &seriesTable{
		m:          make(map[seriesKey]*seriesOpts, len(tab.m)+1),
		lanes:      make(map[string]struct{}, len(tab.lanes)+1),
		transports: make(map[string]struct{}, len(tab.transports)+1),
	}
	for k, v := range tab.m {
		next.m[k] = v
	}
	for k := range tab.lanes {
		next.lanes[k] = struct{}{}
	}
	for k := range tab.transports {
		next.transports[k] = struct{}{}
	}
	s := new(seriesOpts)
	for i, name := range slotNames {
		attrs := []attribute.KeyValue{AttrTransport.String(transport), AttrRoute.String(name)}
		if lane != "" {
			attrs = append(attrs, AttrTrafficTag.String(lane))
		}
		s[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
	}
	next.m[seriesKey{transport, lane}] = s
	if lane != "" && lane != OtherLane {
		next.lanes[lane] = struct{}{}
	}
	next.transports[transport] = struct{}{}
	m.tab.Store(next)
	return s
}

// fold maps a transport and a lane past their limits to their "_other"
// values.
func (t *seriesTable) fold(transport, lane string, laneLimit int) (string, string) {
	if _, ok := t.transports[transport]; !ok && len(t.transports) >= maxTransports {
		transport = "_other"
	}
	if _, ok := t.lanes[lane]; !ok && lane != "" && len(t.lanes) >= laneLimit {
		lane = OtherLane
	}
	return transport, lane
}

func (t *seriesTable) lookup(transport, lane string, laneLimit int) *seriesOpts {
	transport, lane = t.fold(transport, lane, laneLimit)
	return t.m[seriesKey{transport, lane}]
}
