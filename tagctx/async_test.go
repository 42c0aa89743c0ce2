package tagctx

import (
	"context"
	"fmt"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestGoKeepsTagAfterRequestEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(With(context.Background(), MustParse("feature-x")))
	cancel() // the request is over before the goroutine runs
	got := make(chan error, 1)
	Go(ctx, func(ctx context.Context) {
		got <- fmt.Errorf("tag %q, err %v", From(ctx), ctx.Err())
	})
	if err := <-got; err.Error() != `tag "feature-x", err <nil>` {
		t.Fatal(err)
	}
}

// TestPoolRace runs many tagged tasks through a small worker pool whose
// goroutines are reused across tags, the case ThreadLocal gets wrong.
func TestPoolRace(t *testing.T) {
	const workers, tasks = 4, 2000
	jobs := make(chan func())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j()
			}
		})
	}
	var mu sync.Mutex
	wrong := 0
	var done sync.WaitGroup
	for i := range tasks {
		want := MustParse(fmt.Sprintf("lane-%d", i%7))
		ctx := With(context.Background(), want)
		if i%3 == 0 {
			ctx = WithUntagged(ctx)
			want = Tag{}
		}
		done.Add(1)
		jobs <- Wrap(ctx, func(ctx context.Context) {
			defer done.Done()
			if Effective(ctx) != want {
				mu.Lock()
				wrong++
				mu.Unlock()
			}
		})
	}
	done.Wait()
	close(jobs)
	wg.Wait()
	if wrong != 0 {
		t.Fatalf("%d of %d tasks ran with the wrong tag", wrong, tasks)
	}
}

func TestGoRace(t *testing.T) {
	const n = 500
	errs := make(chan error, n)
	for i := range n {
		want := MustParse(fmt.Sprintf("t%d", i))
		Go(With(context.Background(), want), func(ctx context.Context) {
			if got := From(ctx); got != want {
				errs <- fmt.Errorf("got %q want %q", got, want)
				return
			}
			errs <- nil
		})
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSnapshot(t *testing.T) {
	a, b := MustParse("a"), MustParse("b")
	bg := context.Background()
	tests := []struct {
		name        string
		from, onto  context.Context
		wantTag     Tag
		wantDecided bool
	}{
		{name: "tag replayed", from: With(bg, a), onto: bg, wantTag: a, wantDecided: true},
		{name: "tag replaces other tag", from: With(bg, a), onto: With(bg, b), wantTag: a, wantDecided: true},
		{name: "untagged replayed", from: WithUntagged(bg), onto: With(bg, b), wantDecided: true},
		{name: "no decision replayed over a decision", from: bg, onto: With(bg, b)},
		{name: "no decision onto nothing", from: bg, onto: bg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Capture(tt.from)
			got := s.Apply(tt.onto)
			tag, decided := Lookup(got)
			if tag != tt.wantTag || decided != tt.wantDecided {
				t.Errorf("after Apply: %q, %v; want %q, %v", tag, decided, tt.wantTag, tt.wantDecided)
			}
			if s.Tag() != tt.wantTag {
				t.Errorf("Snapshot.Tag() = %q", s.Tag())
			}
			// Restore is free: the context Apply was given is unchanged.
			if before, after := Capture(tt.onto), Capture(tt.onto); before != after {
				t.Error("Apply changed its argument")
			}
		})
	}
}

func TestDetach(t *testing.T) {
	ctx, cancel := context.WithCancel(With(context.Background(), MustParse("a")))
	d := Detach(ctx)
	cancel()
	if d.Err() != nil || d.Done() != nil {
		t.Fatal("detached context was canceled")
	}
	if From(d).String() != "a" {
		t.Fatal("detached context lost the tag")
	}
}

// TestSnapshotCarriesTrace: work re-applied from a Snapshot in a pool
// continues the trace of the request that captured it, as a child of the
// span current at Capture, and cannot end that span.
func TestSnapshotCarriesTrace(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, req := tp.Tracer("test").Start(With(context.Background(), MustParse("a")), "request")
	s := Capture(ctx)
	req.End()

	queue := make(chan Snapshot, 1)
	queue <- s
	done := make(chan struct{})
	go func() { // a pool worker: its own context, no request values
		defer close(done)
		wctx := (<-queue).Apply(context.Background())
		if From(wctx).String() != "a" {
			t.Errorf("worker tag %q", From(wctx))
		}
		if trace.SpanFromContext(wctx).IsRecording() {
			t.Error("the worker got the request's span itself, not its context")
		}
		_, job := tp.Tracer("test").Start(wctx, "job")
		job.End()
	}()
	<-done
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	reqSC, job := spans[0].SpanContext(), spans[1]
	if job.Parent().SpanID() != reqSC.SpanID() || job.SpanContext().TraceID() != reqSC.TraceID() {
		t.Errorf("job span parent %v in trace %v, want request %v in %v", job.Parent().SpanID(), job.SpanContext().TraceID(), reqSC.SpanID(), reqSC.TraceID())
	}
	if s.SpanContext().SpanID() != reqSC.SpanID() {
		t.Errorf("SpanContext() = %v", s.SpanContext())
	}

	// Nothing captured: the worker's own span stays.
	wctx, own := tp.Tracer("test").Start(context.Background(), "own")
	defer own.End()
	if got := Capture(context.Background()).Apply(wctx); trace.SpanFromContext(got) != own {
		t.Error("Apply of an untraced snapshot replaced the worker's span")
	}
	if Capture(context.Background()).SpanContext().IsValid() {
		t.Error("untraced snapshot has a span context")
	}
}

func BenchmarkSnapshot(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "untraced"
		ctx := With(context.Background(), MustParse("a"))
		if traced {
			name = "traced"
			tp := sdktrace.NewTracerProvider()
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			var span trace.Span
			ctx, span = tp.Tracer("bench").Start(ctx, "request")
			b.Cleanup(func() { span.End() })
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Capture(ctx).Apply(context.Background())
			}
		})
	}
}
