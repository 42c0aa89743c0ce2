package mq

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/tagctx"
)

// TestPrefilter: on the pull goroutine a consumer drops the messages it
// would skip, counts them, keeps a batch's last message whatever it is,
// and hands the rest on in order.
func TestPrefilter(t *testing.T) {
	blue := tagctx.MustParse("blue")
	onlineBlue := &view{online: map[tagctx.Tag]struct{}{blue: {}}, until: time.Now().Add(time.Hour)}
	stale := &view{online: map[tagctx.Tag]struct{}{blue: {}}, until: time.Now().Add(-time.Second)}
	retry := msgWithTag("x-tag", "blue")
	retry.ReconsumeTimes = 1
	retry.Body = []byte("blue-retry")
	tests := []struct {
		name        string
		lane        string // "" for a stable consumer
		view        *view
		batch       []string // tags; "retry" is a blue redelivery
		wantKept    []string // bodies
		wantSkipped uint64
	}{
		{name: "lane keeps its tag and the last", lane: "blue",
			batch:    []string{"blue", "", "red", "blue", "bad_tag", "red"},
			wantKept: []string{"blue", "blue", "red"}, wantSkipped: 3},
		{name: "lane, all skipped but the last", lane: "blue",
			batch:    []string{"", "", "red", "green"},
			wantKept: []string{"green"}, wantSkipped: 3},
		{name: "lane, nothing to drop", lane: "blue",
			batch:    []string{"blue", "blue"},
			wantKept: []string{"blue", "blue"}},
		{name: "one message is left to the consume path", lane: "blue",
			batch:    []string{"red"},
			wantKept: []string{"red"}},
		{name: "stable skips online lanes", view: onlineBlue,
			batch:    []string{"blue", "", "green", "blue", "bad_tag", "blue"},
			wantKept: []string{"", "green", "bad_tag", "blue"}, wantSkipped: 2},
		{name: "stable keeps its own retries", view: onlineBlue,
			batch:    []string{"retry", "blue", ""},
			wantKept: []string{"blue-retry", ""}, wantSkipped: 1},
		{name: "stable, no lane online", view: &view{until: time.Now().Add(time.Hour)},
			batch:    []string{"blue", "blue", "blue"},
			wantKept: []string{"blue", "blue", "blue"}},
		{name: "stable, stale view skips nothing", view: stale,
			batch:    []string{"blue", "blue", ""},
			wantKept: []string{"blue", "blue", ""}},
		{name: "stable before its first refresh", view: nil,
			batch:    []string{"blue", ""},
			wantKept: []string{"blue", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Consumer{filter: filter{key: "x-tag"}}
			if tt.lane != "" {
				c.tag = tagctx.MustParse(tt.lane)
				c.filter.lane = c.tag
			}
			if tt.view != nil {
				c.view.Store(tt.view)
			}
			var batch []*primitive.MessageExt
			for _, tag := range tt.batch {
				if tag == "retry" {
					batch = append(batch, retry)
					continue
				}
				batch = append(batch, msgWithTag("x-tag", tag))
			}
			in := append([]*primitive.MessageExt(nil), batch...)
			var got []string
			for _, m := range c.prefilter(batch) {
				got = append(got, string(m.Body))
			}
			if diff := cmp.Diff(got, tt.wantKept); diff != "" {
				t.Errorf("kept (-got +want):\n%s", diff)
			}
			if got := c.Stats().Skipped; got != tt.wantSkipped {
				t.Errorf("Stats().Skipped = %d, want %d", got, tt.wantSkipped)
			}
			if !slices.Equal(batch, in) {
				t.Error("prefilter modified the batch it was given")
			}
		})
	}
}

// TestPrefilterThenConsume: what the prefilter keeps, the consume path
// decides again, and each message is counted once, skipped or handled.
func TestPrefilterThenConsume(t *testing.T) {
	c := &Consumer{filter: filter{key: "x-tag", lane: tagctx.MustParse("blue")}, tag: tagctx.MustParse("blue")}
	c.cfg.tracing.resolve()
	var handled []string
	f := c.consumeFunc(&subscription{topic: "orders", h: func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			handled = append(handled, tagctx.From(ctx).String()+":"+string(m.Body))
		}
		return consumer.ConsumeSuccess, nil
	}})
	var batch []*primitive.MessageExt
	for _, tag := range strings.Split("blue,,red,blue,,red", ",") {
		batch = append(batch, msgWithTag("x-tag", tag))
	}
	for _, m := range c.prefilter(batch) {
		if r, err := f(context.Background(), m); r != consumer.ConsumeSuccess || err != nil {
			t.Fatalf("consume: %v, %v", r, err)
		}
	}
	if diff := cmp.Diff(handled, []string{"blue:blue", "blue:blue"}); diff != "" {
		t.Errorf("handled (-got +want):\n%s", diff)
	}
	if got := c.Stats(); got.Handled != 2 || got.Skipped != 4 {
		t.Errorf("stats %+v, want 2 handled, 4 skipped", got)
	}
}

// BenchmarkPrefilter is the pull goroutine's cost per pulled batch of 32
// (the client's default PullBatchSize) for a lane consumer whose tag is
// one message in four, beside the consume path it saves.
func BenchmarkPrefilter(b *testing.B) {
	lane := tagctx.MustParse("blue")
	batch := make([]*primitive.MessageExt, 32)
	for i := range batch {
		tag := ""
		if i%4 == 0 {
			tag = "blue"
		}
		batch[i] = msgWithTag("x-tag", tag)
	}
	c := &Consumer{filter: filter{key: "x-tag", lane: lane}, tag: lane}
	b.ReportAllocs()
	for b.Loop() {
		c.prefilter(batch)
	}
}

// TestFastPathAgreesWithDecide: the single-message fast path reads the tag
// property itself and calls decideRaw (consumeFunc says why); for every
// consumer role, tag, retry and liveness view it must reach filter.decide's
// verdict, and the prefilter too, so a change to decide shows up here.
func TestFastPathAgreesWithDecide(t *testing.T) {
	blue := tagctx.MustParse("blue")
	views := map[string]*view{
		"no view":     nil,
		"blue online": {online: map[tagctx.Tag]struct{}{blue: {}}, until: time.Now().Add(time.Hour)},
		"stale":       {online: map[tagctx.Tag]struct{}{blue: {}}, until: time.Now().Add(-time.Second)},
		"none online": {online: map[tagctx.Tag]struct{}{}, until: time.Now().Add(time.Hour)},
	}
	for _, lane := range []string{"", "blue", "green"} {
		for vname, vw := range views {
			for _, tag := range []string{"", "blue", "green", "BLUE", "bad_tag"} {
				for _, retry := range []bool{false, true} {
					name := "stable"
					if lane != "" {
						name = "lane " + lane
					}
					t.Run(name+"/"+vname+"/"+tag+"/retry="+map[bool]string{false: "no", true: "yes"}[retry], func(t *testing.T) {
						c := &Consumer{filter: filter{key: "x-tag"}}
						c.cfg.tracing.resolve()
						if lane != "" {
							c.tag = tagctx.MustParse(lane)
							c.filter.lane = c.tag
						}
						if vw != nil {
							c.view.Store(vw)
						}
						m := msgWithTag("x-tag", tag)
						if retry {
							m.ReconsumeTimes = 1
						}
						_, want, _ := c.filter.decide(m, vw.onlineAt(time.Now()))
						var got []tagctx.Tag
						f := c.consumeFunc(&subscription{topic: "orders", h: func(ctx context.Context, _ ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
							got = append(got, tagctx.From(ctx))
							return consumer.ConsumeSuccess, nil
						}})
						if r, err := f(context.Background(), m); r != consumer.ConsumeSuccess || err != nil {
							t.Fatalf("consume: %v, %v", r, err)
						}
						if handled := len(got) == 1; handled != (want == handle) {
							t.Errorf("consume path handled=%v, decide says %v", handled, want)
						}
						// The prefilter drops a message only when it is not a
						// batch's last, so put it first of two.
						kept := c.prefilter([]*primitive.MessageExt{m, msgWithTag("x-tag", "")})
						if dropped := len(kept) == 1; dropped != (want == skip) {
							t.Errorf("prefilter dropped=%v, decide says %v", dropped, want)
						}
					})
				}
			}
		}
	}
}
