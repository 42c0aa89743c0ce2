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
// and Record proves which lane served a hop.
package tagctx
