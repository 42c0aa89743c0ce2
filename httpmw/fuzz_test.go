package httpmw_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

// checkTag fails unless tag obeys the tag rules: 1–63 bytes of [a-z0-9-],
// a letter or digit at both ends (or the zero Tag).
func checkTag(t *testing.T, tag tagctx.Tag) {
	t.Helper()
	s := tag.String()
	if s == "" {
		return
	}
	if len(s) > tagctx.MaxLen || s[0] == '-' || s[len(s)-1] == '-' {
		t.Fatalf("accepted tag %q breaks the tag rules", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			t.Fatalf("accepted tag %q has %q", s, c)
		}
	}
}

// probe serves one in-process request and returns the tag the handler
// saw, whether it ran, the status and the observation.
func probe(t *testing.T, mw func(http.Handler) http.Handler, obs *[]tagctx.Observation, req *http.Request) (tag tagctx.Tag, ran bool, status int) {
	t.Helper()
	*obs = (*obs)[:0]
	w := &statusWriter{h: http.Header{}, status: http.StatusOK}
	mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		tag, ran = tagctx.From(r.Context()), true
	})).ServeHTTP(w, req)
	if len(*obs) != 1 {
		t.Fatalf("observer called %d times, want 1", len(*obs))
	}
	return tag, ran, w.status
}

type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(code int)        { w.status = code }

func FuzzHostPattern(f *testing.F) {
	for _, seed := range [][2]string{
		{"app-{tag}.test.example.com", "app-feature-x.test.example.com"},
		{"app-{tag}.test.example.com", "APP-Feature-X.test.example.com:8080"},
		{"app-{tag}.test.example.com", "app-.test.example.com"},
		{"app-{tag}.test.example.com", "app-a.b.test.example.com."},
		{"{tag}.example.com", "[::1]:80"},
		{"{tag}", "localhost"},
		{"{tag}{tag}", "x"},
		{"a{tag}a", "aaa"},
		{"a{tag}a", "a:a"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		var obs []tagctx.Observation
		mw, err := httpmw.New(
			httpmw.WithHostPattern(pattern),
			httpmw.WithNode(tagctx.Tag{}),
			httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { obs = append(obs, o) }),
		)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "httpmw: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Host: host, Header: http.Header{}}
		tag, ran, status := probe(t, mw, &obs, req)
		if !ran || status != http.StatusOK {
			t.Fatalf("handler ran %v, status %d; want served", ran, status)
		}
		checkTag(t, tag)
		if tag.IsZero() {
			return
		}
		if obs[0].Rejected != nil {
			t.Fatalf("tag %q accepted and rejected (%v)", tag, obs[0].Rejected)
		}
		// The host, lowercased, must spell the pattern with the tag filled
		// in, up to an optional port or root dot.
		want := strings.Replace(strings.TrimSuffix(strings.ToLower(pattern), "."), "{tag}", tag.String(), 1)
		if !strings.HasPrefix(strings.ToLower(host), want) {
			t.Fatalf("host %q gave tag %q, but does not spell %q", host, tag, want)
		}
	})
}

func FuzzMiddlewareHeaders(f *testing.F) {
	f.Add("feature-x", "", "", "", false)
	f.Add("", "Feature-Y", "", "", true)
	f.Add("", "", "userid=42, x-tag = feature-z;p=1", "", false)
	f.Add("", "", "x-tag=%66eature", "", true)
	f.Add("", "", "x-tag=a,x-tag=b", "", false)
	f.Add("", "", "", "app-lane-1.test.example.com:80", false)
	f.Add("bad_tag", "feature-y", "x-tag=feature-z", "app-lane-1.test.example.com", true)
	f.Add(strings.Repeat("a", 9000), "", "", "", true)
	f.Add("", "", strings.Repeat("k=v,", 70), "", false)
	f.Add("", "", "", "app-"+strings.Repeat("e", 9000)+".test.example.com", true)
	f.Add("", "", "", "app-evil.test.example.com:http", true)
	f.Add("", "", "x-tag\u00a0=evil", "", false)
	f.Fuzz(func(t *testing.T, xtag, bareTag, baggage, host string, reject bool) {
		var obs []tagctx.Observation
		opts := []httpmw.Option{
			httpmw.WithHeaders("X-Tag", "tag"),
			httpmw.WithHostPattern("app-{tag}.test.example.com"),
			httpmw.WithNode(tagctx.Tag{}),
			httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { obs = append(obs, o) }),
		}
		if reject {
			opts = append(opts, httpmw.WithRejectInvalid())
		}
		mw := httpmw.Middleware(opts...)
		header := http.Header{}
		for k, v := range map[string]string{"X-Tag": xtag, "Tag": bareTag, "Baggage": baggage} {
			if v != "" {
				header[k] = strings.Split(v, "\n") // several header lines too
			}
		}
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Host: host, Header: header}
		tag, ran, status := probe(t, mw, &obs, req)
		checkTag(t, tag)
		rejected := obs[0].Rejected
		// Rejections quote a bounded prefix of the input, whatever its size.
		if rejected != nil && len(rejected.Error()) > 512 {
			t.Fatalf("rejection of %d bytes: %.200q", len(rejected.Error()), rejected.Error())
		}
		switch {
		case status == http.StatusBadRequest:
			if !reject || rejected == nil || ran {
				t.Fatalf("400 with reject=%v rejected=%v ran=%v", reject, rejected, ran)
			}
		case status != http.StatusOK || !ran:
			t.Fatalf("status %d, ran %v", status, ran)
		case reject && rejected != nil:
			t.Fatalf("reject mode served a request whose tag was rejected: %v", rejected)
		case !tag.IsZero() && rejected != nil:
			t.Fatalf("tag %q accepted and rejected (%v)", tag, rejected)
		}
		if tag != obs[0].Traffic {
			t.Fatalf("handler saw %q, observer %q", tag, obs[0].Traffic)
		}
		if !tag.IsZero() {
			all := strings.ToLower(xtag + bareTag + baggage + host)
			if !strings.Contains(all, tag.String()) && !strings.Contains(baggage, "%") {
				t.Fatalf("tag %q appears in no source", tag)
			}
		}
	})
}
