package tagctx

import (
	"bytes"
	"context"
	"io"
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
	if !strings.Contains(buf.String(), " taglane.tag=a g.k=1") {
		t.Errorf("got %q", buf.String())
	}
}

// TestLogHandlerTopLevel: the tags sit at the top level of the record
// whatever groups and attributes the logger was built with, exactly once,
// and everything else keeps its place.
func TestLogHandlerTopLevel(t *testing.T) {
	lane := With(context.Background(), MustParse("a"))
	tests := []struct {
		name string
		node Tag
		log  func(*slog.Logger)
		want string
	}{
		{
			name: "group",
			log:  func(l *slog.Logger) { l.WithGroup("req").InfoContext(lane, "hi", "id", 7) },
			want: `{"msg":"hi","taglane.tag":"a","req":{"id":7}}`,
		},
		{
			name: "attrs, groups, attrs",
			node: MustParse("n"),
			log: func(l *slog.Logger) {
				l.With("svc", "orders").WithGroup("req").With("method", "GET").WithGroup("db").InfoContext(lane, "q", "rows", 2)
			},
			want: `{"msg":"q","svc":"orders","taglane.tag":"a","taglane.node_tag":"n","req":{"method":"GET","db":{"rows":2}}}`,
		},
		{
			name: "empty group is no group",
			log:  func(l *slog.Logger) { l.WithGroup("").InfoContext(lane, "hi", "k", 1) },
			want: `{"msg":"hi","k":1,"taglane.tag":"a"}`,
		},
		{
			name: "group with no attributes is left out",
			log:  func(l *slog.Logger) { l.WithGroup("req").InfoContext(lane, "hi") },
			want: `{"msg":"hi","taglane.tag":"a"}`,
		},
		{
			name: "wrapped twice, added once",
			log: func(l *slog.Logger) {
				slog.New(NewLogHandler(l.Handler())).WithGroup("g").InfoContext(lane, "hi", "k", 1)
			},
			want: `{"msg":"hi","taglane.tag":"a","g":{"k":1}}`,
		},
		{
			name: "the caller's own top-level value wins",
			log:  func(l *slog.Logger) { l.InfoContext(lane, "hi", LogKeyTag, "mine") },
			want: `{"msg":"hi","taglane.tag":"mine"}`,
		},
		{
			name: "the logger's own value wins, also under a group",
			log:  func(l *slog.Logger) { l.With(LogKeyTag, "mine").WithGroup("g").InfoContext(lane, "hi", "k", 1) },
			want: `{"msg":"hi","taglane.tag":"mine","g":{"k":1}}`,
		},
		{
			name: "untagged on a stable node",
			log:  func(l *slog.Logger) { l.WithGroup("g").InfoContext(context.Background(), "hi", "k", 1) },
			want: `{"msg":"hi","g":{"k":1}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withNode(t, tt.node)
			var buf bytes.Buffer
			h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
					return slog.Attr{}
				}
				return a
			}})
			tt.log(slog.New(NewLogHandler(h)))
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("log line\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestLogHandlerDoesNotShareGroups: loggers derived from one parent do not
// see each other's attributes.
func TestLogHandlerDoesNotShareGroups(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}})
	base := slog.New(NewLogHandler(h)).WithGroup("g").With("shared", 1)
	a, b := base.With("a", 1), base.With("b", 2)
	a.Info("x")
	b.Info("y")
	if got, want := buf.String(), "msg=x g.shared=1 g.a=1\nmsg=y g.shared=1 g.b=2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func BenchmarkLogHandler(b *testing.B) {
	ctx := With(context.Background(), MustParse("feature-x"))
	for _, bc := range []struct {
		name string
		log  func(*slog.Logger) *slog.Logger
	}{
		{"plain", func(l *slog.Logger) *slog.Logger { return l }},
		{"group", func(l *slog.Logger) *slog.Logger { return l.WithGroup("req").With("id", 7) }},
	} {
		b.Run(bc.name+"/anchor", func(b *testing.B) {
			l := bc.log(slog.New(slog.NewJSONHandler(io.Discard, nil)))
			b.ReportAllocs()
			for b.Loop() {
				l.InfoContext(ctx, "hi", "k", 1)
			}
		})
		b.Run(bc.name+"/taglane", func(b *testing.B) {
			l := bc.log(slog.New(NewLogHandler(slog.NewJSONHandler(io.Discard, nil))))
			b.ReportAllocs()
			for b.Loop() {
				l.InfoContext(ctx, "hi", "k", 1)
			}
		})
	}
}
