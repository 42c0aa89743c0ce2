package rocketmqtest_test

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestAdminCreateAndDeleteTopic(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	// admin.NewAdmin always uses the default client instance; this is
	// the only test that runs one.
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{s.NameServer()})))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	addr := s.Brokers()[0].Addr
	err = a.CreateTopic(ctx, admin.WithTopicCreate("adm"), admin.WithBrokerAddrCreate(addr), admin.WithReadQueueNums(2), admin.WithWriteQueueNums(2))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Queues("adm")); n != 2 {
		t.Fatalf("%d queues after CreateTopic, want 2", n)
	}
	list, err := a.FetchAllTopicList(ctx)
	if err != nil || !slices.Contains(list.TopicList, "adm") {
		t.Fatalf("topic list %v, %v: want adm in it", list, err)
	}
	err = a.DeleteTopic(ctx, admin.WithTopicDelete("adm"), admin.WithBrokerAddrDelete(addr), admin.WithNameSrvAddr([]string{s.NameServer()}))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.Topics(), "adm") {
		t.Error("topic still there after DeleteTopic")
	}
}
