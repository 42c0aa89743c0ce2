package mq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/hooks"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// TestPrefilterOffsets: a lane consumer and a stable consumer on one topic,
// each queue ending in a batch the one consumer skips entirely (blue for
// stable, untagged for the lane). Every message reaches exactly its
// consumer, each skip is counted once, and both groups' committed offsets
// reach every queue's max offset: the skips were acked although most of
// them never reached the consume path. With a user's own filter hook
// (which replaces the prefilter) the user's hook runs and the outcome is
// the same, every skip then going through the consume path.
func TestPrefilterOffsets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		userHook bool
	}{
		{name: "prefilter"},
		{name: "user hook replaces it", userHook: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := rocketmqtest.RunT(t)
			const topic = "prefilter"
			if err := s.CreateTopic(topic, 2); err != nil {
				t.Fatal(err)
			}
			// What reaches each consumer's consume path (the interceptor
			// runs there, per handler call), and the user's hook calls.
			var reached [2]atomic.Int64
			var hookCalls atomic.Int64
			opts := func(i int) mq.Option {
				copts := []consumer.Option{consumer.WithInterceptor(
					func(ctx context.Context, req, reply any, next primitive.Invoker) error {
						reached[i].Add(int64(len(req.([]*primitive.MessageExt))))
						return next(ctx, req, reply)
					})}
				if tt.userHook {
					copts = append(copts, consumer.WithFilterMessageHook([]hooks.FilterMessageHook{
						func(fc *hooks.FilterMessageContext) ([]*primitive.MessageExt, error) {
							hookCalls.Add(1)
							return fc.Msg, nil
						}}))
				}
				return mq.WithConsumerOptions(copts...)
			}
			rec := new(rocketmqtest.Recorder)
			stable := startConsumer(t, s, "svc", topic, "", nil, rec, opts(0))
			lane := startConsumer(t, s, "svc", topic, "blue", nil, rec, opts(1))
			waitOnline(t, stable, "blue")

			// One batch per tag: a batch goes to one queue, and the
			// producer's round robin puts the next one on the other.
			p := newProducer(t, s)
			const n = 40
			blue, plain := bodies("blue", n), bodies("plain", n)
			for _, b := range []struct {
				tag    string
				bodies []string
			}{{"blue", blue}, {"", plain}} {
				ctx := tagctx.WithUntagged(context.Background())
				if b.tag != "" {
					ctx = tagctx.With(context.Background(), tagctx.MustParse(b.tag))
				}
				var msgs []*primitive.Message
				for _, body := range b.bodies {
					msgs = append(msgs, primitive.NewMessage(topic, []byte(body)))
				}
				if _, err := p.SendSync(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
			}
			rec.WaitBodies(t, 20*time.Second, append(blue, plain...)...)
			for body, got := range rec.ByBody() {
				want := "stable"
				if body[:4] == "blue" {
					want = "blue"
				}
				if len(got) != 1 || got[0] != want {
					t.Errorf("message %q handled by %q, want only %q", body, got, want)
				}
			}
			waitFor(t, 10*time.Second, func() string {
				st, ln := stable.Stats(), lane.Stats()
				if st.Handled != n || st.Skipped != n || ln.Handled != n || ln.Skipped != n {
					return fmt.Sprintf("stable %+v, lane %+v: want %d handled and %d skipped each", st, ln, n, n)
				}
				return ""
			})
			waitCommitted(t, s, stable.Group(), topic)
			waitCommitted(t, s, lane.Group(), topic)
			for i, name := range []string{"stable", "lane"} {
				got := reached[i].Load()
				t.Logf("%s: %d of %d messages reached the consume path", name, got, 2*n)
				switch {
				case tt.userHook && got != 2*n:
					t.Errorf("%s: %d messages reached the consume path, want all %d (no prefilter)", name, got, 2*n)
				case !tt.userHook && got >= 2*n:
					t.Errorf("%s: all %d messages reached the consume path: the prefilter dropped none", name, got)
				}
			}
			if tt.userHook && hookCalls.Load() == 0 {
				t.Error("the user's filter hook never ran")
			}
		})
	}
}
