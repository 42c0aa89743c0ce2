package mq_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// leaderOf waits until exactly one of st says it is the takeover leader
// and returns its index.
func leaderOf(t testing.TB, st []*mq.Consumer) int {
	t.Helper()
	leader := -1
	waitFor(t, 10*time.Second, func() string {
		leader = -1
		n := 0
		for i, c := range st {
			if c.Leader() {
				leader, n = i, n+1
			}
		}
		if n != 1 {
			return fmt.Sprintf("%d stable instances say they lead, want 1", n)
		}
		return ""
	})
	return leader
}

// waitLost waits up to timeout for every body and returns those that never
// came: a lost message is one no handler ever gets.
func waitLost(t testing.TB, rec *rocketmqtest.Recorder, timeout time.Duration, bodies []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rec.Wait(ctx, bodies...); err == nil {
		return nil
	}
	return rec.Missing(bodies...)
}

// TestFrozenStableAcrossTakeover is the sequence of issue 12: a stable
// instance is frozen (as by SIGSTOP: a handler call blocked after its
// decision, its pulled messages waiting, its refresh blocked with answers
// in hand), the lane crashes meanwhile and the leader completes the
// takeover, then the frozen instance resumes with its old beliefs. Every
// blue message must still be handled by someone.
func TestFrozenStableAcrossTakeover(t *testing.T) {
	for _, freezeLeader := range []bool{false, true} {
		name := "non-leader"
		if freezeLeader {
			name = "leader"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			skipIfClientRaces(t)
			s := rocketmqtest.RunT(t)
			const topic = "frozen"
			if err := s.CreateTopic(topic, 4); err != nil {
				t.Fatal(err)
			}
			rec := new(rocketmqtest.Recorder)
			st := []*mq.Consumer{
				startConsumer(t, s, "svc", topic, "", rec.Handler("stable-0"), rec),
				startConsumer(t, s, "svc", topic, "", rec.Handler("stable-1"), rec),
			}
			g := newGate(t)
			lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
			for _, c := range st {
				waitOnline(t, c, "blue")
			}
			leader := leaderOf(t, st)
			frozen, other := st[1-leader], st[leader]
			if freezeLeader {
				frozen, other = other, frozen
			}
			p := newProducer(t, s)
			stream := startStream(t, p, topic, "frozen", time.Millisecond, "blue", "", "blue")
			stream.waitSent(t, 100)

			resume := mq.Freeze(frozen)
			stream.waitSent(t, 100)
			crash(t, s, lane, g)
			if !freezeLeader {
				// The leader completes the takeover while the other
				// instance is frozen, and keeps the lane's offsets up.
				waitFor(t, 20*time.Second, func() string {
					if other.Stats().Takeovers == 0 {
						return "the leader completed no takeover"
					}
					return ""
				})
			}
			stream.waitSent(t, 1500) // well past the staleness bound at 1 msg/ms
			resume()
			stream.waitSent(t, 600)
			blue := stream.bodies("blue")
			all := append(append([]string{}, blue...), stream.bodies("")...)
			lost := waitLost(t, rec, 20*time.Second, all)
			t.Logf("%d blue of %d messages; lost %d; duplicates %d; handed over %d+%d, takeovers %d+%d",
				len(blue), len(all), len(lost), rec.Duplicates(all...),
				st[0].Stats().Redelivered, st[1].Stats().Redelivered, st[0].Stats().Takeovers, st[1].Stats().Takeovers)
			if len(lost) > 0 {
				t.Errorf("%d messages lost, first %q", len(lost), lost[0])
			}
		})
	}
}
