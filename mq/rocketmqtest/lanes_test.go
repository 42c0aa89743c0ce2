package rocketmqtest_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// TestRemotingAdminQueries runs the typed admin queries the mq lanes use
// against the server.
func TestRemotingAdminQueries(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	if err := s.CreateTopic("orders", 2); err != nil {
		t.Fatal(err)
	}
	c := remoting.NewClient(nil)
	defer c.Close()
	ctx := context.Background()

	r, err := c.TopicRoute(ctx, s.NameServer(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, b := range s.Brokers() {
		want[b.Name] = b.Addr
	}
	if diff := cmp.Diff(r.MasterAddrs(), want); diff != "" {
		t.Errorf("MasterAddrs (-got +want):\n%s", diff)
	}
	if _, err := c.TopicRoute(ctx, s.NameServer(), "missing"); err == nil {
		t.Error("route of a missing topic")
	} else if code, _ := remoting.ResponseCode(err); code != remoting.TopicNotExist {
		t.Errorf("route of a missing topic: %v, want code 17", err)
	}

	broker := s.Brokers()[1].Addr
	if _, err := c.ConsumerIDs(ctx, broker, "lane-g"); err == nil {
		t.Error("consumer list of an empty group succeeded")
	} else if code, _ := remoting.ResponseCode(err); code != remoting.SystemError {
		t.Errorf("consumer list of an empty group: %v, want code 1", err)
	}
	if off, err := c.ConsumerOffset(ctx, broker, "lane-g", "orders", 1); err != nil || off != 0 {
		t.Errorf("offset of a never-committed group = %d, %v; want 0", off, err)
	}
	if err := c.UpdateConsumerOffset(ctx, broker, "lane-g", "orders", 1, 5); err != nil {
		t.Fatal(err)
	}
	if off, err := c.ConsumerOffset(ctx, broker, "lane-g", "orders", 1); err != nil || off != 5 {
		t.Errorf("offset after a commit of 5 = %d, %v", off, err)
	}
	groups, err := c.ConsumerGroups(ctx, broker, "orders")
	if err != nil || !cmp.Equal(groups, []string{"lane-g"}) {
		t.Errorf("groups = %v, %v; want [lane-g]", groups, err)
	}
	for _, f := range []func(context.Context, string, string, int) (int64, error){c.MaxOffset, c.MinOffset} {
		if off, err := f(ctx, broker, "orders", 0); err != nil || off != 0 {
			t.Errorf("offset = %d, %v; want 0", off, err)
		}
	}
}
