package tagctx

import (
	"context"
	"log/slog"
)

// Log attribute keys added by NewLogHandler.
const (
	LogKeyTag     = "taglane.tag"
	LogKeyNodeTag = "taglane.node_tag"
)

// NewLogHandler wraps next so every record logged with a context gets the
// context's effective tag (LogKeyTag) and the node tag (LogKeyNodeTag).
// Empty tags are left out, so stable traffic on a stable node logs as
// before.
func NewLogHandler(next slog.Handler) slog.Handler {
	return logHandler{next: next}
}

type logHandler struct{ next slog.Handler }

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if t := Effective(ctx); !t.IsZero() {
			r.AddAttrs(slog.String(LogKeyTag, t.s))
		}
	}
	if n := Node(); !n.IsZero() {
		r.AddAttrs(slog.String(LogKeyNodeTag, n.s))
	}
	return h.next.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{next: h.next.WithAttrs(as)}
}

func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{next: h.next.WithGroup(name)}
}
