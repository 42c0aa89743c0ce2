package tagctx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestLogHandler(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		node Tag
		want string
	}{
		{name: "stable", ctx: context.Background(), want: `level=INFO msg=hi k=v`},
		{name: "tagged on stable", ctx: With(context.Background(), MustParse("a")), want: `level=INFO msg=hi k=v taglane.tag=a`},
		{name: "tagged node", ctx: context.Background(), node: MustParse("n"), want: `level=INFO msg=hi k=v taglane.tag=n taglane.node_tag=n`},
		// slog substitutes context.Background for nil: the node tag applies.
		{name: "nil context", node: MustParse("n"), want: `level=INFO msg=hi k=v taglane.tag=n taglane.node_tag=n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, tt.node)
			var buf bytes.Buffer
			h := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}})
			log := slog.New(NewLogHandler(h)).With("k", "v")
			log.InfoContext(tt.ctx, "hi")
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("log line %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogHandlerGroupAndLevel(t *testing.T) {
	var buf bytes.Buffer
	h := NewLogHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("Enabled must follow the wrapped handler")
	}
	slog.New(h).WithGroup("g").WarnContext(With(context.Background(), MustParse("a")), "w", "k", 1)
	if !strings.Contains(buf.String(), "g.taglane.tag=a") {
		t.Errorf("got %q", buf.String())
	}
}
