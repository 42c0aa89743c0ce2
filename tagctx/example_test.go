package tagctx_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"

	"go.opentelemetry.io/otel/propagation"

	"github.com/taglane/taglane/tagctx"
)

func ExampleParse() {
	tag, err := tagctx.Parse("Feature-X")
	fmt.Println(tag, err)
	_, err = tagctx.Parse("feature_x")
	fmt.Println(err)
	// Output:
	// feature-x <nil>
	// tagctx: invalid tag "feature_x": character '_' at byte 7 is not in [a-z0-9-]
}

func ExampleWith() {
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	fmt.Println(tagctx.From(ctx))
	// Output: feature-x
}

func ExampleEffective() {
	tagctx.SetNode(tagctx.MustParse("feature-x")) // normally from TAGLANE_TAG
	defer tagctx.SetNode(tagctx.Tag{})

	cron := context.Background() // work that starts inside the lane's process
	fmt.Printf("cron job: %q\n", tagctx.Effective(cron))
	stable := tagctx.WithUntagged(context.Background()) // a stable request that reached this node
	fmt.Printf("stable request: %q\n", tagctx.Effective(stable))
	// Output:
	// cron job: "feature-x"
	// stable request: ""
}

func ExampleGo() {
	ctx, cancel := context.WithCancel(tagctx.With(context.Background(), tagctx.MustParse("feature-x")))
	done := make(chan struct{})
	tagctx.Go(ctx, func(ctx context.Context) {
		defer close(done)
		fmt.Println(tagctx.From(ctx), ctx.Err())
	})
	cancel() // the request ends; the goroutine keeps its lane
	<-done
	// Output: feature-x <nil>
}

func ExampleWrap() {
	jobs := make(chan func(), 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for job := range jobs { // a pool goroutine, reused across lanes
			job()
		}
	})
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-y"))
	jobs <- tagctx.Wrap(ctx, func(ctx context.Context) {
		fmt.Println("job runs in", tagctx.From(ctx))
	})
	close(jobs)
	wg.Wait()
	// Output: job runs in feature-y
}

func ExampleCapture() {
	type task struct {
		lane tagctx.Snapshot // crosses an API that drops contexts
		name string
	}
	ctx := tagctx.With(context.Background(), tagctx.MustParse("feature-x"))
	t := task{lane: tagctx.Capture(ctx), name: "resize"}

	// Elsewhere, later:
	run := t.lane.Apply(context.Background())
	fmt.Println(t.name, tagctx.From(run))
	// Output: resize feature-x
}

func ExampleDetach() {
	ctx, cancel := context.WithCancel(tagctx.With(context.Background(), tagctx.MustParse("feature-x")))
	cancel()
	d := tagctx.Detach(ctx)
	fmt.Println(tagctx.From(d), d.Err())
	// Output: feature-x <nil>
}

func ExamplePropagator() {
	prop := propagation.NewCompositeTextMapPropagator(propagation.Baggage{}, tagctx.Propagator{})

	out := http.Header{}
	prop.Inject(tagctx.With(context.Background(), tagctx.MustParse("feature-x")), propagation.HeaderCarrier(out))
	fmt.Println(out.Get("X-Tag"), out.Get("Baggage"))

	in := prop.Extract(context.Background(), propagation.HeaderCarrier(out))
	fmt.Println(tagctx.From(in))
	// Output:
	// feature-x x-tag=feature-x
	// feature-x
}

func ExampleExtract() {
	tag, found, err := tagctx.Extract(nil, []string{"user=42,x-tag=feature-x"}, tagctx.DefaultBaggageKey)
	fmt.Println(tag, found, err)
	// Output: feature-x true <nil>
}

func ExampleMergeBaggage() {
	fmt.Println(tagctx.MergeBaggage("user=42,x-tag=old", tagctx.DefaultBaggageKey, tagctx.MustParse("feature-x")))
	// Output: user=42,x-tag=feature-x
}

func ExampleNewLogHandler() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(tagctx.NewLogHandler(h))
	log.InfoContext(tagctx.With(context.Background(), tagctx.MustParse("feature-x")), "order placed")
	// Output: level=INFO msg="order placed" taglane.tag=feature-x
}

func ExampleDecide() {
	x := tagctx.MustParse("feature-x")
	fmt.Println(tagctx.Decide(x, x), tagctx.Decide(x, tagctx.Tag{}), tagctx.Decide(tagctx.Tag{}, x))
	// Output: matched fallback misroute
}

func ExampleTrustNone() {
	edge := tagctx.TrustNone() // a production edge: outside callers cannot pick a lane
	fmt.Println(edge.Check(tagctx.MustParse("feature-x"), netipUnknown))
	// Output: tagctx: tag "feature-x" not trusted: this entry point strips inbound tags
}

var netipUnknown netip.Addr
