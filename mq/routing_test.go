package mq_test

import (
	"strings"
	"testing"
	"time"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"github.com/taglane/taglane/tagctx"
)

// TestRouting: untagged → stable only; an online lane's tag → that lane
// only; a tag with no lane → stable.
func TestRouting(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "orders"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	stable := startConsumer(t, s, "svc", topic, "", nil, rec)
	startConsumer(t, s, "svc", topic, "blue", nil, rec)
	waitOnline(t, stable, "blue")
	p := newProducer(t, s)

	untagged, blue, green := bodies("untagged", 20), bodies("blue", 20), bodies("green", 20)
	send(t, p, topic, "", untagged)
	send(t, p, topic, "blue", blue)
	send(t, p, topic, "green", green)
	all := append(append(append([]string{}, untagged...), blue...), green...)
	rec.WaitBodies(t, 20*time.Second, all...)

	got := rec.ByBody()
	check := func(bs []string, want string) {
		t.Helper()
		for _, b := range bs {
			if len(got[b]) != 1 || got[b][0] != want {
				t.Errorf("%s handled by %q, want once by %q", b, got[b], want)
			}
		}
	}
	check(untagged, "stable")
	check(blue, "blue")
	check(green, "stable")
	for _, d := range rec.Deliveries() {
		wantTag := ""
		switch {
		case strings.HasPrefix(d.Body(), "blue"):
			wantTag = "blue"
		case strings.HasPrefix(d.Body(), "green"):
			wantTag = "green"
		}
		if got := tagctx.From(d.Ctx).String(); got != wantTag {
			t.Errorf("%s: handler ctx tag %q, want %q", d.Body(), got, wantTag)
		}
	}
}

// TestGroupPrefix: with a prefix, the stable group is "<prefix><base>" and
// the lane group "<tag>_<base>"; the lane seeds from the prefixed group.
func TestGroupPrefix(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "prefixed"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	prefix := mq.WithGroupPrefix("test_")
	stable := startConsumer(t, s, "svc", topic, "", nil, rec, prefix)
	p := newProducer(t, s)
	old := bodies("old", 8)
	send(t, p, topic, "blue", old)
	rec.WaitBodies(t, 10*time.Second, old...)
	waitCommitted(t, s, stable.Group(), topic) // the lane seeds from it
	lane := startConsumer(t, s, "svc", topic, "blue", nil, rec, prefix)
	if stable.Group() != "test_svc" || lane.Group() != "blue_svc" {
		t.Fatalf("groups %q and %q, want test_svc and blue_svc", stable.Group(), lane.Group())
	}
	for _, q := range s.Queues(topic) {
		if got, _ := s.CommittedOffset("blue_svc", q); got != s.MaxOffset(q) {
			t.Errorf("lane seeded at %d on %v, want stable's %d", got, q, s.MaxOffset(q))
		}
	}
	waitOnline(t, stable, "blue")
	blue := bodies("blue", 8)
	send(t, p, topic, "blue", blue)
	rec.WaitBodies(t, 10*time.Second, blue...)
	got := rec.ByBody()
	for _, b := range blue {
		if len(got[b]) != 1 || got[b][0] != "blue" {
			t.Errorf("%s handled by %q, want once by the lane", b, got[b])
		}
	}
	for _, b := range old {
		if len(got[b]) != 1 || got[b][0] != "stable" {
			t.Errorf("%s handled by %q, want once by stable (no replay)", b, got[b])
		}
	}
}
