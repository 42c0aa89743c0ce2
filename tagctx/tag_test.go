package tagctx

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // substring of the error; "" means valid
	}{
		{name: "simple", in: "feature-x", want: "feature-x"},
		{name: "one char", in: "a", want: "a"},
		{name: "digits", in: "42", want: "42"},
		{name: "upper case lowered", in: "Feature-X", want: "feature-x"},
		{name: "max length", in: strings.Repeat("a", 63), want: strings.Repeat("a", 63)},
		{name: "too long", in: strings.Repeat("a", 64), wantErr: "longer than 63"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "leading hyphen", in: "-x", wantErr: "start and end"},
		{name: "trailing hyphen", in: "x-", wantErr: "start and end"},
		{name: "lone hyphen", in: "-", wantErr: "start and end"},
		{name: "underscore", in: "feature_x", wantErr: `'_' at byte 7`},
		{name: "dot", in: "a.b", wantErr: "not in [a-z0-9-]"},
		{name: "space", in: "a b", wantErr: "not in [a-z0-9-]"},
		{name: "cyrillic a look-alike", in: "fe\u0430ture", wantErr: "not in [a-z0-9-]"},
		{name: "kelvin sign lowers to k in unicode", in: "\u212a8s", wantErr: "not in [a-z0-9-]"},
		{name: "fullwidth letter", in: "\uff41", wantErr: "not in [a-z0-9-]"},
		{name: "nul byte", in: "a\x00b", wantErr: "not in [a-z0-9-]"},
		{name: "huge input quoted short", in: strings.Repeat("x", 1<<20), wantErr: "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(%q) error: %v", tt.in, err)
				}
				if got.String() != tt.want {
					t.Fatalf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidTag) {
				t.Errorf("errors.Is(%v, ErrInvalidTag) = false", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "tagctx: ") {
				t.Errorf("Parse(%q) error %q, want it to start with tagctx: and contain %q", tt.in, err, tt.wantErr)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long; the input must be cut", len(err.Error()))
			}
			if !got.IsZero() {
				t.Errorf("Parse(%q) returned non-zero tag %q with an error", tt.in, got)
			}
		})
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParse(\"bad_tag\") did not panic")
		}
	}()
	MustParse("bad_tag")
}

func TestParseDoesNotAllocateForLowercase(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse("feature-x") }); n != 0 {
		t.Fatalf("Parse allocates %v times for a valid lowercase tag", n)
	}
}

// validTag states the rules independently of Parse.
func validTag(s string) bool {
	if len(s) < 1 || len(s) > MaxLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"feature-x", "A", "", "-", "a-", strings.Repeat("z", 64), "fe\u0430ture", "\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTag) || !tag.IsZero() {
				t.Fatalf("Parse(%q) = %q, %v", s, tag, err)
			}
			return
		}
		if !validTag(tag.String()) {
			t.Fatalf("Parse(%q) accepted %q, which breaks the tag rules", s, tag)
		}
		if !strings.EqualFold(tag.String(), s) || len(tag.String()) != len(s) {
			t.Fatalf("Parse(%q) = %q is not the input lowercased", s, tag)
		}
		again, err := Parse(tag.String())
		if err != nil || again != tag {
			t.Fatalf("round trip of %q: %q, %v", tag, again, err)
		}
	})
}
