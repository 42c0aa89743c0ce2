package rocketmqtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// TestAdminQueries runs the admin queries the mq lanes rely on against the
// server, with the answers ROCKETMQ-FACTS records for a real 4.9.4 broker.
func TestAdminQueries(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	if err := s.CreateTopic("orders", 2); err != nil {
		t.Fatal(err)
	}
	c := admin.New([]string{s.NameServer()}, 0)
	defer c.Close()
	ctx := context.Background()

	route, err := c.Route(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var want []admin.Broker
	for _, b := range s.Brokers() {
		want = append(want, admin.Broker{Name: b.Name, Addr: b.Addr, Queues: 2})
	}
	if diff := cmp.Diff(route, want); diff != "" {
		t.Errorf("route (-got +want):\n%s", diff)
	}
	if _, err := c.Route(ctx, "missing"); !errors.Is(err, admin.ErrTopicNotExist) {
		t.Errorf("route of a missing topic: %v, want code 17", err)
	}

	broker := s.Brokers()[1].Addr
	q := admin.Queue{Addr: broker, Topic: "orders", ID: 1}
	// 38 for a group with no member is code 1, which means offline.
	if _, err := c.ConsumerList(ctx, broker, "lane-g"); !errors.Is(err, admin.ErrNoConsumer) {
		t.Errorf("consumer list of an empty group: %v, want code 1", err)
	}
	// 14 for a never-committed group is code 0 with offset 0, not 22.
	if off, err := c.CommittedOffset(ctx, q, "lane-g"); err != nil || off != 0 {
		t.Errorf("offset of a never-committed group = %d, %v; want 0", off, err)
	}
	if err := c.UpdateOffset(ctx, q, "lane-g", 5); err != nil {
		t.Fatal(err)
	}
	if off, err := c.CommittedOffset(ctx, q, "lane-g"); err != nil || off != 5 {
		t.Errorf("offset after a commit of 5 = %d, %v", off, err)
	}
	// 300 lists a group with committed offsets even if it never connected.
	if groups, err := c.ConsumeByWho(ctx, broker, "orders"); err != nil || !cmp.Equal(groups, []string{"lane-g"}) {
		t.Errorf("groups = %v, %v; want [lane-g]", groups, err)
	}
	for _, f := range []func(context.Context, admin.Queue) (int64, error){c.MaxOffset, c.MinOffset} {
		if off, err := f(ctx, q); err != nil || off != 0 {
			t.Errorf("offset = %d, %v; want 0", off, err)
		}
	}
}
