package mq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/tagctx"
)

func msgWithTag(key, tag string) *primitive.MessageExt {
	m := &primitive.MessageExt{Message: primitive.Message{Topic: "t", Body: []byte(tag)}}
	if tag != "" {
		m.WithProperty(key, tag)
	}
	return m
}

func TestFilterDecide(t *testing.T) {
	blue, green := tagctx.MustParse("blue"), tagctx.MustParse("green")
	online := map[tagctx.Tag]struct{}{blue: {}}
	tests := []struct {
		name      string
		lane      tagctx.Tag
		prop      string
		retry     bool
		online    map[tagctx.Tag]struct{}
		wantTag   string
		want      verdict
		wantError bool
	}{
		{name: "stable untagged", prop: "", online: online, want: handle},
		{name: "stable online lane", prop: "blue", online: online, wantTag: "blue", want: skip},
		{name: "stable offline lane", prop: "green", online: online, wantTag: "green", want: handle},
		{name: "stable stale view", prop: "blue", online: nil, wantTag: "blue", want: handle},
		{name: "stable upper case", prop: "BLUE", online: online, wantTag: "blue", want: skip},
		{name: "stable invalid", prop: "bad_tag", online: online, want: handle, wantError: true},
		{name: "stable own retry of online lane", prop: "blue", retry: true, online: online, wantTag: "blue", want: handle},
		{name: "lane own tag", lane: blue, prop: "blue", wantTag: "blue", want: handle},
		{name: "lane own retry", lane: blue, prop: "blue", retry: true, wantTag: "blue", want: handle},
		{name: "lane other tag", lane: blue, prop: "green", wantTag: "green", want: skip},
		{name: "lane untagged", lane: blue, prop: "", want: skip},
		{name: "lane invalid", lane: blue, prop: "-blue", want: skip, wantError: true},
		{name: "lane green online elsewhere", lane: green, prop: "green", online: online, wantTag: "green", want: handle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filter{key: "x-tag", lane: tt.lane}
			m := msgWithTag("x-tag", tt.prop)
			if tt.retry {
				m.ReconsumeTimes = 1
			}
			tag, v, err := f.decide(m, tt.online)
			if diff := cmp.Diff([]any{tag.String(), v, err != nil}, []any{tt.wantTag, tt.want, tt.wantError}); diff != "" {
				t.Errorf("decide(%q) (-got +want):\n%s", tt.prop, diff)
			}
			if err != nil && !errors.Is(err, tagctx.ErrInvalidTag) {
				t.Errorf("error %v does not match tagctx.ErrInvalidTag", err)
			}
		})
	}
}

func TestViewStaleness(t *testing.T) {
	now := time.Now()
	on := map[tagctx.Tag]struct{}{tagctx.MustParse("blue"): {}}
	var nilView *view
	if nilView.onlineAt(now) != nil {
		t.Error("no view: want nothing online")
	}
	v := &view{online: on, until: now.Add(time.Second)}
	if len(v.onlineAt(now)) != 1 {
		t.Error("fresh view: want blue online")
	}
	if v.onlineAt(now.Add(time.Second)) != nil {
		t.Error("stale view: want nothing online, so stable handles every tag")
	}
}

func TestGroupNames(t *testing.T) {
	long := strings.Repeat("a", MaxGroupLen)
	tests := []struct {
		name    string
		prefix  string
		tag     string
		base    string
		want    string
		wantErr string
	}{
		{name: "stable", base: "orders", want: "orders"},
		{name: "stable prefix", prefix: "test_", base: "orders", want: "test_orders"},
		{name: "lane", tag: "feature-x", base: "orders", want: "feature-x_orders"},
		{name: "lane base with underscore", tag: "blue", base: "order_events", want: "blue_order_events"},
		{name: "max length", base: long, want: long},
		{name: "empty base", base: "", wantErr: `mq: base group is empty`},
		{name: "bad char", base: "orders.v1", wantErr: `mq: base group "orders.v1": want characters of [%|a-zA-Z0-9_-]`},
		{name: "space", base: "my orders", wantErr: `mq: base group "my orders": want characters`},
		{name: "too long stable", prefix: "x", base: long, wantErr: "longer than RocketMQ's 255"},
		{name: "too long lane", tag: "blue", base: long, wantErr: "mq: lane group \"blue_" + long[:10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			var err error
			if tt.tag == "" {
				got, err = StableGroup(tt.prefix, tt.base)
			} else {
				got, err = LaneGroup(tagctx.MustParse(tt.tag), tt.base)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := LaneGroup(tagctx.Tag{}, "orders"); err == nil {
		t.Error("LaneGroup with the zero tag: want an error")
	}
}

func TestLaneOf(t *testing.T) {
	tests := []struct {
		group, base string
		want        string
		ok          bool
	}{
		{"blue_orders", "orders", "blue", true},
		{"feature-x_orders", "orders", "feature-x", true},
		{"orders", "orders", "", false},
		{"blue_orders_v2", "orders", "", false},
		{"blue_order_events", "order_events", "blue", true},
		{"BLUE_orders", "orders", "", false}, // not a name LaneGroup makes
		{"-x_orders", "orders", "", false},
		{"a_b_orders", "b_orders", "a", true},
	}
	for _, tt := range tests {
		tag, ok := laneOf(tt.group, tt.base)
		if tag.String() != tt.want || ok != tt.ok {
			t.Errorf("laneOf(%q, %q) = %q, %v; want %q, %v", tt.group, tt.base, tag, ok, tt.want, tt.ok)
		}
	}
}

func TestNewConsumerErrors(t *testing.T) {
	tests := []struct {
		name string
		base string
		opts []Option
		want string
	}{
		{"no name server", "orders", nil, "mq: NewConsumer needs WithNameServer"},
		{"bad base", "or/ders", []Option{WithNameServer("127.0.0.1:1")}, `mq: base group "or/ders"`},
		{"bad prefix", "orders", []Option{WithNameServer("127.0.0.1:1"), WithGroupPrefix("te st")}, `mq: WithGroupPrefix("te st")`},
		{"prefix names the lane", "orders", []Option{WithNameServer("127.0.0.1:1"), WithGroupPrefix("blue_"), WithNode(tagctx.MustParse("blue"))}, `equals the stable group`},
		{"refresh too short", "orders", []Option{WithNameServer("127.0.0.1:1"), WithRefreshInterval(time.Microsecond)}, "mq: WithRefreshInterval(1µs): below 10ms"},
		{"staleness below refresh", "orders", []Option{WithNameServer("127.0.0.1:1"), WithStaleness(time.Millisecond)}, "mq: WithStaleness(1ms): shorter than the refresh interval 250ms"},
		{"offline after 0", "orders", []Option{WithNameServer("127.0.0.1:1"), WithOfflineAfter(0)}, "mq: WithOfflineAfter(0): must be at least 1"},
		{"empty name server", "orders", []Option{WithNameServer("")}, `mq: WithNameServer(""): want at least one address, none empty`},
		{"empty property key", "orders", []Option{WithPropertyKey("")}, `mq: WithPropertyKey(""): empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewConsumer(tt.base, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if c != nil {
					c.admin.Close()
				}
				t.Fatalf("NewConsumer: %v; want error containing %q", err, tt.want)
			}
		})
	}
}

// TestConsumeGroupsByTag: a delivered batch of mixed tags reaches the
// handler once per tag, in order, each call with its tag in the context,
// and online lanes' messages are acked unhandled.
func TestConsumeGroupsByTag(t *testing.T) {
	c := &Consumer{filter: filter{key: "x-tag"}}
	blue := tagctx.MustParse("blue")
	c.view.Store(&view{online: map[tagctx.Tag]struct{}{blue: {}}, until: time.Now().Add(time.Hour)})
	var obs []tagctx.Observation
	c.cfg.observer = func(_ context.Context, o tagctx.Observation) { obs = append(obs, o) }
	type call struct {
		Tag    string
		Bodies []string
	}
	var calls []call
	s := &subscription{topic: "orders", h: func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		cl := call{Tag: tagctx.From(ctx).String()}
		for _, m := range msgs {
			cl.Bodies = append(cl.Bodies, string(m.Body))
		}
		calls = append(calls, cl)
		return consumer.ConsumeSuccess, nil
	}}
	var batch []*primitive.MessageExt
	for _, tag := range []string{"", "green", "blue", "", "red", "green", "bad_tag"} {
		batch = append(batch, msgWithTag("x-tag", tag))
	}
	r, err := c.consumeFunc(s)(context.Background(), batch...)
	if err != nil || r != consumer.ConsumeSuccess {
		t.Fatalf("consume: %v, %v", r, err)
	}
	want := []call{
		{Tag: "", Bodies: []string{"", ""}},
		{Tag: "green", Bodies: []string{"green", "green"}},
		{Tag: "red", Bodies: []string{"red"}},
		{Tag: "", Bodies: []string{"bad_tag"}},
	}
	if diff := cmp.Diff(calls, want); diff != "" {
		t.Errorf("handler calls (-got +want):\n%s", diff)
	}
	if got := c.Stats(); got.Handled != 6 || got.Skipped != 1 || got.Rejected != 1 {
		t.Errorf("stats %+v, want 6 handled, 1 skipped, 1 rejected", got)
	}
	var routes []string
	for _, o := range obs {
		routes = append(routes, o.Traffic.String()+":"+o.Route.String())
		if o.Transport != "rocketmq" || o.Operation != "orders" {
			t.Errorf("observation %+v: want transport rocketmq, operation orders", o)
		}
	}
	if diff := cmp.Diff(routes, []string{":matched", "green:fallback", "red:fallback", ":matched"}); diff != "" {
		t.Errorf("route proof (-got +want):\n%s", diff)
	}
	if obs[3].Rejected == nil {
		t.Error("invalid tag: want Rejected in the observation")
	}
}

// FuzzFilterProperty: whatever the property holds, a lane consumer handles
// exactly its own valid tag, a stable consumer handles everything but an
// online lane's valid tag, and nothing panics.
func FuzzFilterProperty(f *testing.F) {
	for _, s := range []string{"", "blue", "BLUE", "blue ", "bad_tag", "-", strings.Repeat("a", 64), "blüe", "a\x00b"} {
		f.Add(s)
	}
	blue := tagctx.MustParse("blue")
	online := map[tagctx.Tag]struct{}{blue: {}}
	lane := filter{key: "x-tag", lane: blue}
	stable := filter{key: "x-tag"}
	f.Fuzz(func(t *testing.T, prop string) {
		m := msgWithTag("x-tag", prop)
		parsed, perr := tagctx.Parse(prop)
		isBlue := perr == nil && parsed == blue

		_, v, err := lane.decide(m, nil)
		if (v == handle) != isBlue {
			t.Errorf("lane blue, property %q: verdict %v", prop, v)
		}
		if prop != "" && (err != nil) != (perr != nil) {
			t.Errorf("lane, property %q: error %v, Parse error %v", prop, err, perr)
		}
		tag, v, err := stable.decide(m, online)
		if (v == skip) != isBlue {
			t.Errorf("stable, property %q: verdict %v", prop, v)
		}
		if err != nil && !tag.IsZero() {
			t.Errorf("stable, property %q: rejected but tagged %q", prop, tag)
		}
	})
}

// BenchmarkFilter is the per-message cost of the stable consumer's
// decision: property read, tag parse, liveness lookup.
func BenchmarkFilter(b *testing.B) {
	online := map[tagctx.Tag]struct{}{}
	for _, t := range []string{"blue", "green", "feature-x", "feature-y", "red"} {
		online[tagctx.MustParse(t)] = struct{}{}
	}
	msgs := []*primitive.MessageExt{
		msgWithTag("x-tag", "blue"), msgWithTag("x-tag", ""), msgWithTag("x-tag", "feature-z"), msgWithTag("x-tag", "feature-x"),
	}
	for _, m := range msgs {
		m.WithProperty("UNIQ_KEY", "7F0000010001000000000000000000AB")
		m.WithProperty("CLUSTER", "DefaultCluster")
	}
	f := filter{key: "x-tag"}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; b.Loop(); i++ {
		if _, v, _ := f.decide(msgs[i&3], online); v == skip {
			n++
		}
	}
	_ = n
}

var subAll = consumer.MessageSelector{}

func nopHandler(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return consumer.ConsumeSuccess, nil
}

// BenchmarkConsumeFunc is what the lane-aware wrapper adds per message in
// front of the user's handler (filter, tag context, route proof), beside a
// direct handler call: the part of BenchmarkConsume that is this package's.
func BenchmarkConsumeFunc(b *testing.B) {
	h := func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return consumer.ConsumeSuccess, nil
	}
	m := msgWithTag("x-tag", "feature-z")
	m.Queue = &primitive.MessageQueue{Topic: "orders", BrokerName: "broker-a"}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h(context.Background(), m)
		}
	})
	b.Run("stable", func(b *testing.B) {
		c := &Consumer{filter: filter{key: "x-tag"}}
		c.cfg.tracing.resolve() // as newConfig does: tracing off, the fast path
		c.view.Store(&view{online: map[tagctx.Tag]struct{}{tagctx.MustParse("blue"): {}}, until: time.Now().Add(time.Hour)})
		f := c.consumeFunc(&subscription{topic: "orders", h: h})
		b.ReportAllocs()
		for b.Loop() {
			f(context.Background(), m)
		}
	})
}

// Every option with a bad argument: building it does not panic, and the
// constructor's error names the option and quotes the value (bounded).
func TestOptionErrors(t *testing.T) {
	long := strings.Repeat("p", 300) + " "
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{name: "WithPropertyKey", opt: WithPropertyKey(""), want: `mq: WithPropertyKey(""): empty`},
		{name: "WithGroupPrefix", opt: WithGroupPrefix("te st"), want: `mq: WithGroupPrefix("te st"): want characters of [%|a-zA-Z0-9_-]`},
		{name: "WithGroupPrefix long", opt: WithGroupPrefix(long), want: "mq: WithGroupPrefix(" + tagctx.Quote(long) + "): want characters of [%|a-zA-Z0-9_-]"},
		{name: "WithNameServer none", opt: WithNameServer(), want: `mq: WithNameServer(""): want at least one address, none empty`},
		{name: "WithNameServer empty entry", opt: WithNameServer("127.0.0.1:9876", ""), want: `mq: WithNameServer("127.0.0.1:9876,"): want at least one address, none empty`},
		{name: "WithRefreshInterval", opt: WithRefreshInterval(time.Millisecond), want: "mq: WithRefreshInterval(1ms): below 10ms"},
		{name: "WithStaleness", opt: WithStaleness(0), want: "mq: WithStaleness(0s): must be positive"},
		{name: "WithOfflineAfter", opt: WithOfflineAfter(-1), want: "mq: WithOfflineAfter(-1): must be at least 1"},
		{name: "WithTakeoverMargin", opt: WithTakeoverMargin(-time.Second), want: "mq: WithTakeoverMargin(-1s): negative"},
		{name: "WithAdminTimeout", opt: WithAdminTimeout(0), want: "mq: WithAdminTimeout(0s): must be positive"},
		{name: "WithInstanceName", opt: WithInstanceName(""), want: `mq: WithInstanceName(""): empty`},
		{name: "WithStartWait", opt: WithStartWait(-time.Second), want: "mq: WithStartWait(-1s): negative"},
		{name: "WithTopicQueues", opt: WithTopicQueues(0), want: fmt.Sprintf("mq: WithTopicQueues(0): outside [1, %d]", MaxTopicQueues)},
		{name: "WithCluster", opt: WithCluster(""), want: `mq: WithCluster(""): empty`},
		{name: "WithTracerProvider", opt: WithTracerProvider(nil), want: "mq: WithTracerProvider(nil): want a TracerProvider"},
		{name: "WithPropagators", opt: WithPropagators(nil), want: "mq: WithPropagators(nil): want a TextMapPropagator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig([]Option{nil, tt.opt})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("newConfig error (-got +want):\n%s", diff)
			}
			// The producer constructor reports it too, instead of panicking.
			if _, err := WrapProducer(nopProducer{}, tt.opt); err == nil || err.Error() != tt.want {
				t.Errorf("WrapProducer error = %v, want %s", err, tt.want)
			}
		})
	}
}

// nopProducer is a producer that is never started: WrapProducer only
// needs its method set.
type nopProducer struct{ rocketmq.Producer }
