package tagctx_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/taglane/taglane/tagctx"
)

// hops reads the taglane.hops counter back as "transport route lane" -> count.
func hops(t testing.TB, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != tagctx.MetricHops {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || !sum.IsMonotonic {
				t.Fatalf("%s is %T, want a monotonic int64 sum", m.Name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				tr, _ := dp.Attributes.Value(tagctx.AttrTransport)
				route, _ := dp.Attributes.Value(tagctx.AttrRoute)
				lane, _ := dp.Attributes.Value(tagctx.AttrTrafficTag)
				got[fmt.Sprintf("%s %s %s", tr.AsString(), route.AsString(), lane.AsString())] += dp.Value
			}
		}
	}
	return got
}

func newMetrics(t testing.TB, opts ...tagctx.MetricsOption) (*tagctx.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := tagctx.NewMetrics(mp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

// TestMetricsMixedTraffic observes the hops a mixed workload makes, through
// the entry points' own path (tagctx.Record with the observer), and reads
// them back with the SDK's manual reader.
func TestMetricsMixedTraffic(t *testing.T) {
	m, r := newMetrics(t)
	x, y := tagctx.MustParse("feature-x"), tagctx.MustParse("feature-y")
	var invalid error = &tagctx.ParseError{Input: "Bad!", Reason: "test"}
	obs := []struct {
		o tagctx.Observation
		n int
	}{
		{tagctx.Observation{Transport: "http", Route: tagctx.RouteMatched}, 5},
		{tagctx.Observation{Transport: "http", Traffic: x, Node: x, Route: tagctx.RouteMatched}, 3},
		{tagctx.Observation{Transport: "grpc", Traffic: x, Route: tagctx.RouteFallback}, 2},
		{tagctx.Observation{Transport: "grpc", Traffic: y, Node: x, Route: tagctx.RouteMisroute}, 1},
		{tagctx.Observation{Transport: "http", Route: tagctx.RouteMatched, Rejected: invalid}, 4},
		{tagctx.Observation{Transport: "http", Rejected: invalid}, 1}, // refused with 400: no verdict
		{tagctx.Observation{Transport: "rocketmq", Traffic: y, Node: y, Route: tagctx.RouteMatched}, 2},
	}
	before := tagctx.Misroutes()
	for _, o := range obs {
		for range o.n {
			tagctx.Record(context.Background(), o.o, m.Observe)
		}
	}
	want := map[string]int64{
		"http matched ":              5,
		"http matched feature-x":     3,
		"grpc fallback feature-x":    2,
		"grpc misroute feature-y":    1,
		"http rejected ":             5,
		"rocketmq matched feature-y": 2,
	}
	if diff := cmp.Diff(hops(t, r), want); diff != "" {
		t.Errorf("hops (-got +want):\n%s", diff)
	}
	if got := tagctx.Misroutes() - before; got != 1 {
		t.Errorf("Misroutes grew by %d, want 1", got)
	}
}

// TestMetricsLaneLimit: a thousand distinct tags, as a scanner or a buggy
// client might send, make the limit's series plus one, not a thousand.
func TestMetricsLaneLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		wantLanes int // distinct lane values, OtherLane included
	}{
		{name: "default", limit: -1, wantLanes: tagctx.DefaultLaneLimit + 1},
		{name: "ten", limit: 10, wantLanes: 11},
		{name: "no lanes", limit: 0, wantLanes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []tagctx.MetricsOption
			if tt.limit >= 0 {
				opts = append(opts, tagctx.WithLaneLimit(tt.limit))
			}
			m, r := newMetrics(t, opts...)
			const n = 1000
			for i := range n {
				tag := tagctx.MustParse(fmt.Sprintf("lane-%d", i))
				m.Observe(context.Background(), tagctx.Observation{Transport: "http", Traffic: tag, Route: tagctx.RouteFallback})
			}
			got := hops(t, r)
			var total int64
			lanes := map[string]bool{}
			for k, v := range got {
				total += v
				var tr, route, lane string
				fmt.Sscan(k, &tr, &route, &lane)
				if lane != "" {
					lanes[lane] = true
				}
			}
			if total != n {
				t.Errorf("counted %d hops, want %d: the cap must fold lanes, not drop hops", total, n)
			}
			if len(lanes) != tt.wantLanes {
				t.Errorf("%d lane values, want %d", len(lanes), tt.wantLanes)
			}
			if tt.limit != 0 {
				limit := tt.wantLanes - 1
				if !lanes["lane-0"] || !lanes[fmt.Sprintf("lane-%d", limit-1)] || lanes[fmt.Sprintf("lane-%d", limit)] {
					t.Errorf("want the first %d lanes by name, got %v", limit, lanes)
				}
				if c := got["http fallback "+tagctx.OtherLane]; c != int64(n-limit) {
					t.Errorf("%s counted %d, want %d", tagctx.OtherLane, c, n-limit)
				}
				// A lane that got a series keeps it after the cap is reached.
				m.Observe(context.Background(), tagctx.Observation{Transport: "http", Traffic: tagctx.MustParse("lane-0"), Route: tagctx.RouteFallback})
				if c := hops(t, r)["http fallback lane-0"]; c != 2 {
					t.Errorf("lane-0 counted %d, want 2", c)
				}
			}
		})
	}
}

func TestNewMetricsErrors(t *testing.T) {
	tests := []struct {
		name string
		mp   bool
		opts []tagctx.MetricsOption
		want string
	}{
		{name: "nil provider", want: "tagctx: NewMetrics: nil MeterProvider"},
		{name: "negative limit", mp: true, opts: []tagctx.MetricsOption{tagctx.WithLaneLimit(-1)}, want: "tagctx: WithLaneLimit(-1): negative"},
		{name: "nil option ignored", mp: true, opts: []tagctx.MetricsOption{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.mp {
				_, err = tagctx.NewMetrics(noop.NewMeterProvider(), tt.opts...)
			} else {
				_, err = tagctx.NewMetrics(nil, tt.opts...)
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMetricsConcurrent races new lanes against the cap and each other.
func TestMetricsConcurrent(t *testing.T) {
	m, r := newMetrics(t, tagctx.WithLaneLimit(5))
	const workers, each = 8, 200
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				tag := tagctx.MustParse(fmt.Sprintf("w%d-%d", w, i%20))
				m.Observe(context.Background(), tagctx.Observation{Transport: "grpc", Traffic: tag, Route: tagctx.RouteMatched})
			}
		}()
	}
	for range workers {
		<-done
	}
	var total int64
	series := 0
	for _, v := range hops(t, r) {
		total += v
		series++
	}
	if total != workers*each || series != 6 {
		t.Errorf("%d hops in %d series, want %d in 6", total, series, workers*each)
	}
}

var errSink = errors.New("sink")

// BenchmarkMetricsObserve is the observer's cost per hop with the SDK
// behind it; BenchmarkMetricsBaseline is the anchor: the same counter
// increment with attributes built per call, as a hand-written observer
// would do it.
func BenchmarkMetricsObserve(b *testing.B) {
	x := tagctx.MustParse("feature-x")
	for _, bc := range []struct {
		name string
		o    tagctx.Observation
	}{
		{"untagged", tagctx.Observation{Transport: "http", Route: tagctx.RouteMatched}},
		{"tagged", tagctx.Observation{Transport: "http", Traffic: x, Node: x, Route: tagctx.RouteMatched}},
		{"rejected", tagctx.Observation{Transport: "http", Route: tagctx.RouteMatched, Rejected: errSink}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, _ := newMetrics(b)
			ctx := context.Background()
			m.Observe(ctx, bc.o)
			b.ReportAllocs()
			for b.Loop() {
				m.Observe(ctx, bc.o)
			}
		})
	}
}

func BenchmarkMetricsBaseline(b *testing.B) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	c, err := mp.Meter("bench").Int64Counter("hops")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c.Add(ctx, 1, metric.WithAttributes(attribute.String("taglane.transport", "http"), attribute.String("taglane.route", "matched")))
	}
}

// TestMetricsTransportCap: transports come from code, but a bug passing
// something unbounded as Transport still cannot grow the series forever.
func TestMetricsTransportCap(t *testing.T) {
	m, r := newMetrics(t)
	for i := range 100 {
		m.Observe(context.Background(), tagctx.Observation{Transport: fmt.Sprintf("t%d", i), Route: tagctx.RouteMatched})
	}
	got := hops(t, r)
	if len(got) != 17 || got["_other matched "] != 100-16 {
		t.Errorf("%d series, _other=%d; want 16 transports and _other=84", len(got), got["_other matched "])
	}
}
