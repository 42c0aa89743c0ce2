package tagctx

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestDecide(t *testing.T) {
	a, a2, b := MustParse("a"), MustParse("a2"), MustParse("b")
	tests := []struct {
		name          string
		traffic, node Tag
		parents       []Tag
		want          Route
	}{
		{name: "stable on stable", want: RouteMatched},
		{name: "lane on its lane", traffic: a, node: a, want: RouteMatched},
		{name: "lane on stable", traffic: a, want: RouteFallback},
		{name: "stable on lane", node: a, want: RouteMisroute},
		{name: "other lane", traffic: a, node: b, want: RouteMisroute},
		{name: "parent lane", traffic: a2, node: a, parents: []Tag{a}, want: RouteFallback},
		{name: "not a parent", traffic: a2, node: b, parents: []Tag{a}, want: RouteMisroute},
		{name: "parents do not excuse stable traffic", node: a, parents: []Tag{a}, want: RouteMisroute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.traffic, tt.node, tt.parents...); got != tt.want {
				t.Errorf("Decide(%q, %q) = %v, want %v", tt.traffic, tt.node, got, tt.want)
			}
		})
	}
	if Route(0).String() != "unknown" {
		t.Error("zero Route must print unknown")
	}
}

func TestRecord(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("t").Start(context.Background(), "hop")
	obs := Observation{Transport: "http", Operation: "/x", Traffic: MustParse("a"), Route: RouteFallback}
	var seen []Observation
	Record(ctx, obs, func(_ context.Context, o Observation) { seen = append(seen, o) })
	Record(context.Background(), obs, nil) // no span, no observer: nothing to do, no panic
	span.End()

	if diff := cmp.Diff(seen, []Observation{obs}, cmp.AllowUnexported(Tag{})); diff != "" {
		t.Errorf("observer (-got +want):\n%s", diff)
	}
	want := []attribute.KeyValue{AttrTrafficTag.String("a"), AttrNodeTag.String(""), AttrRoute.String("fallback")}
	if diff := cmp.Diff(rec.Ended()[0].Attributes(), want, cmp.Comparer(func(x, y attribute.Value) bool { return x == y })); diff != "" {
		t.Errorf("span attributes (-got +want):\n%s", diff)
	}
	if n := len(rec.Ended()[0].Events()); n != 0 {
		t.Errorf("%d span events for an accepted tag, want none", n)
	}
}

func TestRecordRejected(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("t").Start(context.Background(), "hop")
	_, err := Parse("a_b")
	Record(ctx, Observation{Transport: "grpc", Route: RouteMatched, Rejected: err}, nil) // no observer: the span must say why
	span.End()
	events := rec.Ended()[0].Events()
	if len(events) != 1 || events[0].Name != EventRejected {
		t.Fatalf("events = %v, want one %s", events, EventRejected)
	}
	if diff := cmp.Diff(events[0].Attributes, []attribute.KeyValue{AttrReason.String(err.Error())}, cmp.Comparer(func(x, y attribute.Value) bool { return x == y })); diff != "" {
		t.Errorf("event attributes (-got +want):\n%s", diff)
	}
}

func TestRecordMisrouteAlwaysReported(t *testing.T) {
	var logged bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	before := Misroutes()
	mis := Observation{Transport: "grpc", Operation: "/svc/M", Traffic: MustParse("a"), Node: MustParse("b"), Route: RouteMisroute}
	Record(context.Background(), mis, nil) // no span, no observer: logged
	var seen int
	Record(context.Background(), mis, func(context.Context, Observation) { seen++ }) // observer: its job
	Record(context.Background(), Observation{Traffic: MustParse("a"), Route: RouteFallback}, nil)

	if got := Misroutes() - before; got != 2 {
		t.Errorf("Misroutes counted %d, want 2", got)
	}
	if seen != 1 {
		t.Errorf("observer saw %d misroutes, want 1", seen)
	}
	out := logged.String()
	if strings.Count(out, "taglane: misroute") != 1 ||
		!strings.Contains(out, "level=WARN") || !strings.Contains(out, "taglane.traffic_tag=a") ||
		!strings.Contains(out, "taglane.node_tag=b") || !strings.Contains(out, "operation=/svc/M") {
		t.Errorf("log = %q, want one warning naming the hop", out)
	}
}

func TestCheckChain(t *testing.T) {
	a, b, c := MustParse("a"), MustParse("b"), MustParse("c")
	tests := []struct {
		name    string
		lane    Tag
		parents []Tag
		wantErr string
	}{
		{name: "no parents", lane: a},
		{name: "chain", lane: a, parents: []Tag{b, c}},
		{name: "stable lane", lane: Tag{}, parents: []Tag{b}, wantErr: "stable has no parents"},
		{name: "stable listed", lane: a, parents: []Tag{b, {}}, wantErr: "stable ends every chain by itself; do not list it"},
		{name: "lane in its own chain", lane: a, parents: []Tag{b, a}, wantErr: `"a" repeats a lane of the chain`},
		{name: "parent twice", lane: a, parents: []Tag{b, c, b}, wantErr: `"b" repeats a lane of the chain`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckChain(tt.lane, tt.parents)
			if got := fmt.Sprint(err); tt.wantErr == "" && err != nil || tt.wantErr != "" && got != tt.wantErr {
				t.Fatalf("CheckChain = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
