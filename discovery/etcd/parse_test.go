package etcd_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/tagctx"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    discovery.Instance
		wantErr string
	}{
		{name: "stable, etcd naming style", value: `{"Addr":"10.0.0.1:80"}`,
			want: discovery.Instance{Service: "s", Addr: "10.0.0.1:80"}},
		{name: "lane with metadata", value: `{"Addr":"10.0.0.7:80","Metadata":{"x-tag":"Feature-X","zone":"b","weight":3}}`,
			want: discovery.Instance{Service: "s", Addr: "10.0.0.7:80", Tag: tagctx.MustParse("feature-x"), Metadata: map[string]string{"zone": "b", "weight": "3"}}},
		{name: "invalid tag", value: `{"Addr":"10.0.0.7:80","Metadata":{"x-tag":"not a tag"}}`, wantErr: "invalid"},
		{name: "tag not a string", value: `{"Addr":"10.0.0.7:80","Metadata":{"x-tag":7}}`, wantErr: "tag of type float64"},
		{name: "no address", value: `{"Metadata":{}}`, wantErr: "want host:port"},
		{name: "not json", value: `hello`, wantErr: `"hello"`},
		{name: "too big", value: `{"Addr":"` + strings.Repeat("x", etcd.MaxValue) + `"}`, wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := etcd.ParseEndpoint("s", []byte(tt.value))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "etcd: ") {
					t.Fatalf("err %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != tt.want.Addr || got.Tag != tt.want.Tag || len(got.Metadata) != len(tt.want.Metadata) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for k, v := range tt.want.Metadata {
				if got.Metadata[k] != v {
					t.Errorf("metadata %q: %q, want %q", k, got.Metadata[k], v)
				}
			}
		})
	}
}

// FuzzParseEndpoint: endpoint values are written by anyone with access to
// etcd. Whatever is accepted is a valid instance, and one written the etcd
// naming way with its tag reads back the same.
func FuzzParseEndpoint(f *testing.F) {
	f.Add([]byte(`{"Addr":"10.0.0.1:80"}`), "a")
	f.Add([]byte(`{"Addr":"10.0.0.7:80","Metadata":{"x-tag":"b","k":[1,2]}}`), "")
	f.Add([]byte(`{"Addr":":80","Metadata":null}`), "NOT")
	f.Fuzz(func(t *testing.T, value []byte, tag string) {
		inst, err := etcd.ParseEndpoint("s", value)
		if err != nil {
			if len(err.Error()) > 2048 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
		} else if err := inst.Check(); err != nil {
			t.Fatalf("accepted an invalid instance: %v", err)
		}
		tg, err := tagctx.Parse(tag)
		if err != nil || inst.Addr == "" {
			return
		}
		js, _ := json.Marshal(endpoints.Endpoint{Addr: inst.Addr, Metadata: map[string]any{etcd.MetadataTagKey: tg.String()}})
		back, err := etcd.ParseEndpoint("s", js)
		if err != nil || back.Tag != tg || back.Addr != inst.Addr {
			t.Fatalf("round trip of %s: %+v, %v", js, back, err)
		}
	})
}
