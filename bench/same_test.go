package bench

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/bytedance/gopkg/cloud/metainfo"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/taglane/taglane/tagctx"
)

// TestSameJob checks that the two sides of every in-process benchmark do
// the same job on their input: a benchmark of a side that found nothing
// would measure a shortcut.
func TestSameJob(t *testing.T) {
	t.Run("lookup", func(t *testing.T) {
		got := tagctx.From(layer(tagctx.With(context.Background(), tagctx.MustParse("feature-x"))))
		v, ok := metainfo.GetPersistentValue(layer(metainfo.WithPersistentValue(context.Background(), metainfoKey, "feature-x")), metainfoKey)
		if got.String() != "feature-x" || !ok || v != "feature-x" {
			t.Errorf("taglane found %q, metainfo %q (%v); want feature-x from both", got, v, ok)
		}
	})
	t.Run("round-trip", func(t *testing.T) {
		p := tagctx.Propagator{}
		out := http.Header{}
		p.Inject(p.Extract(context.Background(), propagation.HeaderCarrier(taglaneInbound())), propagation.HeaderCarrier(out))
		want := http.Header{"X-Tag": {"feature-x"}, "Baggage": {"x-tag=feature-x"}}
		if diff := cmp.Diff(out, want); diff != "" {
			t.Errorf("taglane round trip (-got +want):\n%s", diff)
		}
		mout := http.Header{}
		metainfo.ToHTTPHeader(metainfo.FromHTTPHeader(context.Background(), metainfo.HTTPHeader(metainfoInbound())), metainfo.HTTPHeader(mout))
		mwant := http.Header{"rpc-persist-x-tag": {"feature-x"}}
		if diff := cmp.Diff(mout, mwant); diff != "" {
			t.Errorf("metainfo round trip (-got +want):\n%s", diff)
		}
	})
	t.Run("extract", func(t *testing.T) {
		got := tagctx.From(tagctx.Propagator{}.Extract(context.Background(), propagation.HeaderCarrier(taglaneInbound())))
		v := baggage.FromContext(propagation.Baggage{}.Extract(context.Background(), propagation.HeaderCarrier(otelInbound()))).Member("x-tag").Value()
		if got.String() != "feature-x" || v != "feature-x" {
			t.Errorf("taglane extracted %q, otel %q; want feature-x from both", got, v)
		}
	})
	t.Run("inject", func(t *testing.T) {
		h := http.Header{}
		tagctx.Propagator{}.Inject(taglaneTagged(context.Background()), propagation.HeaderCarrier(h))
		o := http.Header{}
		propagation.Baggage{}.Inject(otelTagged(t), propagation.HeaderCarrier(o))
		if h.Get("Baggage") != "x-tag=feature-x" || o.Get("Baggage") != "x-tag=feature-x" {
			t.Errorf("taglane wrote %v, otel %v; want baggage x-tag=feature-x from both", h, o)
		}
	})
	t.Run("inject-members", func(t *testing.T) {
		h := http.Header{}
		taglaneComposite.Inject(taglaneTagged(otelBaggage(t, otherMembers[:2]...)), propagation.HeaderCarrier(h))
		o := http.Header{}
		propagation.Baggage{}.Inject(otelBaggage(t, otherMembers...), propagation.HeaderCarrier(o))
		// The next hop's OpenTelemetry reads the same three members from both.
		// (in map order: sorted to compare)
		read := func(h http.Header) []string {
			var ms []string
			for _, m := range baggage.FromContext(propagation.Baggage{}.Extract(context.Background(), propagation.HeaderCarrier(h))).Members() {
				ms = append(ms, m.String())
			}
			slices.Sort(ms)
			return ms
		}
		want := slices.Sorted(slices.Values(otherMembers))
		if diff := cmp.Diff(read(h), want); diff != "" {
			t.Errorf("next hop reads from taglane's %v (-got +want):\n%s", h, diff)
		}
		if diff := cmp.Diff(read(o), want); diff != "" {
			t.Errorf("next hop reads from otel's %v (-got +want):\n%s", o, diff)
		}
		if h.Get("X-Tag") != "feature-x" {
			t.Errorf("taglane wrote %v, want X-Tag feature-x too", h)
		}
	})
}
