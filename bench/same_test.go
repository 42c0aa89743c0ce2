package bench

import (
	"context"
	"net/http"
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
		tagctx.Propagator{}.Inject(tagctx.With(context.Background(), tagctx.MustParse("feature-x")), propagation.HeaderCarrier(h))
		o := http.Header{}
		propagation.Baggage{}.Inject(otelTagged(t), propagation.HeaderCarrier(o))
		if h.Get("Baggage") != "x-tag=feature-x" || o.Get("Baggage") != "x-tag=feature-x" {
			t.Errorf("taglane wrote %v, otel %v; want baggage x-tag=feature-x from both", h, o)
		}
	})
}
