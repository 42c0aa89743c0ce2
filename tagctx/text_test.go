package tagctx_test

import (
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taglane/taglane/tagctx"
)

var (
	_ encoding.TextMarshaler   = tagctx.Tag{}
	_ encoding.TextAppender    = tagctx.Tag{}
	_ encoding.TextUnmarshaler = (*tagctx.Tag)(nil)
)

func TestTagJSON(t *testing.T) {
	type config struct {
		Lane     tagctx.Tag `json:"lane"`
		Fallback tagctx.Tag `json:"fallback,omitzero"`
	}
	tests := []struct {
		name    string
		in      string
		want    config
		out     string // re-marshaled
		wantErr string
	}{
		{name: "lane", in: `{"lane":"Feature-X"}`, want: config{Lane: tagctx.MustParse("feature-x")}, out: `{"lane":"feature-x"}`},
		{name: "empty is untagged", in: `{"lane":""}`, out: `{"lane":""}`},
		{name: "absent is untagged", in: `{}`, out: `{"lane":""}`},
		{name: "both", in: `{"lane":"a","fallback":"b"}`, want: config{Lane: tagctx.MustParse("a"), Fallback: tagctx.MustParse("b")}, out: `{"lane":"a","fallback":"b"}`},
		{name: "invalid", in: `{"lane":"feature_x"}`, wantErr: `tagctx: invalid tag "feature_x": character '_' at byte 7 is not in [a-z0-9-]`},
		{name: "long input is quoted bounded", in: `{"lane":"` + strings.Repeat("a", 10000) + `"}`, wantErr: `tagctx: invalid tag "` + strings.Repeat("a", 2*tagctx.MaxLen) + `...": longer than 63 bytes (10000)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got config
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tagctx.ErrInvalidTag) {
					t.Fatalf("error %v, want %q matching ErrInvalidTag", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.Comparer(func(a, b tagctx.Tag) bool { return a == b })); diff != "" {
				t.Errorf("decoded (-got +want):\n%s", diff)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.out {
				t.Errorf("re-marshaled %s, want %s", out, tt.out)
			}
		})
	}
}

func TestTagFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "default", want: "stable-default"},
		{name: "set", args: []string{"-lane", "Feature-X"}, want: "feature-x"},
		{name: "empty means untagged", args: []string{"-lane="}, want: ""},
		{name: "invalid", args: []string{"-lane", "-x"}, wantErr: `invalid value "-x" for flag -lane: tagctx: invalid tag "-x": must start and end with a letter or digit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("app", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var lane tagctx.Tag
			fs.TextVar(&lane, "lane", tagctx.MustParse("stable-default"), "the node's lane")
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lane.String() != tt.want {
				t.Errorf("lane %q, want %q", lane, tt.want)
			}
		})
	}
}

// TestUnmarshalTextKeepsValueOnError: a bad value does not wipe a good one.
func TestUnmarshalTextKeepsValueOnError(t *testing.T) {
	tag := tagctx.MustParse("keep")
	if err := tag.UnmarshalText([]byte("NOT OK")); err == nil {
		t.Fatal("no error")
	}
	if tag.String() != "keep" {
		t.Errorf("tag %q after a failed unmarshal, want keep", tag)
	}
}

func FuzzTagText(f *testing.F) {
	for _, s := range []string{"feature-x", "A", "", "-", "a-", strings.Repeat("z", 64), "fe\u0430ture", "a\x00b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var tag tagctx.Tag
		err := tag.UnmarshalText(text)
		if err != nil {
			if !errors.Is(err, tagctx.ErrInvalidTag) || !tag.IsZero() {
				t.Fatalf("UnmarshalText(%q) = %q, %v", text, tag, err)
			}
			var pe *tagctx.ParseError
			if !errors.As(err, &pe) || len(pe.Input) > 2*tagctx.MaxLen+3 {
				t.Fatalf("error %v does not bound the quoted input", err)
			}
			return
		}
		if len(text) > 0 {
			if p, err := tagctx.Parse(string(text)); err != nil || p != tag {
				t.Fatalf("UnmarshalText(%q) = %q, Parse says %q, %v", text, tag, p, err)
			}
		}
		out, err := tag.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var again tagctx.Tag
		if err := again.UnmarshalText(out); err != nil || again != tag {
			t.Fatalf("round trip of %q: %q, %v", tag, again, err)
		}
		if app, _ := tag.AppendText([]byte("x")); string(app) != "x"+string(out) {
			t.Fatalf("AppendText %q", app)
		}
	})
}
