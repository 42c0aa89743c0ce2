package httpmw_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/taglane/taglane/httpmw"
	"github.com/taglane/taglane/tagctx"
)

var (
	featureX = tagctx.MustParse("feature-x")
	featureY = tagctx.MustParse("feature-y")
)

// outcome is what one request through the middleware came to.
type outcome struct {
	Status int
	Tag    string // tagctx.From in the handler
	Marked bool   // the handler's context carries a decision
	Route  string
	Reason string // class of Observation.Rejected, see reason
}

// reason names the class of a rejection, the distinction an observer
// makes for metrics.
func reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, tagctx.ErrLimit):
		return "limit"
	case errors.Is(err, tagctx.ErrInvalidTag):
		return "invalid"
	case errors.Is(err, httpmw.ErrUntrusted):
		return "untrusted"
	}
	return "other: " + err.Error()
}

type served struct {
	outcome
	seen *http.Request // what the handler got; nil if it was not called
	body string
	obs  tagctx.Observation
	err  error // Observation.Rejected
}

// serve runs req through the middleware in process and checks that the
// observer saw the request exactly once.
func serve(t testing.TB, req *http.Request, opts ...httpmw.Option) served {
	t.Helper()
	var obs []tagctx.Observation
	opts = append(slices.Clone(opts), httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) {
		obs = append(obs, o)
	}))
	mw, err := httpmw.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var s served
	rec := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.seen = r
		var tag tagctx.Tag
		tag, s.Marked = tagctx.Lookup(r.Context())
		s.Tag = tag.String()
	})).ServeHTTP(rec, req)
	if len(obs) != 1 {
		t.Fatalf("observer called %d times, want 1", len(obs))
	}
	s.obs = obs[0]
	s.err = obs[0].Rejected
	s.Status = rec.Code
	s.Route = obs[0].Route.String()
	s.Reason = reason(obs[0].Rejected)
	s.body = rec.Body.String()
	return s
}

func newRequest(header http.Header, host string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://svc.test/orders", nil)
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if host != "" {
		req.Host = host
	}
	return req
}

func TestPrecedence(t *testing.T) {
	hostOpt := httpmw.WithHostPattern("app-{tag}.test.example.com")
	tagged := func(tag string) outcome {
		return outcome{Status: 200, Tag: tag, Marked: true, Route: "fallback"}
	}
	untagged := outcome{Status: 200, Route: "matched"}
	// A rejection is a decision: the context is marked, so Transport
	// writes the untagged mark and no later hop re-derives a tag.
	rejected := func(why string) outcome {
		return outcome{Status: 200, Marked: true, Route: "matched", Reason: why}
	}
	marked := outcome{Status: 200, Marked: true, Route: "matched"}
	tests := []struct {
		name   string
		opts   []httpmw.Option
		header http.Header
		host   string
		want   outcome
	}{
		{name: "nothing", want: untagged},
		{name: "X-Tag", header: http.Header{"X-Tag": {"feature-x"}}, want: tagged("feature-x")},
		{name: "X-Tag upper case is lowercased", header: http.Header{"X-Tag": {"Feature-X"}}, want: tagged("feature-x")},
		{name: "X-Tag repeated, same value", header: http.Header{"X-Tag": {"feature-x", "feature-x"}}, want: tagged("feature-x")},
		{name: "baggage", header: http.Header{"Baggage": {"userid=42, x-tag = feature-y;prop=1"}}, want: tagged("feature-y")},
		{name: "baggage on second line", header: http.Header{"Baggage": {"userid=42", "x-tag=feature-y"}}, want: tagged("feature-y")},
		{name: "baggage without the member", header: http.Header{"Baggage": {"userid=42,x-tag-owner=bob"}}, want: untagged},
		{name: "host", opts: []httpmw.Option{hostOpt}, host: "app-feature-z.test.example.com", want: tagged("feature-z")},
		{name: "host pattern off by default", host: "app-feature-z.test.example.com", want: untagged},
		{
			name:   "X-Tag beats baggage and host",
			opts:   []httpmw.Option{hostOpt},
			header: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-y"}},
			host:   "app-feature-z.test.example.com",
			want:   tagged("feature-x"),
		},
		{
			name:   "baggage beats host",
			opts:   []httpmw.Option{hostOpt},
			header: http.Header{"Baggage": {"x-tag=feature-y"}},
			host:   "app-feature-z.test.example.com",
			want:   tagged("feature-y"),
		},
		{
			name:   "bare tag header",
			opts:   []httpmw.Option{httpmw.WithHeaders("X-Tag", "tag")},
			header: http.Header{"Tag": {"feature-y"}, "Baggage": {"x-tag=feature-z"}},
			want:   tagged("feature-y"),
		},
		{
			name:   "header list order decides",
			opts:   []httpmw.Option{httpmw.WithHeaders("X-Tag", "tag")},
			header: http.Header{"Tag": {"feature-y"}, "X-Tag": {"feature-x"}},
			want:   tagged("feature-x"),
		},
		{
			name:   "headers replaced: X-Tag no longer read",
			opts:   []httpmw.Option{httpmw.WithHeaders("tag")},
			header: http.Header{"X-Tag": {"feature-x"}},
			want:   untagged,
		},
		{
			name:   "no headers: baggage only",
			opts:   []httpmw.Option{httpmw.WithHeaders()},
			header: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-y"}},
			want:   tagged("feature-y"),
		},
		{
			name:   "baggage key renamed",
			opts:   []httpmw.Option{httpmw.WithBaggageKey("lane")},
			header: http.Header{"Baggage": {"x-tag=feature-x,lane=feature-y"}},
			want:   tagged("feature-y"),
		},
		{
			name:   "invalid X-Tag does not fall back to baggage",
			header: http.Header{"X-Tag": {"feature_x"}, "Baggage": {"x-tag=feature-y"}},
			want:   rejected("invalid"),
		},
		{
			name:   "invalid baggage does not fall back to host",
			opts:   []httpmw.Option{hostOpt},
			header: http.Header{"Baggage": {"x-tag=-x"}},
			host:   "app-feature-z.test.example.com",
			want:   rejected("invalid"),
		},
		{name: "empty X-Tag is the untagged mark", header: http.Header{"X-Tag": {""}}, want: marked},
		{
			name:   "untagged mark beats baggage and host",
			opts:   []httpmw.Option{hostOpt},
			header: http.Header{"X-Tag": {""}, "Baggage": {"x-tag=feature-y"}},
			host:   "app-feature-z.test.example.com",
			want:   marked,
		},
		{
			name:   "untagged mark in the first listed header beats the second",
			opts:   []httpmw.Option{httpmw.WithHeaders("X-Tag", "tag")},
			header: http.Header{"X-Tag": {""}, "Tag": {"feature-y"}},
			want:   marked,
		},
		{
			name:   "untagged mark and a tag conflict",
			header: http.Header{"X-Tag": {"", "feature-x"}},
			want:   rejected("invalid"),
		},
		{
			name:   "baggage key trimmed as OpenTelemetry does",
			header: http.Header{"Baggage": {"x-tag\u00a0=feature-y"}},
			want:   tagged("feature-y"),
		},
		{
			name:   "X-Tag beside 8190 bytes of other baggage",
			header: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"k=" + strings.Repeat("v", 8188)}},
			want:   tagged("feature-x"),
		},
		{
			name:   "X-Tag beside 1 MiB of other baggage",
			header: http.Header{"X-Tag": {"feature-x"}, "Baggage": {"k=" + strings.Repeat("v", 1<<20)}},
			want:   tagged("feature-x"),
		},
		{
			name:   "65 baggage members: W3C allows them",
			header: http.Header{"Baggage": {strings.Repeat("k=v,", 64) + "x-tag=feature-y"}},
			want:   tagged("feature-y"),
		},
		{
			name:   "conflicting X-Tag values",
			header: http.Header{"X-Tag": {"feature-x", "feature-y"}},
			want:   rejected("invalid"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append(slices.Clone(tt.opts), httpmw.WithNode(tagctx.Tag{}))
			got := serve(t, newRequest(tt.header, tt.host), opts...)
			if diff := cmp.Diff(got.outcome, tt.want); diff != "" {
				t.Errorf("outcome (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHostPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		host    string
		want    string // accepted tag
		reason  string
	}{
		{name: "match", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com", want: "feature-x"},
		{name: "port ignored", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com:8443", want: "feature-x"},
		{name: "case ignored", pattern: "APP-{tag}.Test.Example.com", host: "App-Feature-X.TEST.example.COM", want: "feature-x"},
		{name: "root dot ignored", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com.:80", want: "feature-x"},
		{name: "root dot in the pattern", pattern: "app-{tag}.test.example.com.", host: "app-feature-x.test.example.com", want: "feature-x"},
		{name: "tag as first label", pattern: "{tag}.lanes.example.com", host: "feature-x.lanes.example.com", want: "feature-x"},
		{name: "suffix only", pattern: "{tag}-api", host: "feature-x-api", want: "feature-x"},
		{name: "other domain", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.org"},
		{name: "suffix appended", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com.evil.org"},
		{name: "stable host", pattern: "app-{tag}.test.example.com", host: "app.test.example.com"},
		{name: "empty tag part", pattern: "app-{tag}.test.example.com", host: "app-.test.example.com"},
		{name: "IPv6 literal", pattern: "{tag}.example.com", host: "[::1]:8080"},
		{name: "IPv4 literal", pattern: "app-{tag}.test.example.com", host: "127.0.0.1:8080"},
		{name: "two labels in the tag part", pattern: "app-{tag}.test.example.com", host: "app-a.b.test.example.com", reason: "invalid"},
		{name: "underscore", pattern: "app-{tag}.test.example.com", host: "app-feature_x.test.example.com", reason: "invalid"},
		{name: "tag ends with dash", pattern: "app-{tag}.test.example.com", host: "app-x-.test.example.com", reason: "invalid"},
		{name: "tag too long", pattern: "app-{tag}.test.example.com", host: "app-" + strings.Repeat("a", 64) + ".test.example.com", reason: "invalid"},
		{name: "empty port is the default port", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com:", want: "feature-x"},
		{name: "non-numeric port", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com:http", reason: "invalid"},
		{name: "port out of range", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com:65536", reason: "invalid"},
		{name: "port too long", pattern: "app-{tag}.test.example.com", host: "app-feature-x.test.example.com:000080", reason: "invalid"},
		{name: "host over the limit", pattern: "app-{tag}.test.example.com", host: "app-" + strings.Repeat("a", 300) + ".test.example.com", reason: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := serve(t, newRequest(nil, tt.host), httpmw.WithHostPattern(tt.pattern), httpmw.WithNode(tagctx.Tag{}))
			if diff := cmp.Diff([]string{got.Tag, got.Reason}, []string{tt.want, tt.reason}); diff != "" {
				t.Errorf("[tag reason] (-got +want):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	long := strings.Repeat("X", 300) + " "
	tests := []struct {
		name string
		opt  httpmw.Option
		want string
	}{
		{"pattern without tag", httpmw.WithHostPattern("app.example.com"), `httpmw: WithHostPattern("app.example.com"): must contain "{tag}" exactly once, not 0 times`},
		{"pattern with two tags", httpmw.WithHostPattern("{tag}.{tag}.example.com"), `httpmw: WithHostPattern("{tag}.{tag}.example.com"): must contain "{tag}" exactly once, not 2 times`},
		{"pattern is only the tag", httpmw.WithHostPattern("{tag}"), `httpmw: WithHostPattern("{tag}"): nothing around "{tag}"`},
		{"pattern with port", httpmw.WithHostPattern("app-{tag}.example.com:8080"), `httpmw: WithHostPattern("app-{tag}.example.com:8080"): character ':' is not allowed in a host name pattern`},
		{"pattern with wildcard", httpmw.WithHostPattern("*.{tag}.example.com"), `httpmw: WithHostPattern("*.{tag}.example.com"): character '*' is not allowed in a host name pattern`},
		{"pattern placeholder in upper case", httpmw.WithHostPattern("app-{TAG}.example.com"), `httpmw: WithHostPattern("app-{TAG}.example.com"): must contain "{tag}" exactly once, not 0 times`},
		{"header with space", httpmw.WithHeaders("X Tag"), `httpmw: WithHeaders("X Tag"): not a valid HTTP token`},
		{"empty header", httpmw.WithHeaders(""), `httpmw: WithHeaders(""): not a valid HTTP token`},
		{"baggage as header", httpmw.WithHeaders("baggage"), `httpmw: WithHeaders("baggage"): the W3C baggage header; use WithBaggageKey`},
		{"header twice", httpmw.WithHeaders("X-Tag", "x-tag"), `httpmw: WithHeaders("x-tag"): listed twice`},
		{"empty baggage key", httpmw.WithBaggageKey(""), `httpmw: WithBaggageKey(""): not a valid W3C baggage key`},
		{"baggage key with equals", httpmw.WithBaggageKey("a=b"), `httpmw: WithBaggageKey("a=b"): not a valid W3C baggage key`},
		{"zero trusted tag", httpmw.WithTrust(tagctx.TrustTags(tagctx.Tag{})), `httpmw: WithTrust: tagctx: TrustTags: tag 1 is the zero Tag`},
		{"long header quoted bounded", httpmw.WithHeaders(long), "httpmw: WithHeaders(" + tagctx.Quote(long) + "): not a valid HTTP token"},
		{"long pattern quoted bounded", httpmw.WithHostPattern(long), "httpmw: WithHostPattern(" + tagctx.Quote(long) + `): must contain "{tag}" exactly once, not 0 times`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := httpmw.New(tt.opt)
			if mw != nil || err == nil {
				t.Fatalf("New() = %v, %v; want nil and an error", mw != nil, err)
			}
			if diff := cmp.Diff(err.Error(), tt.want); diff != "" {
				t.Errorf("error (-got +want):\n%s", diff)
			}
		})
	}
	t.Run("Middleware panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("Middleware with an invalid option did not panic")
			}
		}()
		httpmw.Middleware(httpmw.WithHeaders("X Tag"))
	})
	t.Run("nil option ignored", func(t *testing.T) {
		if _, err := httpmw.New(nil, httpmw.WithRouteHeader(), nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTrust(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	nets := httpmw.WithTrust(tagctx.TrustNetworks(loopback))
	tests := []struct {
		name   string
		opts   []httpmw.Option
		header http.Header
		remote string
		want   outcome
	}{
		{
			name:   "accept by default",
			header: http.Header{"X-Tag": {"feature-x"}},
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "allow-list accepts a listed tag",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustTags(featureX))},
			header: http.Header{"X-Tag": {"feature-x"}},
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "allow-list refuses another tag",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustTags(featureX))},
			header: http.Header{"X-Tag": {"feature-y"}},
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "untrusted is not rejected with 400",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustTags(featureX)), httpmw.WithRejectInvalid()},
			header: http.Header{"X-Tag": {"feature-y"}},
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "trusted network",
			opts:   []httpmw.Option{nets},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "127.0.0.1:5000",
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "trusted network, IPv4-mapped peer",
			opts:   []httpmw.Option{nets},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "[::ffff:127.0.0.1]:5000",
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "untrusted network",
			opts:   []httpmw.Option{nets},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "192.0.2.1:5000",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "unparsable peer is untrusted",
			opts:   []httpmw.Option{nets},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "pipe",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "X-Forwarded-For not believed by default",
			opts:   []httpmw.Option{nets},
			header: http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"127.0.0.1"}},
			remote: "192.0.2.1:5000",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "X-Forwarded-For believed: last hop counts",
			opts:   []httpmw.Option{nets, httpmw.WithForwardedFor()},
			header: http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"203.0.113.9, 127.0.0.1"}},
			remote: "192.0.2.1:5000",
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "X-Forwarded-For believed: a spoofed first entry does not count",
			opts:   []httpmw.Option{nets, httpmw.WithForwardedFor()},
			header: http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"127.0.0.1, 203.0.113.9"}},
			remote: "127.0.0.1:5000",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "X-Forwarded-For believed: several lines, last line counts",
			opts:   []httpmw.Option{nets, httpmw.WithForwardedFor()},
			header: http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"203.0.113.9", "127.0.0.2"}},
			remote: "192.0.2.1:5000",
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "X-Forwarded-For believed: garbage is untrusted",
			opts:   []httpmw.Option{nets, httpmw.WithForwardedFor()},
			header: http.Header{"X-Tag": {"feature-x"}, "X-Forwarded-For": {"unknown"}},
			remote: "127.0.0.1:5000",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "X-Forwarded-For believed but absent: fails closed",
			opts:   []httpmw.Option{nets, httpmw.WithForwardedFor()},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "127.0.0.1:5000",
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "strip",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone())},
			header: http.Header{"X-Tag": {"feature-x"}},
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "strip, nothing sent: nothing reported, decision final",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone())},
			header: http.Header{"Baggage": {"userid=42"}},
			want:   outcome{Status: 200, Marked: true, Route: "matched"},
		},
		{
			name:   "strip, the untagged mark is no tag",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone())},
			header: http.Header{"X-Tag": {""}},
			want:   outcome{Status: 200, Marked: true, Route: "matched"},
		},
		{
			name:   "strip: NBSP-spelled member is stripped",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone())},
			header: http.Header{"Baggage": {"x-tag\u00a0=feature-x"}},
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "untrusted"},
		},
		{
			name:   "strip: baggage over the limits is stripped unread",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone())},
			header: http.Header{"Baggage": {strings.Repeat("k=v,", 1<<18)}},
			want:   outcome{Status: 200, Marked: true, Route: "matched", Reason: "limit"},
		},
		{
			name:   "allow-list: the untagged mark is no refusal",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustTags(featureX))},
			header: http.Header{"X-Tag": {""}},
			want:   outcome{Status: 200, Marked: true, Route: "matched"},
		},
		{
			name:   "v4-mapped prefix trusts an IPv4 peer",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNetworks(netip.MustParsePrefix("::ffff:127.0.0.0/104")))},
			header: http.Header{"X-Tag": {"feature-x"}},
			remote: "127.0.0.1:5000",
			want:   outcome{Status: 200, Tag: "feature-x", Marked: true, Route: "fallback"},
		},
		{
			name:   "strip ignores the host pattern",
			opts:   []httpmw.Option{httpmw.WithTrust(tagctx.TrustNone()), httpmw.WithHostPattern("{tag}.svc.test")},
			want:   outcome{Status: 200, Marked: true, Route: "matched"},
			header: http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(tt.header, "")
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			opts := append(slices.Clone(tt.opts), httpmw.WithNode(tagctx.Tag{}))
			got := serve(t, req, opts...)
			if diff := cmp.Diff(got.outcome, tt.want); diff != "" {
				t.Errorf("outcome (-got +want):\n%s", diff)
			}
		})
	}
}

// TestStripRemovesTags checks what a production edge must guarantee:
// nothing the handler sees, and so nothing it forwards, carries the tag,
// while the caller's own request stays as it was.
func TestStripRemovesTags(t *testing.T) {
	header := http.Header{
		"X-Tag":   {"feature-x"},
		"Tag":     {"feature-y"},
		"Baggage": {"userid=42,x-tag=feature-x", "x-tag=feature-x"},
		"Accept":  {"text/plain"},
	}
	req := newRequest(header, "")
	got := serve(t, req, httpmw.WithTrust(tagctx.TrustNone()), httpmw.WithHeaders("X-Tag", "tag"))
	want := http.Header{"Baggage": {"userid=42"}, "Accept": {"text/plain"}}
	if diff := cmp.Diff(got.seen.Header, want); diff != "" {
		t.Errorf("handler's header (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(req.Header, header); diff != "" {
		t.Errorf("caller's header changed (-got +want):\n%s", diff)
	}
	if !got.Marked || got.Tag != "" {
		t.Errorf("handler context: tag %q marked %v; want marked untagged", got.Tag, got.Marked)
	}
}

func TestInvalid(t *testing.T) {
	oneMiB := strings.Repeat("a", 1<<20)
	manyMembers := strings.Repeat("k=v,", 10_000) + "x-tag=feature-x"
	tests := []struct {
		name     string
		header   http.Header
		reason   string
		wantBody string // start of the 400 body under WithRejectInvalid
	}{
		{
			name:     "bad character",
			header:   http.Header{"X-Tag": {"feature_x"}},
			reason:   "invalid",
			wantBody: `httpmw: header "X-Tag": tagctx: invalid tag "feature_x": character '_' at byte 7 is not in [a-z0-9-]`,
		},
		{
			name:     "too long",
			header:   http.Header{"X-Tag": {strings.Repeat("a", 64)}},
			reason:   "invalid",
			wantBody: `httpmw: header "X-Tag": tagctx: invalid tag "` + strings.Repeat("a", 64) + `": longer than 63 bytes (64)`,
		},
		{
			name:     "unicode look-alike",
			header:   http.Header{"X-Tag": {"feature-х"}}, // Cyrillic х
			reason:   "invalid",
			wantBody: `httpmw: header "X-Tag": tagctx: invalid tag "feature-х"`,
		},
		{
			name:     "bad baggage member",
			header:   http.Header{"Baggage": {"x-tag=feature%zz"}},
			reason:   "invalid",
			wantBody: `httpmw: baggage: tagctx: baggage member "x-tag"`,
		},
		{
			name:     "1 MiB tag header",
			header:   http.Header{"X-Tag": {oneMiB}},
			reason:   "limit",
			wantBody: `httpmw: header "X-Tag": tagctx: tag-bearing headers over limit: tag header 1048576 bytes, limit 8192`,
		},
		{
			name:     "10,000 baggage members",
			header:   http.Header{"Baggage": {manyMembers}},
			reason:   "limit",
			wantBody: `httpmw: baggage: tagctx: tag-bearing headers over limit: baggage 40015 bytes, limit 8192`,
		},
		{
			name:     "181 baggage members within the byte limit",
			header:   http.Header{"Baggage": {strings.Repeat("k=v,", 180) + "x-tag=feature-x"}},
			reason:   "limit",
			wantBody: `httpmw: baggage: tagctx: tag-bearing headers over limit: 181 baggage members, limit 180`,
		},
		{
			name:     "10,000 header lines",
			header:   http.Header{"X-Tag": slices.Repeat([]string{"feature-x"}, 10_000)},
			reason:   "limit",
			wantBody: `httpmw: header "X-Tag": tagctx: tag-bearing headers over limit: tag header 90000 bytes, limit 8192`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Served as untagged and reported, on a lane node so the
			// untagged mark is visible.
			got := serve(t, newRequest(tt.header, ""), httpmw.WithNode(featureX))
			want := outcome{Status: 200, Marked: true, Route: "misroute", Reason: tt.reason}
			if diff := cmp.Diff(got.outcome, want); diff != "" {
				t.Errorf("default mode (-got +want):\n%s", diff)
			}

			got = serve(t, newRequest(tt.header, ""), httpmw.WithNode(tagctx.Tag{}), httpmw.WithRejectInvalid())
			if got.seen != nil {
				t.Error("reject mode: handler called")
			}
			if got.Status != http.StatusBadRequest || !strings.HasPrefix(got.body, tt.wantBody) || strings.Count(got.body, "\n") != 1 {
				t.Errorf("reject mode: %d %q; want 400 and one line starting %q", got.Status, got.body, tt.wantBody)
			}
			if got.Reason != tt.reason {
				t.Errorf("reject mode: reported %q, want %q", got.Reason, tt.reason)
			}
			if got.Route != "unknown" {
				t.Errorf("reject mode: route %q, want unknown: no lane served the request", got.Route)
			}
		})
	}
}

// TestStableNodeLeavesRequestAlone: on a stable node, untagged traffic is
// already stable, so the handler gets the very same request.
func TestStableNodeLeavesRequestAlone(t *testing.T) {
	req := newRequest(http.Header{"Baggage": {"userid=42"}}, "")
	got := serve(t, req)
	if got.seen != req {
		t.Error("handler got a copy of the request; want the caller's request")
	}
	if got.Route != "matched" || got.Reason != "" {
		t.Errorf("route %q reason %q, want matched and none", got.Route, got.Reason)
	}
}

// TestLaneNodeMarksUntagged: a lane instance must keep stable traffic
// stable, or its outgoing calls would carry the node tag into the lane.
func TestLaneNodeMarksUntagged(t *testing.T) {
	tagctx.SetNode(featureX)
	t.Cleanup(func() { tagctx.SetNode(tagctx.Tag{}) })

	var out http.Header
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		out = r.Header
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	client := &http.Client{Transport: httpmw.Transport(base)}
	var s served
	mw := httpmw.Middleware(httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { s.obs = o }))
	rec := httptest.NewRecorder()
	req := newRequest(http.Header{"Baggage": {"x-tag=feature-x,userid=42"}, "X-Tag": {"Feature_X"}}, "")
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tag tagctx.Tag
		tag, s.Marked = tagctx.Lookup(r.Context())
		s.Tag = tag.String()
		out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://next.test/", nil)
		if err != nil {
			t.Fatal(err)
		}
		out.Header = r.Header.Clone() // a proxy copying inbound headers
		resp, err := client.Do(out)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})).ServeHTTP(rec, req)

	if !s.Marked || s.Tag != "" {
		t.Errorf("handler context: tag %q marked %v; want marked untagged", s.Tag, s.Marked)
	}
	if got, want := s.obs.Route, tagctx.RouteMisroute; got != want {
		t.Errorf("route %v, want %v (stable traffic on a lane node)", got, want)
	}
	// The untagged mark: the next hop must not re-derive a tag.
	if diff := cmp.Diff(out, http.Header{"Baggage": {"userid=42"}, "X-Tag": {""}}); diff != "" {
		t.Errorf("forwarded header (-got +want):\n%s", diff)
	}
}

func TestRouteProof(t *testing.T) {
	tests := []struct {
		name    string
		traffic string
		node    tagctx.Tag
		route   string
		header  string
	}{
		{"stable on stable", "", tagctx.Tag{}, "matched", "traffic= node= route=matched"},
		{"lane on its instance", "feature-x", featureX, "matched", "traffic=feature-x node=feature-x route=matched"},
		{"lane falls back to stable", "feature-x", tagctx.Tag{}, "fallback", "traffic=feature-x node= route=fallback"},
		{"lane on another lane", "feature-x", featureY, "misroute", "traffic=feature-x node=feature-y route=misroute"},
		{"stable on a lane", "", featureY, "misroute", "traffic= node=feature-y route=misroute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

			var obs []tagctx.Observation
			mw := httpmw.Middleware(
				httpmw.WithNode(tt.node),
				httpmw.WithRouteHeader(),
				httpmw.WithObserver(func(_ context.Context, o tagctx.Observation) { obs = append(obs, o) }),
			)
			inner := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			// The span an outer instrumentation (otelhttp) would start.
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, span := tp.Tracer("test").Start(r.Context(), "GET /orders")
				defer span.End()
				inner.ServeHTTP(w, r.WithContext(ctx))
			})
			header := http.Header{}
			if tt.traffic != "" {
				header.Set("X-Tag", tt.traffic)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest(header, ""))

			spans := sr.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans ended, want 1", len(spans))
			}
			wantAttrs := []attribute.KeyValue{
				tagctx.AttrTrafficTag.String(tt.traffic),
				tagctx.AttrNodeTag.String(tt.node.String()),
				tagctx.AttrRoute.String(tt.route),
			}
			if diff := cmp.Diff(spans[0].Attributes(), wantAttrs, cmp.Comparer(func(a, b attribute.KeyValue) bool { return a == b })); diff != "" {
				t.Errorf("span attributes (-got +want):\n%s", diff)
			}
			if len(obs) != 1 {
				t.Fatalf("observer called %d times, want 1", len(obs))
			}
			gotObs := []string{obs[0].Transport, obs[0].Operation, obs[0].Traffic.String(), obs[0].Node.String(), obs[0].Route.String()}
			if diff := cmp.Diff(gotObs, []string{"http", "/orders", tt.traffic, tt.node.String(), tt.route}); diff != "" {
				t.Errorf("observation (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(rec.Header().Get(httpmw.RouteHeader), tt.header); diff != "" {
				t.Errorf("%s (-got +want):\n%s", httpmw.RouteHeader, diff)
			}
		})
	}
}

func TestRouteHeaderOffByDefault(t *testing.T) {
	rec := httptest.NewRecorder()
	httpmw.Handler(http.NotFoundHandler()).ServeHTTP(rec, newRequest(http.Header{"X-Tag": {"feature-x"}}, ""))
	if v, ok := rec.Header()[httpmw.RouteHeader]; ok {
		t.Errorf("%s: %q sent without WithRouteHeader", httpmw.RouteHeader, v)
	}
}

// TestRejectedSpanEvent: without an observer, the span is where a refused
// tag is reported.
func TestRejectedSpanEvent(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	inner := httpmw.Handler(http.NotFoundHandler(), httpmw.WithNode(tagctx.Tag{}))
	for _, v := range []string{"feature-x", "feature_x"} {
		req := newRequest(http.Header{"X-Tag": {v}}, "")
		ctx, span := tp.Tracer("test").Start(req.Context(), v)
		inner.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
		span.End()
	}
	var got [][]string
	for _, s := range sr.Ended() {
		for _, e := range s.Events() {
			ev := []string{s.Name(), e.Name}
			for _, kv := range e.Attributes {
				ev = append(ev, string(kv.Key), kv.Value.String())
			}
			got = append(got, ev)
		}
	}
	want := [][]string{{
		"feature_x", httpmw.EventRejected, string(httpmw.AttrReason),
		`httpmw: header "X-Tag": tagctx: invalid tag "feature_x": character '_' at byte 7 is not in [a-z0-9-]`,
	}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("span events (-got +want):\n%s", diff)
	}
}
