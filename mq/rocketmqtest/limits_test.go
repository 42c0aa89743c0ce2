package rocketmqtest_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// newPullConsumer starts a pull consumer of topic with its own instance.
func newPullConsumer(t *testing.T, s *rocketmqtest.Server, group, topic string) rocketmq.PullConsumer {
	t.Helper()
	rocketmqtest.SkipIfClientRaces(t)
	pc, err := rocketmq.NewPullConsumer(
		consumer.WithNameServer([]string{s.NameServer()}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance("pull")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	return pc
}

// randomBody is incompressible, so that the producer's compression of
// bodies over 4 KiB does not shrink it.
func randomBody(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// One pull returns at most 32 messages and 256 KiB (the first message
// always), whatever maxMsgNums asks, as a real 4.9.4 does.
func TestPullFromIsCappedLikeRocketMQ494(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	for _, topic := range []string{"capped-count", "capped-bytes"} {
		if err := s.CreateTopic(topic, 1); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, s.Brokers()[0].Addr, nil)
	for i := range 100 {
		sendRaw(t, c, "capped-count", 0, "m-"+strconv.Itoa(i))
	}
	big := randomBody(100 << 10)
	for i := range 4 {
		r := rawInvoke(t, c, remoting.SendMessageV2, map[string]string{
			"a": "pg", "b": "capped-bytes", "e": "0", "f": "0", "g": "0", "h": "0",
			"i": "UNIQ_KEY\x01big-" + strconv.Itoa(i) + "\x02", "j": "0", "m": "false",
		}, []byte(big))
		if r.Code != remoting.Success {
			t.Fatalf("send: %v", r)
		}
	}
	pc := newPullConsumer(t, s, "capped-group", "capped-count")
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		topic    string
		from     int64
		ask      int
		wantN    int
		wantNext int64
	}{
		{"100 asked, 32 given", "capped-count", 0, 100, 32, 32},
		{"fewer asked than the cap", "capped-count", 90, 5, 5, 95},
		{"the tail", "capped-count", 80, 100, 20, 100},
		{"two 100 KiB messages fit in 256 KiB, three do not", "capped-bytes", 0, 32, 2, 2},
		{"the first message always comes", "capped-bytes", 3, 32, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mq := primitive.MessageQueue{Topic: tc.topic, BrokerName: "broker-a", QueueId: 0}
			r, err := pc.PullFrom(ctx, &mq, tc.from, tc.ask)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != primitive.PullFound || len(r.GetMessageExts()) != tc.wantN || r.NextBeginOffset != tc.wantNext {
				t.Errorf("PullFrom(%d, %d) = %v with %d messages, want FOUND n=%d next=%d",
					tc.from, tc.ask, r, len(r.GetMessageExts()), tc.wantN, tc.wantNext)
			}
		})
	}
}

// A push consumer with WithPullBatchSize(100) gets 32 messages per pull;
// with a consume batch as large, each handler call holds one pull's
// messages, so no call sees more than 32.
func TestPushConsumerPullBatchIsCappedAt32(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "capped-push"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Brokers()[0].Addr, nil)
	want := bodies("push", 100)
	for _, b := range want {
		sendRaw(t, c, topic, 0, b)
	}
	rec := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, "capped-push-group", topic, rec, nil,
		consumer.WithPullBatchSize(100), consumer.WithConsumeMessageBatchMaxSize(100),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	rec.WaitBodies(t, 30*time.Second, want...)
	largest := 0
	for _, d := range rec.Deliveries() {
		largest = max(largest, d.Batch)
	}
	if largest != 32 {
		t.Errorf("largest handler batch %d, want 32 (one capped pull)", largest)
	}
}

func TestResponsesCarryVersion401(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	for _, addr := range []string{s.NameServer(), s.Brokers()[0].Addr} {
		r := rawInvoke(t, dial(t, addr, nil), remoting.GetRouteInfoByTopic, map[string]string{"topic": "none"}, nil)
		if r.Version != 401 {
			t.Errorf("%s answered version %d, want 401 (RocketMQ 4.9.4)", addr, r.Version)
		}
	}
}

// Retention moves the min offset up; what is behind it answers as on a
// real broker: OFFSET_MOVED to the min offset, and 22 for a group that never
// committed.
func TestRetentionMovesTheMinOffset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opt     rocketmqtest.Option
		wantMin int64
	}{
		{"by messages", rocketmqtest.WithRetention(10, 0), 15},
		// Each stored message of this test is 142 bytes.
		{"by bytes", rocketmqtest.WithRetention(0, 142*5), 20},
		{"the stricter of both", rocketmqtest.WithRetention(8, 142*12), 17},
		{"unlimited", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := rocketmqtest.RunT(t, tc.opt)
			const topic = "retained"
			if err := s.CreateTopic(topic, 1); err != nil {
				t.Fatal(err)
			}
			c := dial(t, s.Brokers()[0].Addr, nil)
			for i := range 25 {
				sendRaw(t, c, topic, 0, "r-"+strconv.Itoa(100+i))
			}
			mq := primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
			if got, max := s.MinOffset(mq), s.MaxOffset(mq); got != tc.wantMin || max != 25 {
				t.Fatalf("min, max offset = %d, %d; want %d, 25", got, max, tc.wantMin)
			}
			msgs := s.QueueMessages(mq)
			if len(msgs) != int(25-tc.wantMin) || msgs[0].QueueOffset != tc.wantMin ||
				string(msgs[0].Body) != "r-"+strconv.Itoa(100+int(tc.wantMin)) || msgs[0].StoreSize != 142 {
				t.Fatalf("kept %d messages, first %v", len(msgs), msgs[0])
			}
			q := map[string]string{"topic": topic, "queueId": "0"}
			if r := rawInvoke(t, c, remoting.GetMinOffset, q, nil); r.ExtFields["offset"] != strconv.FormatInt(tc.wantMin, 10) {
				t.Errorf("GET_MIN_OFFSET = %v", r)
			}
			pull := func(from int64) *remoting.Command {
				return rawInvoke(t, c, remoting.PullMessage, map[string]string{
					"consumerGroup": "g", "topic": topic, "queueId": "0", "queueOffset": strconv.FormatInt(from, 10),
					"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0",
				}, nil)
			}
			r := pull(0)
			wantCode, wantNext := int16(remoting.Success), "25"
			if tc.wantMin > 0 {
				wantCode, wantNext = remoting.PullOffsetMoved, strconv.FormatInt(tc.wantMin, 10)
			}
			if r.Code != wantCode || r.ExtFields["nextBeginOffset"] != wantNext || r.ExtFields["minOffset"] != strconv.FormatInt(tc.wantMin, 10) {
				t.Errorf("pull from 0 = %v, want code %d next=%s", r, wantCode, wantNext)
			}
			if r := pull(tc.wantMin); r.Code != remoting.Success || len(primitive.DecodeMessage(r.Body)) != int(25-tc.wantMin) {
				t.Errorf("pull from the min offset = %v", r)
			}
			r = rawInvoke(t, c, remoting.QueryConsumerOffset, map[string]string{"consumerGroup": "new", "topic": topic, "queueId": "0"}, nil)
			wantCode = remoting.Success
			if tc.wantMin > 0 {
				wantCode = remoting.QueryNotFound
			}
			if r.Code != wantCode {
				t.Errorf("QUERY_CONSUMER_OFFSET of a new group = %v, want code %d", r, wantCode)
			}
		})
	}
}

// A push consumer whose committed offset fell behind retention is moved to
// the min offset, as the v2.1.2 client does with a real broker: it gets
// OFFSET_MOVED, waits 10 s, stores the min offset and pulls from there after
// its next rebalance (20 s). Nothing behind the min offset is delivered.
func TestRetentionMovesAConsumerBehindIt(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the client's 10 s offset fix and 20 s rebalance")
	}
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t, rocketmqtest.WithRetention(10, 0))
	const topic, group = "behind", "behind-group"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	mq := primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
	if err := s.SetCommittedOffset(group, mq, 0); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Brokers()[0].Addr, nil)
	all := bodies("behind", 30)
	for _, b := range all {
		sendRaw(t, c, topic, 0, b)
	}
	rec := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, group, topic, rec, nil)
	rec.WaitBodies(t, 60*time.Second, all[20:]...)
	for _, d := range rec.Deliveries() {
		if slices.Contains(all[:20], d.Body()) {
			t.Errorf("delivered %q, deleted by retention", d.Body())
		}
	}
}

// The broker closes a connection without traffic for the idle timeout; the
// real producer notices and reconnects on its next send.
func TestIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	s := rocketmqtest.RunT(t, rocketmqtest.WithIdleTimeout(idle), rocketmqtest.WithLogf(t.Logf))
	const topic = "idle"
	if err := s.CreateTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	// A connection with traffic more often than the idle time stays.
	busy := dial(t, s.Brokers()[0].Addr, nil)
	stopBusy := make(chan struct{})
	busyDone := make(chan struct{})
	go func() {
		defer close(busyDone)
		tick := time.NewTicker(idle / 10)
		defer tick.Stop()
		for range 300 { // bounded: 300 * 100 ms
			select {
			case <-stopBusy:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = busy.Invoke(ctx, remoting.NewRequest(remoting.GetMaxOffset, map[string]string{"topic": topic, "queueId": "0"}, nil))
			cancel()
		}
	}()
	defer func() { close(stopBusy); <-busyDone }()

	p := newProducer(t, s, producer.WithRetry(2))
	sendAll(t, p, topic, []string{"before"})
	waitFor(t, 10*time.Second, func() string {
		if n := s.Connections(); n != 1 {
			return strconv.Itoa(n) + " connections open, want only the busy one"
		}
		return ""
	}, nil)
	sendAll(t, p, topic, []string{"after"})
	if got := s.MaxOffset(primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}); got != 2 {
		t.Errorf("stored %d messages, want 2", got)
	}
	select {
	case <-busy.Done():
		t.Errorf("busy connection closed: %v", busy.Err())
	default:
	}
}

// Connections announcing 16 MiB frames and sending nothing cost what
// arrived, not what was announced, and their memory comes back once they
// close. The old reader held 64 x 16 MiB = 1 GiB per round.
func TestAnnouncedFramesCostWhatArrived(t *testing.T) {
	// Not parallel: it measures the process's heap.
	s := rocketmqtest.RunT(t)
	const conns, rounds = 64, 4
	base := heapBytes()
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], remoting.DefaultMaxFrameSize)
	for round := range rounds {
		var open []net.Conn
		for range conns {
			nc, err := net.Dial("tcp", s.Brokers()[0].Addr)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, nc)
			if _, err := nc.Write(prefix[:]); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, func() string {
			if n := s.FrameBytesInFlight(); n != conns*16<<10 {
				return "frame bytes in flight " + strconv.FormatInt(n, 10) + ", want 16 KiB per connection"
			}
			return ""
		}, nil)
		// 16 KiB of frame and 16 KiB of read buffer per connection,
		// goroutines and sockets: some 3 MiB; the old reader held 1 GiB.
		grown := int64(heapBytes()) - int64(base)
		if grown > 16<<20 {
			t.Fatalf("round %d: heap grew by %d MiB with %d connections announcing 16 MiB", round, grown>>20, conns)
		}
		t.Logf("round %d: heap +%d KiB with %d connections announcing 16 MiB", round, grown>>10, conns)
		for _, nc := range open {
			nc.Close()
		}
		waitFor(t, 10*time.Second, func() string {
			if n := s.FrameBytesInFlight(); n != 0 {
				return "frame bytes in flight after close: " + strconv.FormatInt(n, 10)
			}
			return ""
		}, nil)
	}
	waitFor(t, 10*time.Second, func() string {
		if grown := int64(heapBytes()) - int64(base); grown > 4<<20 {
			return "heap still " + strconv.FormatInt(grown>>10, 10) + " KiB above the start after every connection closed"
		}
		return ""
	}, nil)
}

// When partly received frames reach WithFrameBytesInFlight, the connection
// that needs more is closed; short frames of other clients still pass.
func TestFrameBytesInFlightBound(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithFrameBytesInFlight(rocketmqtest.MinFrameBytesInFlight))
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], remoting.DefaultMaxFrameSize)
	chunk := make([]byte, 4<<20)
	closed := 0
	for range 8 { // 8 x 4 MiB of 16 MiB frames: 32 MiB wanted, 16 MiB allowed
		nc, err := net.Dial("tcp", s.Brokers()[0].Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(append(prefix[:], chunk...)); err != nil {
			closed++ // the server closed it mid-write: over the bound
		}
	}
	// A connection holding 4 MiB of a 16 MiB frame needs 8 MiB of buffer
	// for the next byte, so at most two fit in 16 MiB: the others are
	// closed as soon as their frames need more.
	waitFor(t, 10*time.Second, func() string {
		if n := s.FrameBytesInFlight(); n > rocketmqtest.MinFrameBytesInFlight+8*16<<10 {
			t.Fatalf("frame bytes in flight %d over the bound", n)
		}
		if n := s.Connections(); n > 2 {
			return strconv.Itoa(n) + " greedy connections open, want at most 2"
		}
		return ""
	}, nil)
	c := dial(t, s.Brokers()[0].Addr, nil)
	r := rawInvoke(t, c, remoting.GetMaxOffset, map[string]string{"topic": "x", "queueId": "0"}, nil)
	if r.Code != remoting.Success {
		t.Errorf("short request with the bound reached: %v", r)
	}
	t.Logf("%d of 8 greedy connections failed mid-write", closed)
}

// Fixed addresses: the server listens where it is told, and the routes
// announce those addresses.
func TestFixedAddresses(t *testing.T) {
	t.Parallel()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	ns, b0, b1 := free(), free(), free()
	s, err := rocketmqtest.Run(rocketmqtest.WithNameServerAddr(ns), rocketmqtest.WithBrokers(3), rocketmqtest.WithBrokerAddrs(b0, b1))
	if err != nil {
		t.Skipf("a freed port was taken again: %v", err) // another process raced us for it
	}
	defer s.Close()
	if s.NameServer() != ns || s.Brokers()[0].Addr != b0 || s.Brokers()[1].Addr != b1 || s.Brokers()[2].Addr == "" {
		t.Errorf("listening on %s %v, want %s [%s %s <free>]", s.NameServer(), s.Brokers(), ns, b0, b1)
	}
	// A second server on the same addresses fails with a clear error.
	if s2, err := rocketmqtest.Run(rocketmqtest.WithNameServerAddr(ns)); err == nil {
		s2.Close()
		t.Error("second server on a taken address started")
	}
}

// Connections beyond WithMaxConns, counted across the name server and the
// brokers, are closed at once; the ones open keep working, and a slot freed
// by a close is taken by the next connection.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t, rocketmqtest.WithMaxConns(2))
	ping := func(c *remoting.Conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Invoke(ctx, remoting.NewRequest(remoting.HeartBeat, nil, mustHeartbeatBody("probe@1", "g", "t")))
		return err
	}
	ns := dial(t, s.NameServer(), nil)
	broker := dial(t, s.Brokers()[0].Addr, nil)
	for _, c := range []*remoting.Conn{ns, broker} {
		if err := ping(c); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
	}
	for _, addr := range []string{s.NameServer(), s.Brokers()[0].Addr} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := nc.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: third connection read %d bytes, %v; want EOF (closed by the cap)", addr, n, err)
		}
		nc.Close()
	}
	if err := ping(broker); err != nil {
		t.Fatalf("open connection after refusals: %v", err)
	}
	ns.Close()
	waitFor(t, 10*time.Second, func() string {
		c, err := remoting.Dial(context.Background(), s.Brokers()[0].Addr, nil)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		if err := ping(c); err != nil {
			return "connection after a close: " + err.Error()
		}
		return ""
	}, nil)
}
