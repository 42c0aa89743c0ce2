package tagctx

import (
	"context"
	"log/slog"
	"slices"
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
//
// The two attributes are always at the record's top level, also under
// Logger.WithGroup, so a log query for taglane.tag finds every line of a
// lane whatever package logged it. They are added once: not again when
// next is already such a handler, and not when the logger or the record
// already has an attribute of that key at the top level (the caller's own
// value wins).
func NewLogHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(*logHandler); ok {
		return h
	}
	return &logHandler{next: next}
}

// logHandler hands next the attributes and groups it is given until the
// first WithGroup. From then on it keeps them itself (groups) and, per
// record, nests them under the tag attributes, because whatever next is
// given after a WithGroup would land inside the group.
type logHandler struct {
	next slog.Handler
	// groups opened on this handler, outermost first, each with the
	// attributes given to it by WithAttrs.
	groups []logGroup
	// hasTag, hasNode: the top-level attributes already carry the key.
	hasTag, hasNode bool
}

type logGroup struct {
	name  string
	attrs []slog.Attr
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	var tag, node Tag
	if ctx != nil && !h.hasTag {
		tag = Effective(ctx)
	}
	if !h.hasNode {
		node = Node()
	}
	if len(h.groups) == 0 {
		if tag.IsZero() && node.IsZero() {
			return h.next.Handle(ctx, r)
		}
		hasTag, hasNode := topLevelKeys(r)
		if !tag.IsZero() && !hasTag {
			r.AddAttrs(slog.String(LogKeyTag, tag.s))
		}
		if !node.IsZero() && !hasNode {
			r.AddAttrs(slog.String(LogKeyNodeTag, node.s))
		}
		return h.next.Handle(ctx, r)
	}
	// Under groups: a new record with the tags first, then the groups with
	// the record's own attributes innermost.
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if !tag.IsZero() {
		nr.AddAttrs(slog.String(LogKeyTag, tag.s))
	}
	if !node.IsZero() {
		nr.AddAttrs(slog.String(LogKeyNodeTag, node.s))
	}
	inner := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		inner = append(inner, a)
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		attrs := append(slices.Clip(g.attrs), inner...)
		inner = []slog.Attr{{Key: g.name, Value: slog.GroupValue(attrs...)}}
	}
	nr.AddAttrs(inner...)
	return h.next.Handle(ctx, nr)
}

// topLevelKeys reports whether r has top-level attributes LogKeyTag and
// LogKeyNodeTag, which the caller set and which are not added again.
func topLevelKeys(r slog.Record) (tag, node bool) {
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case LogKeyTag:
			tag = true
		case LogKeyNodeTag:
			node = true
		}
		return true
	})
	return tag, node
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	if len(h.groups) == 0 {
		c.next = h.next.WithAttrs(as)
		for _, a := range as {
			c.hasTag = c.hasTag || a.Key == LogKeyTag
			c.hasNode = c.hasNode || a.Key == LogKeyNodeTag
		}
		return &c
	}
	c.groups = slices.Clone(h.groups)
	last := &c.groups[len(c.groups)-1]
	last.attrs = append(slices.Clip(last.attrs), as...)
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" { // slog: an empty group name is no group
		return h
	}
	c := *h
	c.groups = append(slices.Clip(h.groups), logGroup{name: name})
	return &c
}
