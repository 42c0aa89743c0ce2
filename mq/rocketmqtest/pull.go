package rocketmqtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// Pull request sysFlag bits (PullSysFlag.java).
const (
	pullFlagCommitOffset = 1 << 0
	pullFlagSuspend      = 1 << 1
	pullFlagSubscription = 1 << 2
)

const (
	// maxPullBatch caps the messages of one pull whatever maxMsgNums asks:
	// the broker's maxTransferCountOnMessageInMemory. A consumer with
	// WithPullBatchSize(100) gets 32 at a time from a real broker, so it
	// does here.
	maxPullBatch = 32
	// maxPullBytes caps one pull response: maxTransferBytesOnMessageInMemory.
	// The first message is always returned, however large.
	maxPullBytes = 256 << 10
	// maxSuspend caps a held pull whatever the client asks for.
	maxSuspend = 60 * time.Second
)

type pullHeader struct {
	group        string
	topic        string
	queueID      int
	offset       int64
	maxNums      int
	sysFlag      int64
	commitOffset int64
	suspend      time.Duration
	subscription string
	exprType     string
}

func parsePullHeader(req *remoting.Command) (pullHeader, error) {
	var (
		h   pullHeader
		n   int64
		err error
	)
	h.group, h.topic = ext(req, "consumerGroup"), ext(req, "topic")
	h.subscription, h.exprType = ext(req, "subscription"), ext(req, "expressionType")
	if n, err = extInt(req, "queueId"); err != nil {
		return h, err
	}
	h.queueID = int(n)
	if h.offset, err = extInt(req, "queueOffset"); err != nil {
		return h, err
	}
	if n, err = extInt(req, "maxMsgNums"); err != nil {
		return h, err
	}
	h.maxNums = int(min(max(n, 0), maxPullBatch))
	if h.sysFlag, err = extInt(req, "sysFlag"); err != nil {
		return h, err
	}
	if h.commitOffset, err = extInt(req, "commitOffset"); err != nil {
		return h, err
	}
	if n, err = extInt(req, "suspendTimeoutMillis"); err != nil {
		return h, err
	}
	h.suspend = min(time.Duration(max(n, 0))*time.Millisecond, maxSuspend)
	return h, nil
}

// pullWaiter is a pull held at the end of its queue (long polling).
type pullWaiter struct {
	ch chan struct{}
}

func (w *pullWaiter) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (b *broker) handlePull(c *conn, req *remoting.Command) *remoting.Command {
	h, err := parsePullHeader(req)
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	if h.group == "" || h.topic == "" {
		return remoting.NewResponse(req, remoting.SystemError, "rocketmqtest: pull without consumerGroup or topic")
	}
	resp, w := b.pull(req, h, true)
	if w == nil {
		return resp
	}
	// Held: answer when a message arrives in the queue or the suspend time
	// runs out, whichever comes first, as PullRequestHoldService does.
	b.srv.wg.Add(1)
	go func() {
		defer b.srv.wg.Done()
		t := time.NewTimer(h.suspend)
		defer t.Stop()
		select {
		case <-w.ch:
		case <-t.C:
		case <-c.done:
			b.forgetWaiter(h, w)
			return
		case <-b.srv.done:
			return
		}
		b.forgetWaiter(h, w)
		resp, _ := b.pull(req, h, false)
		if !req.IsOneway() {
			c.send(resp)
		}
	}()
	return nil
}

func (b *broker) forgetWaiter(h pullHeader, w *pullWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[h.topic]
	if t == nil || h.queueID >= len(t.queues) {
		return
	}
	q := &t.queues[h.queueID]
	for i, x := range q.waiters {
		if x == w {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// pull answers a pull, or, if nothing is there and the request may be held,
// registers a waiter on the queue and returns it instead. first is false
// when a held pull is re-run (brokerAllowSuspend=false in
// PullMessageProcessor): it is then neither held again nor does it commit
// its offset a second time.
func (b *broker) pull(req *remoting.Command, h pullHeader, first bool) (*remoting.Command, *pullWaiter) {
	canSuspend := first && h.sysFlag&pullFlagSuspend != 0 && h.suspend > 0
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[h.topic]
	if t == nil {
		return remoting.NewResponse(req, remoting.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", h.topic)), nil
	}
	if t.perm&permRead == 0 {
		return remoting.NewResponse(req, remoting.NoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden", h.topic)), nil
	}
	if h.queueID < 0 || h.queueID >= t.read {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d]", h.queueID, h.topic, t.read)), nil
	}
	if h.sysFlag&pullFlagCommitOffset != 0 && first {
		b.commitOffsetLocked(h.group, h.topic, h.queueID, h.commitOffset)
	}
	tags := b.tagFilterLocked(h)
	q := &t.queues[h.queueID]
	maxOff := q.maxOffset()
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.ExtFields["minOffset"] = strconv.FormatInt(q.min, 10)
	resp.ExtFields["maxOffset"] = strconv.FormatInt(maxOff, 10)
	resp.ExtFields["suggestWhichBrokerId"] = "0"
	next := h.offset
	switch {
	case maxOff == 0:
		// NO_MESSAGE_IN_QUEUE
		next = 0
		if h.offset != 0 {
			resp.Code = remoting.PullOffsetMoved
		} else {
			resp.Code = remoting.PullNotFound
		}
	case h.offset < q.min:
		// OFFSET_TOO_SMALL: retention deleted what the consumer asks for;
		// a master moves it to the min offset. The v2.1.2 push consumer
		// then waits 10 s, stores that offset and re-pulls from it after
		// its next rebalance.
		next, resp.Code = q.min, remoting.PullOffsetMoved
	case h.offset == maxOff:
		// OFFSET_OVERFLOW_ONE
		resp.Code = remoting.PullNotFound
	case h.offset > maxOff:
		// OFFSET_OVERFLOW_BADLY: 4.9.4 answers next=max.
		next, resp.Code = maxOff, remoting.PullOffsetMoved
	default:
		var body []byte
		n := 0
		i := h.offset
		for ; i < maxOff && n < h.maxNums; i++ {
			s := q.at(i)
			if tags != nil && !tags[string(s.tags())] {
				continue
			}
			if n > 0 && len(body)+len(s.data) > maxPullBytes {
				break
			}
			body = append(body, s.data...)
			n++
		}
		next = i
		if n == 0 {
			// Everything in range was filtered out: NO_MATCHED_MESSAGE.
			resp.Code = remoting.PullRetryImmediately
		} else {
			resp.Body = body
		}
	}
	resp.ExtFields["nextBeginOffset"] = strconv.FormatInt(next, 10)
	if resp.Code == remoting.PullNotFound && canSuspend {
		w := &pullWaiter{ch: make(chan struct{}, 1)}
		q.waiters = append(q.waiters, w)
		return nil, w
	}
	return resp, nil
}

// tagFilterLocked returns the tags the pull accepts, or nil for all. The
// subscription comes from the request if it carries one, else from the
// group's heartbeat; SQL92 expressions are not evaluated (everything
// passes). b.mu is held.
func (b *broker) tagFilterLocked(h pullHeader) map[string]bool {
	expr, typ := h.subscription, h.exprType
	if h.sysFlag&pullFlagSubscription == 0 || expr == "" {
		g := b.groups[h.group]
		if g == nil {
			return nil
		}
		sub, ok := g.subs[h.topic]
		if !ok {
			return nil
		}
		expr, typ = sub.SubString, sub.ExpressionType
	}
	if typ != "" && typ != "TAG" {
		return nil
	}
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	tags := map[string]bool{}
	for tag := range strings.SplitSeq(expr, "||") {
		if tag = strings.TrimSpace(tag); tag != "" {
			tags[tag] = true
		}
	}
	return tags
}
