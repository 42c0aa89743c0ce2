package rocketmqtest_test

import (
	"context"
	"hash/crc32"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestSendKindsThenConsume(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "kinds"
	p := newProducer(t, s)
	ctx := context.Background()

	// sync
	res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("sync")).WithTag("tagA").WithKeys([]string{"k1"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != primitive.SendOK || res.RegionID != "DefaultRegion" || !res.TraceOn {
		t.Errorf("sync result %v: want SEND_OK, region DefaultRegion, trace on", res)
	}
	if !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(res.OffsetMsgID) {
		t.Errorf("offset msg id %q: want 32 upper-case hex characters", res.OffsetMsgID)
	}

	// async
	var wg sync.WaitGroup
	wg.Add(1)
	var asyncErr error
	err = p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
		defer wg.Done()
		if err == nil && r.Status != primitive.SendOK {
			err = context.DeadlineExceeded
		}
		asyncErr = err
	}, primitive.NewMessage(topic, []byte("async")))
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if asyncErr != nil {
		t.Fatalf("async send: %v", asyncErr)
	}

	// one-way
	if err := p.SendOneWay(ctx, primitive.NewMessage(topic, []byte("oneway"))); err != nil {
		t.Fatal(err)
	}

	// batch: one queue, contiguous offsets
	batch := []*primitive.Message{
		primitive.NewMessage(topic, []byte("batch-0")),
		primitive.NewMessage(topic, []byte("batch-1")),
		primitive.NewMessage(topic, []byte("batch-2")),
	}
	bres, err := p.SendSync(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(bres.OffsetMsgID, ",") + 1; got != 3 {
		t.Errorf("batch offset msg ids %q: want 3", bres.OffsetMsgID)
	}

	rec := new(rocketmqtest.Recorder)
	newPushConsumer(t, s, "kinds-group", topic, rec, nil)
	want := []string{"sync", "async", "oneway", "batch-0", "batch-1", "batch-2"}
	rec.WaitBodies(t, 10*time.Second, want...)

	for _, d := range rec.Deliveries() {
		m := d.Msg
		if got, want := m.GetProperty("CLUSTER"), rocketmqtest.DefaultClusterName; got != want {
			t.Errorf("%s: CLUSTER = %q, want %q", m.Body, got, want)
		}
		if want := int32(crc32.ChecksumIEEE(m.Body) & 0x7fffffff); m.BodyCRC != want {
			t.Errorf("%s: bodyCRC = %d, want %d", m.Body, m.BodyCRC, want)
		}
		isBatch := strings.HasPrefix(string(m.Body), "batch")
		if uniq := m.GetProperty("UNIQ_KEY"); (uniq == "") != isBatch {
			t.Errorf("%s: UNIQ_KEY = %q; batch messages carry none, others do", m.Body, uniq)
		}
		if isBatch && m.MsgId != m.OffsetMsgId {
			t.Errorf("%s: MsgId %q, want the offset msg id %q", m.Body, m.MsgId, m.OffsetMsgId)
		}
		if string(m.Body) == "sync" && (m.GetTags() != "tagA" || m.GetKeys() != "k1" || m.MsgId != res.MsgID) {
			t.Errorf("sync message: tags %q keys %q id %q, want tagA k1 %q", m.GetTags(), m.GetKeys(), m.MsgId, res.MsgID)
		}
	}

	// The batch sits in one queue at contiguous offsets.
	var offsets []int64
	queue := -1
	for _, m := range s.Messages(topic) {
		if strings.HasPrefix(string(m.Body), "batch") {
			offsets = append(offsets, m.QueueOffset)
			if queue != -1 && queue != m.Queue.QueueId {
				t.Errorf("batch split over queues %d and %d", queue, m.Queue.QueueId)
			}
			queue = m.Queue.QueueId
		}
	}
	if len(offsets) != 3 || offsets[1] != offsets[0]+1 || offsets[2] != offsets[0]+2 {
		t.Errorf("batch offsets %v, want 3 contiguous", offsets)
	}
	if queue != bres.MessageQueue.QueueId || offsets[0] != bres.QueueOffset {
		t.Errorf("batch stored at q%d/%d, send result says q%d/%d", queue, offsets[0], bres.MessageQueue.QueueId, bres.QueueOffset)
	}
}

func TestAutoCreatedTopicRoute(t *testing.T) {
	t.Parallel()
	s := rocketmqtest.RunT(t)
	p := newProducer(t, s)
	sendAll(t, p, "auto", []string{"x"})
	var got []int
	for _, q := range s.Queues("auto") {
		got = append(got, q.QueueId)
	}
	if diff := cmp.Diff(got, []int{0, 1, 2, 3}); diff != "" {
		t.Errorf("queues of an auto-created topic (-got +want):\n%s", diff)
	}
}
