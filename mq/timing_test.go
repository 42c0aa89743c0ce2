package mq_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// stamps records when each handler saw each message.
type stamps struct {
	mu  sync.Mutex
	got []stamp
}

type stamp struct {
	at         time.Time
	who, body  string
	handedOver bool
}

func (s *stamps) handler(who string, rec *rocketmqtest.Recorder) mq.Handler {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		s.mu.Lock()
		for _, m := range msgs {
			s.got = append(s.got, stamp{now, who, string(m.Body), mq.HandedOver(ctx)})
		}
		s.mu.Unlock()
		rec.Record(ctx, who, msgs...)
		return consumer.ConsumeSuccess, nil
	}
}

func (s *stamps) all() []stamp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stamp(nil), s.got...)
}

// defaultConsumer starts a consumer with the package defaults (only the
// name server and a unique instance set), as a user would.
func defaultConsumer(t *testing.T, s *rocketmqtest.Server, topic, tag string, h mq.Handler) (*mq.Consumer, time.Duration) {
	t.Helper()
	var nodeTag tagctx.Tag
	if tag != "" {
		nodeTag = tagctx.MustParse(tag)
	}
	c, err := mq.NewConsumer("svc", mq.WithNameServer(s.NameServer()), mq.WithNode(nodeTag),
		mq.WithInstanceName(instance("timing-"+tag)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, h); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Cleanup(func() { c.Shutdown() })
	return c, took
}

// TestLaneTimings measures, with the default options, how long a lane takes
// to be seen by stable and how long a stopped or crashed lane's backlog
// takes to be handed over, with the duplicates beside each. It logs; it
// asserts only that nothing is lost. Run it with -v to read the numbers.
func TestLaneTimings(t *testing.T) {
	if testing.Short() {
		t.Skip("measures seconds of default timings")
	}
	for _, stop := range []string{"graceful", "crash"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			skipIfClientRaces(t)
			s := rocketmqtest.RunT(t)
			topic := "timing-" + stop
			if err := s.CreateTopic(topic, 4); err != nil {
				t.Fatal(err)
			}
			rec := new(rocketmqtest.Recorder)
			var st stamps
			stable, _ := defaultConsumer(t, s, topic, "", st.handler("stable", rec))
			p := newProducer(t, s)
			stream := startStream(t, p, topic, "timing", time.Millisecond, "blue", "")
			stream.waitSent(t, 200)

			// Visibility: from Start's return, how long stable still
			// handles blue messages it reads from the queues.
			g := newGate(t)
			startCall := time.Now()
			lane, took := defaultConsumer(t, s, topic, "blue", g.wrap(st.handler("blue", rec)))
			started := startCall.Add(took)
			stream.waitSent(t, 500)
			lastStable := time.Time{}
			for _, x := range st.all() {
				if x.who == "stable" && strings.Contains(x.body, "-blue-") && x.at.After(lastStable) {
					lastStable = x.at
				}
			}
			visDup := rec.Duplicates(stream.snapshot("blue")...)
			t.Logf("lane Start returned after %v; stable handled its last blue message %v after Start was called, %v after it returned; blue duplicates so far %d",
				took.Round(time.Millisecond), lastStable.Sub(startCall).Round(time.Millisecond), lastStable.Sub(started).Round(time.Millisecond), visDup)
			if len(stable.Online()) != 1 {
				t.Errorf("stable sees %v online, want blue", stable.Online())
			}

			// Stop or crash, with the stream going on.
			stopped := time.Now()
			if stop == "crash" {
				crash(t, s, lane, g)
			} else {
				lane.Shutdown()
			}
			before := rec.Duplicates(stream.snapshot("blue")...)
			waitFor(t, 30*time.Second, func() string {
				if stable.Stats().Takeovers == 0 {
					return "no takeover completed"
				}
				return ""
			})
			stream.waitSent(t, 200)
			blue := stream.bodies("blue")
			all := append(append([]string{}, blue...), stream.bodies("")...)
			if lost := waitLost(t, rec, 20*time.Second, all); len(lost) > 0 {
				t.Errorf("%d messages lost, first %q", len(lost), lost[0])
			}
			var first, last time.Time
			n := 0
			for _, x := range st.all() {
				if !x.handedOver {
					continue
				}
				n++
				if first.IsZero() || x.at.Before(first) {
					first = x.at
				}
				if x.at.After(last) {
					last = x.at
				}
			}
			if n == 0 {
				t.Logf("%s: nothing to hand over", stop)
				return
			}
			t.Logf("%s → first handed-over message %v, last %v (%d handed over); duplicates after the stop %d",
				stop, first.Sub(stopped).Round(time.Millisecond), last.Sub(stopped).Round(time.Millisecond), n,
				rec.Duplicates(blue...)-before)
		})
	}
}

// snapshot returns what the stream sent with tag so far, without stopping it.
func (st *stream) snapshot(tag string) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.sent[tag]...)
}
