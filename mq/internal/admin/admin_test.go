package admin_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/mq/rocketmqtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/primitive.WithRecover"),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal/remote.(*ResponseFuture).waitResponse"),
		goleak.IgnoreAnyFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	)
}

func newClient(t *testing.T, s *rocketmqtest.Server) *admin.Client {
	t.Helper()
	c := admin.New([]string{s.NameServer()}, time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRouteAndGroups(t *testing.T) {
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2))
	c := newClient(t, s)
	ctx := context.Background()
	if _, err := c.Route(ctx, "missing"); !errors.Is(err, admin.ErrTopicNotExist) {
		t.Fatalf("route of a missing topic: %v, want ErrTopicNotExist", err)
	}
	if err := s.CreateTopic("orders", 3); err != nil {
		t.Fatal(err)
	}
	bs, err := c.Route(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var want []admin.Broker
	for _, b := range s.Brokers() {
		want = append(want, admin.Broker{Name: b.Name, Addr: b.Addr, Queues: 3})
	}
	if diff := cmp.Diff(bs, want); diff != "" {
		t.Errorf("route (-got +want):\n%s", diff)
	}
	addr := bs[0].Addr
	if _, err := c.ConsumerList(ctx, addr, "nobody"); !errors.Is(err, admin.ErrNoConsumer) {
		t.Errorf("consumers of an empty group: %v, want ErrNoConsumer", err)
	}
	groups, err := c.ConsumeByWho(ctx, addr, "orders")
	if err != nil || len(groups) != 0 {
		t.Errorf("consume-by-who before any offset: %q, %v", groups, err)
	}
	q := admin.Queue{Addr: addr, Topic: "orders", ID: 1}
	if off, err := c.CommittedOffset(ctx, q, "g"); err != nil || off != 0 {
		t.Errorf("never-committed offset: %d, %v; want 0 (as a 4.9.4 broker answers)", off, err)
	}
	if err := c.UpdateOffset(ctx, q, "g", 7); err != nil {
		t.Fatal(err)
	}
	if off, err := c.CommittedOffset(ctx, q, "g"); err != nil || off != 7 {
		t.Errorf("offset after update: %d, %v; want 7", off, err)
	}
	groups, err = c.ConsumeByWho(ctx, addr, "orders")
	if err != nil || !slices.Equal(groups, []string{"g"}) {
		t.Errorf("consume-by-who after an offset update: %q, %v; want [g]", groups, err)
	}
}

func TestPull(t *testing.T) {
	s := rocketmqtest.RunT(t, rocketmqtest.WithQueues(1))
	if err := s.CreateTopic("orders", 1); err != nil {
		t.Fatal(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{s.NameServer()}), producer.WithInstanceName("admin-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	for _, b := range []string{"a", "b", "c"} {
		m := primitive.NewMessage("orders", []byte(b))
		m.WithProperty("x-tag", "blue")
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, s)
	bs, err := c.Route(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	q := admin.Queue{Addr: bs[0].Addr, Topic: "orders", ID: 0}
	if max, err := c.MaxOffset(context.Background(), q); err != nil || max != 3 {
		t.Fatalf("max offset %d, %v; want 3", max, err)
	}
	r, err := c.Pull(context.Background(), q, bs[0].Name, "g", "*", 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range r.Msgs {
		got = append(got, string(m.Body)+"@"+m.GetProperty("x-tag"))
		if m.Queue == nil || m.Queue.BrokerName != bs[0].Name || m.Topic != "orders" {
			t.Errorf("message queue %v topic %q", m.Queue, m.Topic)
		}
	}
	if diff := cmp.Diff(got, []string{"b@blue", "c@blue"}); diff != "" {
		t.Errorf("pulled (-got +want):\n%s", diff)
	}
	if r.Next != 3 || r.Max != 3 {
		t.Errorf("next %d max %d, want 3 3", r.Next, r.Max)
	}
	r, err = c.Pull(context.Background(), q, bs[0].Name, "g", "*", 3, 32)
	if err != nil || len(r.Msgs) != 0 {
		t.Errorf("pull at the end: %d messages, %v; want none, no error, no wait", len(r.Msgs), err)
	}
}

func TestFaults(t *testing.T) {
	s := rocketmqtest.RunT(t)
	if err := s.CreateTopic("orders", 1); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	ctx := context.Background()
	bs, err := c.Route(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	s.FailRequests(rocketmqtest.QueryTopicConsumeByWho, rocketmqtest.Fault{Code: rocketmqtest.SystemBusy, Remark: "busy"})
	var ce *admin.CodeError
	if _, err := c.ConsumeByWho(ctx, bs[0].Addr, "orders"); !errors.As(err, &ce) || ce.Code != 2 {
		t.Errorf("busy broker: %v, want a CodeError with code 2", err)
	}
	// Code 1 is "offline" only with 38's own remark: any other code-1
	// answer is an error of the broker, not an empty group.
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{Code: rocketmqtest.SystemError, Remark: "java.lang.NullPointerException"})
	if _, err := c.ConsumerList(ctx, bs[0].Addr, "g"); errors.Is(err, admin.ErrNoConsumer) || !errors.As(err, &ce) || ce.Code != 1 {
		t.Errorf("code 1 with another remark: %v, want a CodeError with code 1, not ErrNoConsumer", err)
	}
	s.ClearFaults()
	if _, err := c.ConsumerList(ctx, bs[0].Addr, "nobody"); !errors.Is(err, admin.ErrNoConsumer) {
		t.Errorf("a group with no member: %v, want ErrNoConsumer", err)
	}
	s.FailRequests(rocketmqtest.GetConsumerListByGroup, rocketmqtest.Fault{NoReply: true})
	start := time.Now()
	_, err = c.ConsumerList(ctx, bs[0].Addr, "g")
	if err == nil || errors.Is(err, admin.ErrNoConsumer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent broker: %v, want a timeout, not ErrNoConsumer (unknown is not offline)", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v, want about 1 s", d)
	}
	s.ClearFaults()
}

func TestParseRouteUnquotedKeys(t *testing.T) {
	// A Java name server writes fastjson's unquoted numeric keys.
	body := `{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],` +
		`"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10912"}}]}`
	bs, err := admin.ParseRoute([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bs, []admin.Broker{{Name: "broker-a", Addr: "127.0.0.1:10911", Queues: 4}}); diff != "" {
		t.Errorf("route (-got +want):\n%s", diff)
	}
}
