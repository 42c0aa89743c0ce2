package tagctx_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"

	"go.opentelemetry.io/otel/baggage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/taglane/taglane/tagctx"
)

func ExampleMustParse() {
	// For tags known when the program is written; Parse for outside input.
	var featureX = tagctx.MustParse("feature-x")
	fmt.Println(featureX)
	// Output: feature-x
}

func ExampleLookup() {
	for _, ctx := range []context.Context{
		context.Background(),
		tagctx.WithUntagged(context.Background()),
		tagctx.With(context.Background(), tagctx.MustParse("feature-x")),
	} {
		tag, decided := tagctx.Lookup(ctx)
		fmt.Printf("%q decided=%v\n", tag, decided)
	}
	// Output:
	// "" decided=false
	// "" decided=true
	// "feature-x" decided=true
}

func ExampleFrom() {
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	fmt.Printf("%q %q\n", tagctx.From(ctx), tagctx.From(context.Background()))
	// Output: "feature-x" ""
}

// A stable request that reached a lane instance stays stable downstream.
func ExampleWithUntagged() {
	tagctx.SetNode(tagctx.MustParse("feature-x"))
	defer tagctx.SetNode(tagctx.Tag{})
	ctx := tagctx.WithUntagged(context.Background())
	fmt.Printf("effective %q on node %q\n", tagctx.Effective(ctx), tagctx.Node())
	// Output: effective "" on node "feature-x"
}

func ExampleNode() {
	// The node tag is TAGLANE_TAG's value, or what SetNode set.
	tagctx.SetNode(tagctx.MustParse("feature-x"))
	defer tagctx.SetNode(tagctx.Tag{})
	fmt.Println(tagctx.Node())
	// Output: feature-x
}

// A process that learns its lane from a flag rather than TAGLANE_TAG.
func ExampleSetNode() {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	var lane tagctx.Tag
	fs.TextVar(&lane, "lane", tagctx.Tag{}, "lane of this instance (empty: stable)")
	if err := fs.Parse([]string{"-lane", "feature-x"}); err != nil {
		fmt.Println(err)
		return
	}
	tagctx.SetNode(lane) // before serving traffic
	defer tagctx.SetNode(tagctx.Tag{})
	fmt.Println(tagctx.Node())
	// Output: feature-x
}

func ExampleNodeFromEnv() {
	os.Setenv(tagctx.EnvNodeTag, "Feature_X")
	defer os.Unsetenv(tagctx.EnvNodeTag)
	_, err := tagctx.NodeFromEnv()
	fmt.Println(err)
	// Output: tagctx: TAGLANE_TAG: tagctx: invalid tag "Feature_X": character '_' at byte 7 is not in [a-z0-9-]
}

// A program that handles a bad TAGLANE_TAG itself, first thing in main;
// otherwise the first Node call prints one line and exits with status 2.
func ExampleNodeErr() {
	if err := tagctx.NodeErr(); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
	fmt.Printf("node %q\n", tagctx.Node())
	// Output: node ""
}

func ExampleTag_UnmarshalText() {
	var cfg struct {
		Lane     tagctx.Tag   `json:"lane"`
		Parents  []tagctx.Tag `json:"parents"`
		Fallback tagctx.Tag   `json:"fallback,omitzero"`
	}
	err := json.Unmarshal([]byte(`{"lane":"Feature-X2","parents":["feature-x"]}`), &cfg)
	fmt.Println(cfg.Lane, cfg.Parents, err)
	out, _ := json.Marshal(cfg)
	fmt.Println(string(out))
	fmt.Println(json.Unmarshal([]byte(`{"lane":"x_2"}`), &cfg))
	// Output:
	// feature-x2 [feature-x] <nil>
	// {"lane":"feature-x2","parents":["feature-x"]}
	// tagctx: invalid tag "x_2": character '_' at byte 1 is not in [a-z0-9-]
}

// The zero Tag (untagged) is the empty text, both ways.
func ExampleTag_MarshalText() {
	b, _ := tagctx.Tag{}.MarshalText()
	fmt.Printf("%q\n", b)
	b, _ = tagctx.MustParse("feature-x").MarshalText()
	fmt.Printf("%q\n", b)
	// Output:
	// ""
	// "feature-x"
}

func ExampleSnapshot_Apply() {
	type job struct {
		id   int
		lane tagctx.Snapshot // a queue of plain structs: no context fits
	}
	queue := make(chan job, 1)

	req := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	queue <- job{id: 1, lane: tagctx.Capture(req)}

	j := <-queue
	ctx := j.lane.Apply(context.Background())
	fmt.Println(j.id, tagctx.From(ctx))
	// Output: 1 feature-x
}

func ExampleToBaggage() {
	b, _ := baggage.Parse("userid=42")
	b, err := tagctx.ToBaggage(b, tagctx.DefaultBaggageKey, tagctx.MustParse("feature-x"))
	fmt.Println(b.Member("x-tag").Value(), b.Member("userid").Value(), err)
	// Output: feature-x 42 <nil>
}

func ExampleFromBaggage() {
	b, _ := baggage.Parse("userid=42,x-tag=feature-x")
	tag, found, err := tagctx.FromBaggage(b, tagctx.DefaultBaggageKey)
	fmt.Println(tag, found, err)
	// Output: feature-x true <nil>
}

func ExampleInjectHeader() {
	h := http.Header{"Baggage": {"userid=42"}}
	tagctx.InjectHeader(h, tagctx.DefaultHeader, tagctx.DefaultBaggageKey, tagctx.MustParse("feature-x"))
	fmt.Println(h.Get("X-Tag"), h.Get("Baggage"))
	// Output: feature-x userid=42,x-tag=feature-x
}

func ExampleTrustAll() {
	err := tagctx.TrustAll().Check(tagctx.MustParse("feature-x"), netip.Addr{})
	fmt.Println(err)
	// Output: <nil>
}

func ExampleTrustTags() {
	trust := tagctx.TrustTags(tagctx.MustParse("feature-x"))
	fmt.Println(trust.Check(tagctx.MustParse("feature-x"), netip.Addr{}))
	fmt.Println(errors.Is(trust.Check(tagctx.MustParse("feature-y"), netip.Addr{}), tagctx.ErrUntrusted))
	// Output:
	// <nil>
	// true
}

func ExampleTrustNetworks() {
	trust := tagctx.TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))
	tag := tagctx.MustParse("feature-x")
	fmt.Println(trust.Check(tag, netip.MustParseAddr("10.1.2.3")))
	fmt.Println(errors.Is(trust.Check(tag, netip.MustParseAddr("192.0.2.1")), tagctx.ErrUntrusted))
	// Output:
	// <nil>
	// true
}

// An entry point of one's own (a job runner, a custom protocol) proving its
// hops like the packages' entry points do.
func ExampleRecord() {
	observer := func(_ context.Context, o tagctx.Observation) {
		fmt.Println(o.Transport, o.Operation, o.Traffic, o.Route)
	}
	traffic := tagctx.MustParse("feature-x")
	node := tagctx.Tag{} // a stable instance
	tagctx.Record(context.Background(), tagctx.Observation{
		Transport: "cron", Operation: "nightly-report",
		Traffic: traffic, Node: node, Route: tagctx.Decide(traffic, node),
	}, observer)
	// Output: cron nightly-report feature-x fallback
}

func ExampleMisroutes() {
	before := tagctx.Misroutes()
	tagctx.Record(context.Background(), tagctx.Observation{
		Transport: "http", Traffic: tagctx.MustParse("feature-x"), Node: tagctx.MustParse("feature-y"), Route: tagctx.RouteMisroute,
	}, func(context.Context, tagctx.Observation) {}) // an observer: no warning log
	fmt.Println(tagctx.Misroutes() - before)
	// Output: 1
}

func ExampleNewMetrics() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	metrics, err := tagctx.NewMetrics(mp)
	if err != nil {
		fmt.Println(err)
		return
	}
	// metrics.Observe is an Observer: httpmw.WithObserver(metrics.Observe),
	// rpc.WithObserver(metrics.Observe), mq.WithObserver(metrics.Observe).
	x := tagctx.MustParse("feature-x")
	for _, traffic := range []tagctx.Tag{x, x, {}} {
		tagctx.Record(context.Background(), tagctx.Observation{
			Transport: "http", Traffic: traffic, Route: tagctx.Decide(traffic, tagctx.Tag{}),
		}, metrics.Observe)
	}

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	sum := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64])
	for _, route := range []string{"matched", "fallback"} {
		for _, dp := range sum.DataPoints {
			if v, _ := dp.Attributes.Value(tagctx.AttrRoute); v.AsString() == route {
				lane, _ := dp.Attributes.Value(tagctx.AttrTrafficTag)
				fmt.Printf("%s route=%s lane=%q: %d\n", tagctx.MetricHops, route, lane.AsString(), dp.Value)
			}
		}
	}
	// Output:
	// taglane.hops route=matched lane="": 1
	// taglane.hops route=fallback lane="feature-x": 2
}

// Lanes past the limit are counted under OtherLane.
func ExampleWithLaneLimit() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	metrics, _ := tagctx.NewMetrics(mp, tagctx.WithLaneLimit(1))
	for _, s := range []string{"feature-x", "feature-y", "feature-z"} {
		metrics.Observe(context.Background(), tagctx.Observation{Transport: "grpc", Traffic: tagctx.MustParse(s), Route: tagctx.RouteFallback})
	}
	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	counts := map[string]int64{}
	for _, dp := range rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64]).DataPoints {
		lane, _ := dp.Attributes.Value(tagctx.AttrTrafficTag)
		counts[lane.AsString()] = dp.Value
	}
	fmt.Println(counts)
	// Output: map[_other:2 feature-x:1]
}

// Under a group the tag stays at the top level, where log queries look.
func ExampleNewLogHandler_withGroup() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(tagctx.NewLogHandler(h)).WithGroup("req")
	log.InfoContext(tagctx.With(context.Background(), tagctx.MustParse("feature-x")), "paid", "order", "o1")
	// Output: level=INFO msg=paid taglane.tag=feature-x req.order=o1
}
