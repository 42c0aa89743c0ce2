package rocketmqtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// These tests speak the protocol through mq/internal/remoting, the way the
// mq lanes do, so they run under -race without rocketmq-client-go.

func rawInvoke(t testing.TB, c *remoting.Conn, code int16, ext map[string]string, body []byte) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, remoting.NewRequest(code, ext, body))
	if err != nil {
		t.Fatalf("request code %d: %v", code, err)
	}
	return resp
}

func dial(t testing.TB, addr string, h remoting.Handler) *remoting.Conn {
	t.Helper()
	c, err := remoting.Dial(context.Background(), addr, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func heartbeat(t testing.TB, c *remoting.Conn, clientID, group string, topics ...string) {
	t.Helper()
	if r := rawInvoke(t, c, remoting.HeartBeat, nil, mustHeartbeatBody(clientID, group, topics...)); r.Code != remoting.Success {
		t.Fatalf("heartbeat: %v", r)
	}
}

// mustHeartbeatBody is the HeartbeatData of one consumer of group.
func mustHeartbeatBody(clientID, group string, topics ...string) []byte {
	subs := []map[string]any{}
	for _, tp := range append(topics, rocketmqtest.RetryTopic(group)) {
		subs = append(subs, map[string]any{"topic": tp, "subString": "*", "tagsSet": []string{}, "codeSet": []string{}, "subVersion": 1, "expressionType": "TAG"})
	}
	body, err := json.Marshal(map[string]any{
		"clientID":        clientID,
		"producerDataSet": []any{},
		"consumerDataSet": []any{map[string]any{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"consumeFromWhere": "CONSUME_FROM_LAST_OFFSET", "subscriptionDataSet": subs, "unitMode": false,
		}},
	})
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return body
}

func consumerList(t testing.TB, c *remoting.Conn, group string) (int16, []string, string) {
	t.Helper()
	r := rawInvoke(t, c, remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil)
	var body struct {
		IDs []string `json:"consumerIdList"`
	}
	if r.Code == remoting.Success {
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
	}
	return r.Code, body.IDs, r.Remark
}

func sendRaw(t testing.TB, c *remoting.Conn, topic string, queueID int, body string) *remoting.Command {
	t.Helper()
	r := rawInvoke(t, c, remoting.SendMessageV2, map[string]string{
		"a": "pg", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(queueID), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": "UNIQ_KEY\x01" + body + "\x02",
		"j": "0", "k": "false", "l": "16", "m": "false",
	}, []byte(body))
	if r.Code != remoting.Success {
		t.Fatalf("send: %v", r)
	}
	return r
}

func TestBrokerAnswersLikeRocketMQ494(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	b := dial(t, s.Brokers()[0].Addr, nil)
	ns := dial(t, s.NameServer(), nil)

	// A group with no members: code 1, not an empty list.
	code, _, remark := consumerList(t, b, "nobody")
	if code != remoting.SystemError || remark != "no consumer for this group, nobody" {
		t.Errorf("38 for an empty group = %d %q, want 1 %q", code, remark, "no consumer for this group, nobody")
	}
	// A group that never committed reads back 0, even on a missing topic.
	for _, topic := range []string{"missing", "TBW102"} {
		r := rawInvoke(t, b, remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": topic, "queueId": "0"}, nil)
		if r.Code != remoting.Success || r.ExtFields["offset"] != "0" {
			t.Errorf("14 for a never-committed group on %s = %d offset %q, want 0 offset 0", topic, r.Code, r.ExtFields["offset"])
		}
	}
	// Max and min offsets of a missing topic: 0, no error.
	for _, code := range []int16{remoting.GetMaxOffset, remoting.GetMinOffset} {
		r := rawInvoke(t, b, code, map[string]string{"topic": "missing", "queueId": "0"}, nil)
		if r.Code != remoting.Success || r.ExtFields["offset"] != "0" {
			t.Errorf("code %d for a missing topic = %d offset %q, want 0 offset 0", code, r.Code, r.ExtFields["offset"])
		}
	}
	// A missing topic has no route.
	if r := rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "missing"}, nil); r.Code != remoting.TopicNotExist {
		t.Errorf("105 for a missing topic = %v, want code 17", r)
	}
	// 300 of a missing topic: an empty list.
	if r := rawInvoke(t, b, remoting.QueryTopicConsumeByWho, map[string]string{"topic": "missing"}, nil); r.Code != 0 || string(r.Body) != `{"groupList":[]}` {
		t.Errorf("300 for a missing topic = %v %s, want 0 {\"groupList\":[]}", r, r.Body)
	}
	// Unknown codes are refused, not ignored.
	if r := rawInvoke(t, b, 9999, nil, nil); r.Code != remoting.RequestCodeNotSupported {
		t.Errorf("code 9999 = %v, want 3 REQUEST_CODE_NOT_SUPPORTED", r)
	}

	// A commit from a group that never connected: read back, listed by
	// 300, but the group is not online and not a subscription group.
	rawInvoke(t, b, remoting.UpdateConsumerOffset, map[string]string{"consumerGroup": "ghost", "topic": "orders", "queueId": "1", "commitOffset": "7"}, nil)
	r := rawInvoke(t, b, remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "ghost", "topic": "orders", "queueId": "1"}, nil)
	if r.ExtFields["offset"] != "7" {
		t.Errorf("offset after a commit of 7 = %q", r.ExtFields["offset"])
	}
	if code, _, _ := consumerList(t, b, "ghost"); code != remoting.SystemError {
		t.Errorf("38 for a group that only committed = %d, want 1", code)
	}

	// A live subscriber with no commits: 300 lists the union.
	heartbeat(t, b, "10.0.0.1@live", "live", "orders")
	r = rawInvoke(t, b, remoting.QueryTopicConsumeByWho, map[string]string{"topic": "orders"}, nil)
	if diff := cmp.Diff(string(r.Body), `{"groupList":["ghost","live"]}`); diff != "" {
		t.Errorf("300 (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(s.ConsumerGroups("orders"), []string{"ghost", "live"}); diff != "" {
		t.Errorf("ConsumerGroups (-got +want):\n%s", diff)
	}

	// The heartbeat created the retry topic: 1 queue, perm 6, routable.
	r = rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "%RETRY%live"}, nil)
	var route struct {
		QueueDatas []struct {
			ReadQueueNums, WriteQueueNums, Perm int
		} `json:"queueDatas"`
	}
	if err := json.Unmarshal(r.Body, &route); err != nil || len(route.QueueDatas) != 1 {
		t.Fatalf("route of %%RETRY%%live: %v %s", err, r.Body)
	}
	if q := route.QueueDatas[0]; q.ReadQueueNums != 1 || q.WriteQueueNums != 1 || q.Perm != 6 {
		t.Errorf("retry topic queue data %+v, want 1/1 perm 6", q)
	}

	// Send: SEND_OK with region, trace switch and an offset msg id; offsets
	// contiguous from 0.
	for i := range 3 {
		r := sendRaw(t, b, "orders", 2, fmt.Sprint(i))
		if r.ExtFields["queueOffset"] != strconv.Itoa(i) || r.ExtFields["MSG_REGION"] != "DefaultRegion" || r.ExtFields["TRACE_ON"] != "true" || len(r.ExtFields["msgId"]) != 32 {
			t.Errorf("send %d answered %v", i, r.ExtFields)
		}
	}
	// Search by timestamp: the first message stored at or after it.
	r = rawInvoke(t, b, remoting.SearchOffsetByTimestamp, map[string]string{"topic": "orders", "queueId": "2", "timestamp": "0"}, nil)
	if r.ExtFields["offset"] != "0" {
		t.Errorf("search from time 0 = %q, want 0", r.ExtFields["offset"])
	}
	r = rawInvoke(t, b, remoting.SearchOffsetByTimestamp, map[string]string{"topic": "orders", "queueId": "2", "timestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)}, nil)
	if r.ExtFields["offset"] != "3" {
		t.Errorf("search from the future = %q, want 3 (the max offset)", r.ExtFields["offset"])
	}
}

func TestMembershipChangesNotifyTheGroup(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	addr := s.Brokers()[0].Addr
	notified := make(chan string, 16)
	a := dial(t, addr, func(req *remoting.Command) *remoting.Command {
		if req.Code == remoting.NotifyConsumerIDsChanged {
			notified <- req.ExtFields["consumerGroup"]
		}
		return nil
	})
	heartbeat(t, a, "ip@a", "g", "t")
	<-notified // a's own join
	b := dial(t, addr, nil)
	heartbeat(t, b, "ip@b", "g", "t")
	select {
	case g := <-notified:
		if g != "g" {
			t.Errorf("notified about group %q, want g", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED on a join")
	}
	if _, ids, _ := consumerList(t, a, "g"); !cmp.Equal(ids, []string{"ip@a", "ip@b"}) {
		t.Errorf("members %v, want [ip@a ip@b]", ids)
	}
	// A repeated heartbeat changes nothing and notifies nobody.
	heartbeat(t, b, "ip@b", "g", "t")

	// b's connection closes: dropped at once, a is told.
	b.Close()
	select {
	case <-notified:
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY_CONSUMER_IDS_CHANGED when a member's connection closed")
	}
	if _, ids, _ := consumerList(t, a, "g"); !cmp.Equal(ids, []string{"ip@a"}) {
		t.Errorf("members after b left %v, want [ip@a]", ids)
	}
	if diff := cmp.Diff(s.OnlineConsumers("g"), []string{"ip@a"}); diff != "" {
		t.Errorf("OnlineConsumers (-got +want):\n%s", diff)
	}
	// UNREGISTER_CLIENT removes a member too.
	rawInvoke(t, a, remoting.UnregisterClient, map[string]string{"clientID": "ip@a", "consumerGroup": "g"}, nil)
	if code, _, _ := consumerList(t, a, "g"); code != remoting.SystemError {
		t.Errorf("38 after the last member unregistered = %d, want 1", code)
	}
}

func TestDropClientClosesOnlyThatClient(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	addr := s.Brokers()[0].Addr
	a, b := dial(t, addr, nil), dial(t, addr, nil)
	heartbeat(t, a, "ip@a", "g", "t")
	heartbeat(t, b, "ip@b", "g", "t")
	if n := s.DropClient("ip@b"); n != 1 {
		t.Fatalf("DropClient closed %d connections, want 1", n)
	}
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("dropped connection still open")
	}
	if diff := cmp.Diff(s.OnlineConsumers("g"), []string{"ip@a"}); diff != "" {
		t.Errorf("OnlineConsumers (-got +want):\n%s", diff)
	}
	if n := s.DropClients(func(string) bool { return false }); n != 0 {
		t.Errorf("DropClients(no match) = %d", n)
	}
}

func TestChannelExpiry(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithChannelExpiry(50*time.Millisecond))
	c := dial(t, s.Brokers()[0].Addr, nil)
	heartbeat(t, c, "ip@quiet", "g", "t")
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection of a client that stopped heartbeating not closed")
	}
	if got := s.OnlineConsumers("g"); len(got) != 0 {
		t.Errorf("online after expiry: %v", got)
	}
}

func TestLongPollingHoldsAndWakes(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	if err := s.CreateTopic("lp", 2); err != nil {
		t.Fatal(err)
	}
	addr := s.Brokers()[0].Addr
	puller, sender := dial(t, addr, nil), dial(t, addr, nil)
	pull := func(queue, suspendMillis int) chan *remoting.Command {
		ch := make(chan *remoting.Command, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := puller.Invoke(ctx, remoting.NewRequest(remoting.PullMessage, map[string]string{
				"consumerGroup": "g", "topic": "lp", "queueId": strconv.Itoa(queue), "queueOffset": "0",
				"maxMsgNums": "32", "sysFlag": "2", "commitOffset": "0", "suspendTimeoutMillis": strconv.Itoa(suspendMillis),
				"subscription": "*", "subVersion": "0", "expressionType": "TAG",
			}, nil))
			if err != nil {
				r = remoting.NewResponse(&remoting.Command{}, -1, err.Error())
			}
			ch <- r
		}()
		return ch
	}
	// Several pulls held at once, on two queues; a send wakes only its queue.
	var held []chan *remoting.Command
	for i := range 4 {
		held = append(held, pull(i%2, 20000))
	}
	waitFor(t, 5*time.Second, func() string {
		if n := s.HeldPulls(); n != 4 {
			return fmt.Sprintf("%d pulls held, want 4", n)
		}
		return ""
	}, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { sendRaw(t, sender, "lp", 1, "x") })
	}
	wg.Wait()
	for i := 1; i < 4; i += 2 {
		select {
		case r := <-held[i]:
			if r.Code != remoting.Success || r.ExtFields["nextBeginOffset"] == "0" {
				t.Errorf("woken pull = %v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pull held on queue 1 not woken by a send")
		}
	}
	if n := s.HeldPulls(); n != 2 {
		t.Errorf("%d pulls still held, want the 2 on queue 0", n)
	}
	// The suspend time comes from the request: a short one answers
	// NO_NEW_MSG when it runs out.
	select {
	case r := <-pull(0, 30):
		if r.Code != remoting.PullNotFound {
			t.Errorf("pull after its suspend time = %v, want 19 PULL_NOT_FOUND", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("suspend time from the request ignored")
	}
}

func TestLockBatchMQ(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	c := dial(t, s.Brokers()[0].Addr, nil)
	lock := func(code int16, client string) string {
		body := fmt.Sprintf(`{"consumerGroup":"g","clientId":%q,"mqSet":[{"topic":"t","brokerName":"broker-a","queueId":0}]}`, client)
		return string(rawInvoke(t, c, code, nil, []byte(body)).Body)
	}
	const ok = `{"lockOKMQSet":[{"topic":"t","brokerName":"broker-a","queueId":0}]}`
	const none = `{"lockOKMQSet":[]}`
	steps := []struct {
		name   string
		code   int16
		client string
		want   string
	}{
		{"a locks", remoting.LockBatchMQ, "a", ok},
		{"a renews", remoting.LockBatchMQ, "a", ok},
		{"b is refused", remoting.LockBatchMQ, "b", none},
		{"b cannot unlock a's lock", remoting.UnlockBatchMQ, "b", ""},
		{"b still refused", remoting.LockBatchMQ, "b", none},
		{"a unlocks", remoting.UnlockBatchMQ, "a", ""},
		{"b locks", remoting.LockBatchMQ, "b", ok},
	}
	for _, st := range steps {
		if got := lock(st.code, st.client); got != st.want {
			t.Errorf("%s: got %s, want %s", st.name, got, st.want)
		}
	}
}

func TestSendBackDelaysIntoRetryTopic(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithDelayLevels(20*time.Millisecond))
	c := dial(t, s.Brokers()[0].Addr, nil)
	heartbeat(t, c, "ip@c", "g", "orders")
	resp := sendRaw(t, c, "orders", 0, "payload")
	phys, err := strconv.ParseUint(resp.ExtFields["msgId"][16:], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	r := rawInvoke(t, c, remoting.ConsumerSendMsgBack, map[string]string{
		"group": "g", "offset": strconv.FormatUint(phys, 10), "delayLevel": "0", "originMsgId": "payload",
		"originTopic": "orders", "unitMode": "false", "maxReconsumeTimes": "16",
	}, nil)
	if r.Code != remoting.Success {
		t.Fatalf("send back: %v", r)
	}
	waitFor(t, 5*time.Second, func() string {
		if n := len(s.Messages(rocketmqtest.RetryTopic("g"))); n != 1 {
			return fmt.Sprintf("%d messages in the retry topic, want 1", n)
		}
		return ""
	}, nil)
	m := s.Messages(rocketmqtest.RetryTopic("g"))[0]
	if m.ReconsumeTimes != 1 || m.GetProperty("DELAY") != "3" || m.GetProperty("RETRY_TOPIC") != "orders" || m.GetProperty("ORIGIN_MESSAGE_ID") != resp.ExtFields["msgId"] || m.MsgId != "payload" {
		t.Errorf("retry message %v", m)
	}
	// An unknown group cannot send back; an unknown offset neither.
	r = rawInvoke(t, c, remoting.ConsumerSendMsgBack, map[string]string{"group": "nobody", "offset": "0", "delayLevel": "0"}, nil)
	if r.Code == remoting.Success {
		t.Errorf("send back for an unknown group succeeded")
	}
	r = rawInvoke(t, c, remoting.ConsumerSendMsgBack, map[string]string{"group": "g", "offset": "123456", "delayLevel": "0"}, nil)
	if r.Code != remoting.SystemError {
		t.Errorf("send back of an unknown offset = %v, want 1", r)
	}
}

func TestFailRequests(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	ns := dial(t, s.NameServer(), nil)
	s.FailRequests(rocketmqtest.GetRouteInfoByTopic, rocketmqtest.Fault{Code: rocketmqtest.ServiceNotAvailable, Remark: "down"})
	if r := rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil); r.Code != remoting.ServiceNotAvailable || r.Remark != "down" {
		t.Errorf("faulted 105 = %v, want 14 down", r)
	}
	s.FailRequests(rocketmqtest.GetRouteInfoByTopic, rocketmqtest.Fault{})
	if r := rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil); r.Code != remoting.SystemError {
		t.Errorf("zero Fault = %v, want SYSTEM_ERROR", r)
	}
	s.FailRequests(rocketmqtest.GetRouteInfoByTopic, rocketmqtest.Fault{NoReply: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := ns.Invoke(ctx, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NoReply fault: %v, want a timeout", err)
	}
	s.ClearFaults()
	if r := rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil); r.Code != remoting.Success {
		t.Errorf("105 after ClearFaults = %v", r)
	}
	s.FailRequests(rocketmqtest.GetRouteInfoByTopic, rocketmqtest.Fault{Close: true})
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ns.Invoke(ctx, remoting.NewRequest(remoting.GetRouteInfoByTopic, nil, nil)); !errors.Is(err, remoting.ErrClosed) {
		t.Errorf("Close fault: %v, want the connection closed", err)
	}
}

func TestMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	good := dial(t, s.NameServer(), nil)
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff}},
		{"length below the header length field", []byte{0, 0, 0, 2, 0, 0}},
		{"oversized length", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
		{"header longer than frame", []byte{0, 0, 0, 8, 0, 0, 0, 200, '{', '}', 0, 0}},
		{"garbage JSON", append([]byte{0, 0, 0, 9, 0, 0, 0, 5}, "{nope"...)},
		{"unknown serialization", []byte{0, 0, 0, 6, 7, 0, 0, 2, '{', '}'}},
		{"truncated binary header", []byte{0, 0, 0, 7, 1, 0, 0, 3, 0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, addr := range []string{s.NameServer(), s.Brokers()[0].Addr} {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				if _, err := nc.Write(tc.bytes); err != nil {
					t.Fatal(err)
				}
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := nc.Read(make([]byte, 1)); err == nil {
					t.Errorf("%s: the server answered a malformed frame", addr)
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("%s: connection left open after a malformed frame", addr)
				}
			}
			if r := rawInvoke(t, good, remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil); r.Code != remoting.Success {
				t.Errorf("good connection after a bad one: %v", r)
			}
		})
	}
}

func TestCloseIsIdempotentAndReleasesEverything(t *testing.T) {
	t.Parallel()
	s, err := rocketmqtest.Run(rocketmqtest.WithBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic("t", 1); err != nil {
		t.Fatal(err)
	}
	c, err := remoting.Dial(context.Background(), s.Brokers()[1].Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), remoting.NewRequest(remoting.PullMessage, map[string]string{
			"consumerGroup": "g", "topic": "t", "queueId": "0", "queueOffset": "0", "maxMsgNums": "1",
			"sysFlag": "2", "commitOffset": "0", "suspendTimeoutMillis": "20000",
		}, nil))
		done <- err
	}()
	waitFor(t, 5*time.Second, func() string {
		if s.HeldPulls() != 1 {
			return "pull not held"
		}
		return ""
	}, nil)
	s.Close()
	if err := <-done; !errors.Is(err, remoting.ErrClosed) {
		t.Errorf("held pull after Close: %v, want the connection closed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.CreateTopic("u", 1); err == nil {
		t.Error("CreateTopic on a closed server succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  rocketmqtest.Option
		want string // the start of Run's error: the option's name
	}{
		{"no brokers", rocketmqtest.WithBrokers(0), `rocketmqtest: WithBrokers(0): outside [1, 16]`},
		{"too many brokers", rocketmqtest.WithBrokers(rocketmqtest.MaxBrokers + 1), `rocketmqtest: WithBrokers(17): outside [1, 16]`},
		{"no queues", rocketmqtest.WithQueues(0), `rocketmqtest: WithQueues(0): outside`},
		{"empty delay table", rocketmqtest.WithDelayLevels(), `rocketmqtest: WithDelayLevels(): empty table`},
		{"negative delay", rocketmqtest.WithDelayLevels(-time.Second), `rocketmqtest: WithDelayLevels: level 1 is negative (-1s)`},
		{"empty cluster", rocketmqtest.WithClusterName(""), `rocketmqtest: WithClusterName(""): empty`},
		{"zero expiry", rocketmqtest.WithChannelExpiry(0), `rocketmqtest: WithChannelExpiry(0s): not positive`},
		{"zero idle timeout", rocketmqtest.WithIdleTimeout(0), `rocketmqtest: WithIdleTimeout(0s): not positive`},
		{"no connections", rocketmqtest.WithMaxConns(0), `rocketmqtest: WithMaxConns(0): below 1`},
		{"frame bound below one frame", rocketmqtest.WithFrameBytesInFlight(rocketmqtest.MinFrameBytesInFlight - 1), `rocketmqtest: WithFrameBytesInFlight(`},
		{"negative retention", rocketmqtest.WithRetention(-1, 0), `rocketmqtest: WithRetention(-1, 0): negative`},
		{"name server address without port", rocketmqtest.WithNameServerAddr("127.0.0.1"), `rocketmqtest: WithNameServerAddr: "127.0.0.1" is not host:port`},
		{"name server host name", rocketmqtest.WithNameServerAddr("localhost:0"), `rocketmqtest: WithNameServerAddr: "localhost:0": host must be an IPv4 address`},
		{"bad broker port", rocketmqtest.WithBrokerAddrs("127.0.0.1:http-nope"), `rocketmqtest: WithBrokerAddrs: address 0: "127.0.0.1:http-nope": bad port`},
		{"more broker addresses than brokers", rocketmqtest.WithBrokerAddrs("127.0.0.1:0", "127.0.0.1:0"), `rocketmqtest: 2 broker addresses for 1 brokers`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rocketmqtest.Run(tc.opt)
			if err == nil {
				s.Close()
				t.Fatal("Run accepted an invalid option")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error starting %q", err, tc.want)
			}
		})
	}
	s := rocketmqtest.RunT(t, nil, rocketmqtest.WithQueues(8), rocketmqtest.WithClusterName("c"))
	if err := s.CreateTopic("bad topic", 1); err == nil {
		t.Error("CreateTopic accepted an invalid name")
	}
	if err := s.CreateTopic("t", 0); err != nil || len(s.Queues("t")) != 8 {
		t.Errorf("CreateTopic with the default queue count: %v, %d queues", err, len(s.Queues("t")))
	}
}

func TestAutoCreateTopicsDisabled(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithAutoCreateTopics(false), rocketmqtest.WithBrokers(2))
	ns := dial(t, s.NameServer(), nil)
	if r := rawInvoke(t, ns, remoting.GetRouteInfoByTopic, map[string]string{"topic": "TBW102"}, nil); r.Code != remoting.TopicNotExist {
		t.Errorf("TBW102 routable with autoCreateTopicEnable off: %v", r)
	}
	b := dial(t, s.Brokers()[0].Addr, nil)
	r := rawInvoke(t, b, remoting.SendMessageV2, map[string]string{"a": "pg", "b": "nope", "c": "TBW102", "e": "0", "f": "0", "g": "0", "h": "0"}, []byte("x"))
	if r.Code != remoting.TopicNotExist {
		t.Errorf("send to a missing topic = %v, want 17", r)
	}
	r = rawInvoke(t, ns, remoting.GetBrokerClusterInfo, nil, nil)
	var info struct {
		BrokerAddrTable  map[string]struct{ BrokerAddrs map[string]string } `json:"brokerAddrTable"`
		ClusterAddrTable map[string][]string                                `json:"clusterAddrTable"`
	}
	if err := json.Unmarshal(r.Body, &info); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(info.ClusterAddrTable, map[string][]string{rocketmqtest.DefaultClusterName: {"broker-a", "broker-b"}}); diff != "" {
		t.Errorf("106 cluster table (-got +want):\n%s", diff)
	}
	if got := info.BrokerAddrTable["broker-b"].BrokerAddrs["0"]; got != s.Brokers()[1].Addr {
		t.Errorf("106 broker-b master = %q, want %q", got, s.Brokers()[1].Addr)
	}
}

// TestKillClientRefusesItsHeartbeats: a killed client's heartbeat, on a new
// connection, closes that connection and registers nothing; other clients
// are unaffected.
func TestKillClientRefusesItsHeartbeats(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	addr := s.Brokers()[0].Addr
	a, b := dial(t, addr, nil), dial(t, addr, nil)
	heartbeat(t, a, "ip@a", "g", "t")
	heartbeat(t, b, "ip@b", "g", "t")
	if n := s.KillClient("ip@b"); n != 1 {
		t.Fatalf("KillClient closed %d connections, want 1", n)
	}
	// What a heartbeat in flight at the kill would do: a new connection.
	b2 := dial(t, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := b2.Invoke(ctx, remoting.NewRequest(remoting.HeartBeat, nil, mustHeartbeatBody("ip@b", "g", "t"))); err == nil {
		t.Fatalf("heartbeat of a killed client answered %v, want the connection closed", resp)
	}
	select {
	case <-b2.Done():
	case <-ctx.Done():
		t.Fatal("connection of a killed client's heartbeat still open")
	}
	if diff := cmp.Diff(s.OnlineConsumers("g"), []string{"ip@a"}); diff != "" {
		t.Errorf("OnlineConsumers (-got +want):\n%s", diff)
	}
	heartbeat(t, a, "ip@a", "g", "t") // the living client goes on
}
