package httpmw

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/taglane/taglane/tagctx"
)

// attrHTTPRoute is OpenTelemetry's http.route. A constant of its own rather
// than a versioned semconv import: the key has been stable since 1.20.
const attrHTTPRoute = attribute.Key("http.route")

// finish runs when the next handler returns (or panics). A router inside
// the middleware, http.ServeMux or chi, sets Pattern on the request it was
// handed, which is the middleware's copy whenever the middleware marked the
// context; the caller outside (otelhttp names its span and sets http.route
// from its own request's Pattern once the handler returns) would never see
// it. So the pattern is copied back out, put on the span as http.route, and
// used as the observation's Operation: a route pattern is a bounded metric
// label where the raw path is not.
//
// The proof is recorded here, after the handler, for the same reason: only
// now is the pattern known. in is the request the middleware was given, r
// the one it passed on.
func (s *server) finish(ctx context.Context, o *tagctx.Observation, in, r *http.Request) {
	pattern := r.Pattern
	if pattern != "" {
		if in != r && in.Pattern == "" {
			in.Pattern = pattern
		}
		o.Operation = pattern
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			if route := routeOf(pattern); route != "" {
				span.SetAttributes(attrHTTPRoute.String(route))
			}
		}
	}
	tagctx.Record(ctx, *o, s.observer)
}

// routeOf turns a ServeMux pattern ("GET example.com/orders/{id}") into the
// http.route form ("/orders/{id}"), as otelhttp does; chi patterns are
// already in that form.
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}
