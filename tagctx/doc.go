// Package tagctx carries a lane's traffic tag through a Go process: in
// context.Context, across goroutines and worker pools, into OpenTelemetry
// baggage and into log records. It is the Go counterpart of Java's
// TransmittableThreadLocal for tag-based traffic lanes.
//
// A lane is every instance and every request sharing one tag. Requests carry
// a traffic tag; instances are started with a node tag (env TAGLANE_TAG). A
// context's effective tag, the one outgoing calls and messages carry, is its
// traffic tag, else the node tag, so work that starts inside a lane's process
// (timers, cron jobs, main) stays in that lane without code changes.
//
// Quick start:
//
//	tag, err := tagctx.Parse(r.Header.Get("X-Tag")) // "feature-x"
//	if err != nil {
//		return err // names the problem and quotes the input
//	}
//	ctx := tagctx.With(r.Context(), tag)
//
//	tagctx.Go(ctx, func(ctx context.Context) {
//		// Outlives the request, keeps the tag.
//		publish(ctx, tagctx.Effective(ctx))
//	})
//
// Entry points (package httpmw, package rpc, the mq module) put the traffic
// tag into the context; clients read Effective. Propagator carries the tag
// through OpenTelemetry propagation, NewLogHandler adds it to slog records,
// Record proves which lane served a hop, and Metrics counts those proofs as
// OpenTelemetry metrics.
//
// # Fan-out: Go, Wrap, a closure, Capture
//
// The tag lives in the context, so work on another goroutine keeps its lane
// exactly when it gets a context derived from the request's. Which way
// depends on whether the work should stop with the request:
//
//   - A closure over ctx, func() { f(ctx) }, for work the request waits
//     for (errgroup, a fan-out to several backends): the tag, the trace span
//     and the cancellation all come along, so the workers stop when the
//     request is canceled.
//   - Go(ctx, f) and Wrap(ctx, f) for work that outlives the request (fire
//     and forget, a pool that runs it later): every value of ctx comes
//     along, the tag and the trace span included, but not the
//     cancellation, on purpose, since the request is usually over by the
//     time the work runs.
//   - Capture and Snapshot.Apply where the context cannot travel at all (a
//     queue of plain structs, a callback API): the snapshot carries the tag
//     decision and the current span context, so the worker's spans join the
//     request's trace, and nothing else: no cancellation, no baggage, no
//     other context values.
//
// # Node tag
//
// The node tag comes from TAGLANE_TAG, read once at start-up, or from
// SetNode. An invalid TAGLANE_TAG does not stop the process at init: main
// can check NodeErr and decide (stop, or SetNode). If it does not, the
// first Node call, which comes before any routing decision, prints one line
// naming the bad value and exits with status 2, so a process meant for a
// lane never serves as a stable one.
package tagctx
