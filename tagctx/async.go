package tagctx

import "context"

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
func Wrap(ctx context.Context, f func(context.Context)) func() {
	d := Detach(ctx)
	return func() { f(d) }
}

// Detach returns a context with ctx's values, tag included, that is never
// canceled and has no deadline.
func Detach(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// Snapshot is a captured tag decision, to carry across a boundary that
// drops contexts (a queue of plain structs, a callback API) and re-apply on
// the other side: TransmittableThreadLocal's capture and replay. Restore
// needs no call: contexts are immutable, so the context Apply was given is
// unchanged.
type Snapshot struct {
	tag Tag
	set bool
}

// Capture records ctx's tag decision.
func Capture(ctx context.Context) Snapshot {
	t, ok := Lookup(ctx)
	return Snapshot{tag: t, set: ok}
}

// Tag returns the captured tag; the zero Tag if there was none.
func (s Snapshot) Tag() Tag { return s.tag }

// Apply returns ctx carrying exactly the captured decision: the captured
// tag, the explicit untagged mark, or, if nothing was captured, no decision
// (so the node tag applies again) even when ctx had one.
func (s Snapshot) Apply(ctx context.Context) context.Context {
	if !s.set {
		if _, ok := Lookup(ctx); !ok {
			return ctx
		}
		return withoutDecision(ctx)
	}
	return With(ctx, s.tag)
}
