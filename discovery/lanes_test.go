package discovery_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

func TestParseLanes(t *testing.T) {
	a, a2, b := tagctx.MustParse("a"), tagctx.MustParse("a2"), tagctx.MustParse("b")
	tests := []struct {
		name    string
		js      string
		want    discovery.Lanes
		wantErr string
	}{
		{name: "empty", js: `{}`, want: discovery.Lanes{}},
		{name: "chain", js: `{"fallback":"fail","parents":{"a2":["a","b"]}}`,
			want: discovery.Lanes{Fallback: rpc.FallbackFail, Parents: map[tagctx.Tag][]tagctx.Tag{a2: {a, b}}}},
		{name: "upper case is one lane", js: `{"parents":{"A2":["A"]}}`, want: discovery.Lanes{Parents: map[tagctx.Tag][]tagctx.Tag{a2: {a}}}},
		{name: "two spellings of one lane", js: `{"parents":{"a2":["a"],"A2":["b"]}}`, wantErr: "defined twice"},
		{name: "misspelt field", js: `{"parent":{"a2":["a"]}}`, wantErr: `unknown field "parent"`},
		{name: "bad fallback", js: `{"fallback":"closest"}`, wantErr: `fallback "closest"`},
		{name: "bad lane", js: `{"parents":{"A B":["a"]}}`, wantErr: "invalid"},
		{name: "stable parent", js: `{"parents":{"a2":[""]}}`, wantErr: "parents of \"a2\""},
		{name: "repeat", js: `{"parents":{"a2":["a","a"]}}`, wantErr: "repeats"},
		{name: "self", js: `{"parents":{"a":["a"]}}`, wantErr: "repeats"},
		{name: "trailing data", js: `{} {}`, wantErr: "data after the object"},
		{name: "not json", js: `nope`, wantErr: `lanes "nope"`},
		{name: "too big", js: `{"parents":{` + strings.Repeat(" ", discovery.MaxLanesJSON) + `}}`, wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := discovery.ParseLanes([]byte(tt.js))
			if tt.wantErr != "" {
				if !errors.Is(err, discovery.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want ErrInvalid with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want, cmp.Comparer(func(x, y tagctx.Tag) bool { return x == y })); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

// FuzzParseLanes: stored lane definitions are outside input. Whatever
// ParseLanes accepts is valid and survives a round trip; errors quote a
// bounded prefix.
func FuzzParseLanes(f *testing.F) {
	for _, s := range []string{`{}`, `{"fallback":"fail","parents":{"a2":["a","b"]}}`, `{"parents":{"x":[]}}`, `nope`, `{"parents":{"a":["a"]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := discovery.ParseLanes(b)
		if err != nil {
			if len(err.Error()) > 1024 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if err := l.Check(); err != nil {
			t.Fatalf("accepted invalid lanes: %v", err)
		}
		js, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		again, err := discovery.ParseLanes(js)
		if err != nil {
			t.Fatalf("round trip of %s: %v", js, err)
		}
		if diff := cmp.Diff(again, l, cmp.Comparer(func(x, y tagctx.Tag) bool { return x == y })); diff != "" {
			t.Fatalf("round trip (-got +want):\n%s", diff)
		}
	})
}
