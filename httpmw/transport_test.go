package httpmw_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransport(t *testing.T) {
	untagged := tagctx.WithUntagged(context.Background())
	tagged := tagctx.With(context.Background(), featureX)
	tests := []struct {
		name     string
		opts     []httpmw.TransportOption
		ctx      context.Context
		header   http.Header
		want     http.Header
		wantSame bool
	}{
		{
			name: "tagged, bare request",
			ctx:  tagged,
			want: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}},
		},
		{
			name:   "other baggage members kept",
			ctx:    tagged,
			header: http.Header{"Baggage": {"userid=42,tenant=acme;p=1"}, "Accept": {"*/*"}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"userid=42,tenant=acme;p=1,x-tag=feature-x"}, "Accept": {"*/*"}},
		},
		{
			name:   "stale tag replaced",
			ctx:    tagged,
			header: http.Header{"X-Tag": {"feature-y"}, "Baggage": {"x-tag=feature-y,userid=42"}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"userid=42,x-tag=feature-x"}},
		},
		{
			name:   "several baggage lines become one",
			ctx:    tagged,
			header: http.Header{"Baggage": {"userid=42", "x-tag=feature-y"}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"userid=42,x-tag=feature-x"}},
		},
		{
			name:     "already on the wire: passed through",
			ctx:      tagged,
			header:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"userid=42, x-tag=feature-x"}},
			want:     http.Header{"X-Tag": {"feature-x"}, "Baggage": {"userid=42, x-tag=feature-x"}},
			wantSame: true,
		},
		{
			name:   "member with a property is rewritten",
			ctx:    tagged,
			header: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x;p=1"}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}},
		},
		{
			name:     "no decision on a stable node: nothing added",
			ctx:      context.Background(),
			header:   http.Header{"Baggage": {"userid=42,x-tag-owner=bob"}},
			want:     http.Header{"Baggage": {"userid=42,x-tag-owner=bob"}},
			wantSame: true,
		},
		{
			name: "untagged decision: the untagged mark is written",
			ctx:  untagged,
			want: http.Header{"X-Tag": {""}},
		},
		{
			name:     "untagged decision, mark already there: passed through",
			ctx:      untagged,
			header:   http.Header{"X-Tag": {""}},
			want:     http.Header{"X-Tag": {""}},
			wantSame: true,
		},
		{
			name:   "no decision on a stable node: a forwarded mark is removed",
			ctx:    context.Background(),
			header: http.Header{"X-Tag": {""}},
			want:   http.Header{},
		},
		{
			name:   "untagged: stale tag replaced by the mark, other members kept",
			ctx:    untagged,
			header: http.Header{"X-Tag": {"feature-y"}, "Baggage": {"userid=42,x-tag=feature-y"}},
			want:   http.Header{"X-Tag": {""}, "Baggage": {"userid=42"}},
		},
		{
			name:   "untagged: baggage with only the member removed",
			ctx:    untagged,
			header: http.Header{"Baggage": {"x-tag=feature-y"}},
			want:   http.Header{"X-Tag": {""}},
		},
		{
			name:   "untagged: NBSP-spelled member removed",
			ctx:    untagged,
			header: http.Header{"Baggage": {"k=v,x-tag\u00a0=evil"}},
			want:   http.Header{"X-Tag": {""}, "Baggage": {"k=v"}},
		},
		{
			name:   "untagged, baggage only: no mark to write",
			opts:   []httpmw.TransportOption{httpmw.WithHeaders()},
			ctx:    untagged,
			header: http.Header{"Baggage": {"x-tag=feature-y"}},
			want:   http.Header{},
		},
		{
			name:   "tagged beside 64 other members: the last other is dropped, not the tag",
			ctx:    tagged,
			header: http.Header{"Baggage": {strings.TrimSuffix(strings.Repeat("k=v,", 64), ",")}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {strings.Repeat("k=v,", 63) + "x-tag=feature-x"}},
		},
		{
			name:   "tagged beside baggage over 8192 bytes: it is replaced",
			ctx:    tagged,
			header: http.Header{"Baggage": {strings.Repeat("b", 5000), strings.Repeat("b", 5000)}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}},
		},
		{
			name:   "header list: first written, others removed",
			opts:   []httpmw.TransportOption{httpmw.WithHeaders("X-Tag", "tag")},
			ctx:    tagged,
			header: http.Header{"Tag": {"feature-y"}},
			want:   http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}},
		},
		{
			name:   "header list: untagged removes them all",
			opts:   []httpmw.TransportOption{httpmw.WithHeaders("X-Tag", "tag")},
			ctx:    untagged,
			header: http.Header{"Tag": {"feature-y"}},
			want:   http.Header{"X-Tag": {""}},
		},
		{
			name: "no headers: baggage only",
			opts: []httpmw.TransportOption{httpmw.WithHeaders()},
			ctx:  tagged,
			want: http.Header{"Baggage": {"x-tag=feature-x"}},
		},
		{
			name: "renamed",
			opts: []httpmw.TransportOption{httpmw.WithHeaders("Lane"), httpmw.WithBaggageKey("lane"), nil},
			ctx:  tagged,
			want: http.Header{"Lane": {"feature-x"}, "Baggage": {"lane=feature-x"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			})
			req, err := http.NewRequestWithContext(tt.ctx, http.MethodGet, "http://b.test/stock", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != nil {
				req.Header = tt.header.Clone()
			}
			before := req.Header.Clone()
			// Twice: the second call runs on the member cache.
			for range 2 {
				resp, err := httpmw.Transport(base, tt.opts...).RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if diff := cmp.Diff(got.Header, tt.want); diff != "" {
					t.Errorf("sent header (-got +want):\n%s", diff)
				}
				if diff := cmp.Diff(req.Header, before); diff != "" {
					t.Errorf("caller's header changed (-got +want):\n%s", diff)
				}
				if (got == req) != tt.wantSame {
					t.Errorf("base got the caller's request: %v, want %v", got == req, tt.wantSame)
				}
				if got.URL != req.URL || got.Context() != req.Context() || got.Method != req.Method {
					t.Error("copy differs from the request in more than the header")
				}
			}
		})
	}
}

// TestTransportNodeTag: work that starts inside a lane process (no inbound
// request, no decision) stays in the lane.
func TestTransportNodeTag(t *testing.T) {
	tagctx.SetNode(featureY)
	t.Cleanup(func() { tagctx.SetNode(tagctx.Tag{}) })
	var got http.Header
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	req, err := http.NewRequest(http.MethodGet, "http://b.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpmw.Transport(base).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if diff := cmp.Diff(got, http.Header{"X-Tag": {"feature-y"}, "Baggage": {"x-tag=feature-y"}}); diff != "" {
		t.Errorf("sent header (-got +want):\n%s", diff)
	}
}

// TestTransportCopyIsIndependent: the copy's header values must not share
// writable capacity with the caller's, or an append downstream would
// write into the caller's request.
func TestTransportCopyIsIndependent(t *testing.T) {
	accept := make([]string, 1, 4)
	accept[0] = "text/plain"
	req, err := http.NewRequestWithContext(tagctx.With(context.Background(), featureX), http.MethodGet, "http://b.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Accept"] = accept
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Add("Accept", "application/json") // a misbehaving middleware
		r.Header.Add("X-Tag", "oops")
		r.Header.Add("Baggage", "oops=1")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	if _, err := httpmw.Transport(base).RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(accept[:cap(accept)], []string{"text/plain", "", "", ""}); diff != "" {
		t.Errorf("caller's backing array (-got +want):\n%s", diff)
	}
}

func TestNewTransportRejectsBadOptions(t *testing.T) {
	rt, err := httpmw.NewTransport(nil, httpmw.WithBaggageKey("a b"))
	if rt != nil || err == nil {
		t.Fatalf("NewTransport() = %v, %v; want an error", rt, err)
	}
	if diff := cmp.Diff(err.Error(), `httpmw: WithBaggageKey("a b"): not a valid W3C baggage key`); diff != "" {
		t.Errorf("error (-got +want):\n%s", diff)
	}
	defer func() {
		if recover() == nil {
			t.Error("Transport with an invalid option did not panic")
		}
	}()
	httpmw.Transport(nil, httpmw.WithHeaders("baggage"))
}
