package tagctx

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Go runs f in a new goroutine with a context that keeps every value of ctx
// (the tag, the trace span) but not its cancellation: work started with go
// usually outlives the request that started it, and must not lose its lane
// when that request ends.
func Go(ctx context.Context, f func(context.Context)) {
	d := Detach(ctx)
	go f(d)
}

// Wrap captures ctx now and returns a func for a worker pool or executor
// that takes func(). When the pool runs it, f gets ctx's values and tag,
// detached from ctx's cancellation, whichever goroutine runs it.
//
// Dropping cancellation is deliberate: a pool may run f after the request
// has returned, and queued work is usually meant to finish. Work that must
// stop with the request (a fan-out whose results the request waits for)
// should not use Wrap: hand the pool a closure over ctx itself,
// func() { f(ctx) }, which keeps the tag, the trace span and the
// cancellation. See the package documentation for the three ways.
func Wrap(ctx context.Context, f func(context.Context)) func() {
	d := Detach(ctx)
	return func() { f(d) }
}

// Detach returns a context with ctx's values, tag included, that is never
// canceled and has no deadline.
func Detach(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// Snapshot is a captured tag decision and trace position, to carry across a
// boundary that drops contexts (a queue of plain structs, a callback API)
// and re-apply on the other side: TransmittableThreadLocal's capture and
// replay. Restore needs no call: contexts are immutable, so the context
// Apply was given is unchanged.
//
// It holds values, not a context: no cancellation, no deadline and no other
// context values cross with it, and it is safe to copy and to keep.
type Snapshot struct {
	tag Tag
	set bool
	// span is nil when ctx had no span context. A pointer, not a value:
	// trace.SpanContext holds a slice, which would make Snapshot
	// incomparable, and untraced captures allocate nothing.
	span *trace.SpanContext
}

// Capture records ctx's tag decision and the span context of its current
// span, so spans started from the re-applied context are children of the
// span that was current at Capture, in the same trace.
func Capture(ctx context.Context) Snapshot {
	t, ok := Lookup(ctx)
	s := Snapshot{tag: t, set: ok}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		s.span = new(trace.SpanContext) // not &sc: sc would escape on every call
		*s.span = sc
	}
	return s
}

// Tag returns the captured tag; the zero Tag if there was none.
func (s Snapshot) Tag() Tag { return s.tag }

// SpanContext returns the captured span context; an invalid one if ctx had
// no span.
func (s Snapshot) SpanContext() trace.SpanContext {
	if s.span == nil {
		return trace.SpanContext{}
	}
	return *s.span
}

// Apply returns ctx carrying exactly the captured decision: the captured
// tag, the explicit untagged mark, or, if nothing was captured, no decision
// (so the node tag applies again) even when ctx had one. If a span context
// was captured it becomes ctx's parent span context (non-recording: the
// captured span stays its owner's to end); otherwise ctx's span is kept.
func (s Snapshot) Apply(ctx context.Context) context.Context {
	if s.span != nil {
		ctx = trace.ContextWithSpanContext(ctx, *s.span)
	}
	if !s.set {
		if _, ok := Lookup(ctx); !ok {
			return ctx
		}
		return withoutDecision(ctx)
	}
	return With(ctx, s.tag)
}
