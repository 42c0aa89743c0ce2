package rocketmqtest_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

type ctxKey struct{}

func msgs(bodies ...string) []*primitive.MessageExt {
	out := make([]*primitive.MessageExt, len(bodies))
	for i, b := range bodies {
		out[i] = &primitive.MessageExt{Message: primitive.Message{Body: []byte(b)}}
	}
	return out
}

func TestRecorder(t *testing.T) {
	var rec rocketmqtest.Recorder
	ctx := context.WithValue(context.Background(), ctxKey{}, "blue")
	res, err := rec.Handler("c1")(ctx, msgs("a", "b")...)
	if res != consumer.ConsumeSuccess || err != nil {
		t.Fatalf("Handler = %v, %v; want success", res, err)
	}
	rec.Record(context.Background(), "c2", msgs("b")...)

	ds := rec.Deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	if d := ds[0]; d.Consumer != "c1" || d.Body() != "a" || d.Batch != 2 || d.Ctx.Value(ctxKey{}) != "blue" {
		t.Errorf("first delivery = %+v", d)
	}
	if got := rec.ByBody(); !slices.Equal(got["b"], []string{"c1", "c2"}) || len(got) != 2 {
		t.Errorf("ByBody = %v", got)
	}
	for _, tc := range []struct {
		bodies     []string
		missing    []string
		duplicates int
	}{
		{[]string{"a"}, nil, 0},
		{[]string{"a", "b"}, nil, 1},
		{[]string{"a", "c", "d"}, []string{"c", "d"}, 0},
		{nil, nil, 0},
	} {
		if got := rec.Missing(tc.bodies...); !slices.Equal(got, tc.missing) {
			t.Errorf("Missing(%q) = %q, want %q", tc.bodies, got, tc.missing)
		}
		if got := rec.Duplicates(tc.bodies...); got != tc.duplicates {
			t.Errorf("Duplicates(%q) = %d, want %d", tc.bodies, got, tc.duplicates)
		}
	}
}

func TestRecorderWait(t *testing.T) {
	var rec rocketmqtest.Recorder
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 { // several waiters: every one of them is woken
		wg.Go(func() { errs <- rec.Wait(t.Context(), "x", "y") })
	}
	for _, b := range []string{"x", "y"} {
		rec.Record(context.Background(), "c", msgs(b)...)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := rec.Wait(ctx, "x", "never")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `1 of 2 messages not received, first "never"`) {
		t.Errorf("Wait on a done context = %v", err)
	}
	rec.WaitBodies(t, time.Minute, "x", "y") // already there: returns at once
}
