package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/admin"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestParseMasters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		want       []admin.Master
	}{
		{
			name: "fastjson unquoted keys, a slave left out",
			body: `{"brokerAddrTable":{"broker-b":{"cluster":"C","brokerName":"broker-b","brokerAddrs":{0:"h:2",1:"h:3"}},` +
				`"broker-a":{"cluster":"C","brokerName":"broker-a","brokerAddrs":{0:"h:1"}}},"clusterAddrTable":{"C":["broker-a","broker-b"]}}`,
			want: []admin.Master{{Cluster: "C", Name: "broker-a", Addr: "h:1"}, {Cluster: "C", Name: "broker-b", Addr: "h:2"}},
		},
		{
			name: "a broker with no master",
			body: `{"brokerAddrTable":{"broker-a":{"cluster":"C","brokerName":"broker-a","brokerAddrs":{"1":"h:3"}}}}`,
		},
		{name: "empty", body: `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := admin.ParseMasters([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
	if _, err := admin.ParseMasters([]byte(`{"brokerAddrTable":[`)); err == nil || !strings.HasPrefix(err.Error(), "admin: cluster info body") {
		t.Errorf("a broken body: %v, want an admin: cluster info body error", err)
	}
}

// FuzzParseMasters: a cluster info body from a name server never panics,
// and every master it yields has an address.
func FuzzParseMasters(f *testing.F) {
	f.Add([]byte(`{"brokerAddrTable":{"a":{"cluster":"C","brokerName":"a","brokerAddrs":{0:"h:1"}}}}`))
	f.Add([]byte(`{"brokerAddrTable":{"a":{"brokerAddrs":{"0":""}}}}`))
	f.Add([]byte(`{0:{1:[2,{3:"x"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := admin.ParseMasters(body)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.Addr == "" {
				t.Errorf("master %+v without an address", m)
			}
		}
	})
}

func TestMastersAndCreateTopic(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithBrokers(2), rocketmqtest.WithAutoCreateTopics(false))
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("masters %+v, want 2", ms)
	}
	for _, m := range ms {
		if err := c.CreateTopic(ctx, m.Addr, "made", 3); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := c.Route(ctx, "made")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Queues != 3 || bs[1].Queues != 3 {
		t.Errorf("route of the created topic: %+v, want 3 queues on each of 2 brokers", bs)
	}
	if err := c.CreateTopic(ctx, ms[0].Addr, "bad/name", 3); err == nil {
		t.Error("CreateTopic of an invalid name: no error")
	}
}
