package httpmw_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// hop is what the last service of a chain saw.
type hop struct {
	Tag      string // tagctx.From in B's handler
	XTag     string // X-Tag header B received
	Baggage  string // baggage header B received
	RouteA   string // A's RouteHeader
	RouteB   string // B's RouteHeader
	Rejected bool
}

// TestChain runs client → A (middleware, stable node) → A's outgoing call
// through Transport → B (middleware, lane node feature-x) over real
// loopback connections, for every way a tag can enter.
func TestChain(t *testing.T) {
	tests := []struct {
		name    string
		aOpts   []httpmw.Option
		prepare func(*http.Request)
		want    hop
	}{
		{
			name:    "X-Tag header",
			prepare: func(r *http.Request) { r.Header.Set("X-Tag", "feature-x") },
			want:    tagged,
		},
		{
			name:    "bare tag header",
			aOpts:   []httpmw.Option{httpmw.WithHeaders("X-Tag", "tag")},
			prepare: func(r *http.Request) { r.Header.Set("tag", "Feature-X") },
			want:    tagged,
		},
		{
			name:    "baggage",
			prepare: func(r *http.Request) { r.Header.Set("Baggage", "userid=42,x-tag=feature-x") },
			want:    tagged,
		},
		{
			name:    "host pattern",
			aOpts:   []httpmw.Option{httpmw.WithHostPattern("app-{tag}.test.example.com")},
			prepare: func(r *http.Request) { r.Host = "app-feature-x.test.example.com" },
			want:    tagged,
		},
		{
			name:    "untagged: nothing forwarded, and B flags the misroute",
			prepare: func(*http.Request) {},
			want: hop{
				RouteA: "traffic= node= route=matched",
				RouteB: "traffic= node=feature-x route=misroute",
			},
		},
		{
			name:    "invalid: served untagged, nothing forwarded",
			prepare: func(r *http.Request) { r.Header.Set("X-Tag", "feature x") },
			want: hop{
				RouteA:   "traffic= node= route=matched",
				RouteB:   "traffic= node=feature-x route=misroute",
				Rejected: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := httptest.NewServer(httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(hop{
					Tag:     tagctx.From(r.Context()).String(),
					XTag:    r.Header.Get("X-Tag"),
					Baggage: r.Header.Get("Baggage"),
				})
			}), httpmw.WithNode(featureX), httpmw.WithRouteHeader()))
			t.Cleanup(b.Close)

			aClient := &http.Client{Transport: httpmw.Transport(&http.Transport{})}
			t.Cleanup(aClient.CloseIdleConnections) // forwarded to the base
			rejected := make(chan error, 1)
			aOpts := append(slices.Clone(tt.aOpts),
				httpmw.WithNode(tagctx.Tag{}),
				httpmw.WithRouteHeader(),
				httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { rejected <- o.Rejected }),
			)
			a := httptest.NewServer(httpmw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, b.URL+"/stock", nil)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				resp, err := aClient.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				w.Header().Set("B-Route", resp.Header.Get(httpmw.RouteHeader))
				_, _ = io.Copy(w, resp.Body)
			}), aOpts...))
			t.Cleanup(a.Close)

			client := &http.Client{Transport: &http.Transport{}}
			t.Cleanup(client.CloseIdleConnections)
			req, err := http.NewRequest(http.MethodGet, a.URL+"/order", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.prepare(req)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got hop
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			got.RouteA = resp.Header.Get(httpmw.RouteHeader)
			got.RouteB = resp.Header.Get("B-Route")
			got.Rejected = <-rejected != nil
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

var tagged = hop{
	Tag:     "feature-x",
	XTag:    "feature-x",
	Baggage: "x-tag=feature-x",
	RouteA:  "traffic=feature-x node= route=fallback",
	RouteB:  "traffic=feature-x node=feature-x route=matched",
}

// TestTransportDefaultBase: a nil base is http.DefaultTransport, over a
// real connection.
func TestTransportDefaultBase(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Tag"))
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: httpmw.Transport(nil)}
	t.Cleanup(client.CloseIdleConnections)
	req, err := http.NewRequestWithContext(tagctx.With(t.Context(), featureY), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "feature-y" {
		t.Errorf("server saw X-Tag %q, want feature-y", body)
	}
}
