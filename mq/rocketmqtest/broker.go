package rocketmqtest

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// broker is one master broker. One mutex guards its whole state: the
// critical sections are short, and a single lock makes "store the message,
// wake the held pulls" and "drop the channel, notify the group" atomic.
type broker struct {
	srv       *Server
	name      string
	addr      string
	storeHost [8]byte
	ep        *endpoint

	mu        sync.Mutex
	topics    map[string]*topic
	commitLog int64             // next commit log offset
	groups    map[string]*group // consumer groups with live channels
	subGroups map[string]bool   // subscription group configs (autoCreateSubscriptionGroup)
	producers map[string]map[*conn]*channel
	offsets   map[string]map[int]int64 // "topic@group" -> queue -> offset
	locks     map[string]map[lockKey]*lockEntry
	delayed   delayHeap
	delayWake chan struct{}
}

func newBroker(s *Server, name, addr string) (*broker, error) {
	b := &broker{
		srv:       s,
		name:      name,
		topics:    map[string]*topic{},
		groups:    map[string]*group{},
		subGroups: map[string]bool{},
		producers: map[string]map[*conn]*channel{},
		offsets:   map[string]map[int]int64{},
		locks:     map[string]map[lockKey]*lockEntry{},
		delayWake: make(chan struct{}, 1),
	}
	ep, err := newEndpoint(s, addr, b.handle, b.connClosed)
	if err != nil {
		return nil, err
	}
	b.ep = ep
	b.addr = ep.addr()
	b.storeHost = hostBytes(b.addr)
	if s.cfg.autoCreate {
		// autoCreateTopicEnable registers TBW102, the route producers borrow
		// for topics that do not exist yet.
		b.topics[defaultTopic] = newTopic(defaultTopic, tbw102Queues, permRW|permInherit)
	}
	b.topics[scheduleTopic] = newTopic(scheduleTopic, len(s.cfg.delayLevels), permRW)
	return b, nil
}

func (b *broker) start() {
	b.srv.wg.Add(3)
	go b.ep.serve()
	go b.runDelayed()
	go b.runHousekeeping()
}

// handle dispatches a request by code. Unknown codes get
// REQUEST_CODE_NOT_SUPPORTED, as from a real broker, so that a client never
// waits for a timeout.
func (b *broker) handle(c *conn, req *remoting.Command) *remoting.Command {
	switch req.Code {
	case remoting.SendMessage, remoting.SendMessageV2, remoting.SendBatchMessage:
		return b.handleSend(c, req)
	case remoting.PullMessage:
		return b.handlePull(c, req)
	case remoting.QueryConsumerOffset:
		return b.handleQueryOffset(req)
	case remoting.UpdateConsumerOffset:
		return b.handleUpdateOffset(req)
	case remoting.GetMaxOffset:
		return b.handleMaxOffset(req)
	case remoting.GetMinOffset:
		return b.handleMinOffset(req)
	case remoting.SearchOffsetByTimestamp:
		return b.handleSearchOffset(req)
	case remoting.GetEarliestMsgStoreTime:
		return b.handleEarliestStoreTime(req)
	case remoting.HeartBeat:
		return b.handleHeartbeat(c, req)
	case remoting.UnregisterClient:
		return b.handleUnregister(c, req)
	case remoting.GetConsumerListByGroup:
		return b.handleConsumerList(req)
	case remoting.ConsumerSendMsgBack:
		return b.handleSendBack(c, req)
	case remoting.LockBatchMQ:
		return b.handleLock(req)
	case remoting.UnlockBatchMQ:
		return b.handleUnlock(req)
	case remoting.QueryTopicConsumeByWho:
		return b.handleConsumeByWho(req)
	case remoting.GetAllSubscriptionGroupConfig:
		return b.handleSubscriptionGroups(req)
	case remoting.CreateTopic:
		return b.handleCreateTopic(req)
	case remoting.DeleteTopicInBroker:
		return b.handleDeleteTopic(req)
	}
	return remoting.NewResponse(req, remoting.RequestCodeNotSupported,
		fmt.Sprintf("rocketmqtest: request code %d not supported", req.Code))
}

// topicLocked returns a topic, creating it if create is set. b.mu is held.
func (b *broker) topicLocked(name string, create bool, queues, perm int) *topic {
	t := b.topics[name]
	if t == nil && create {
		t = newTopic(name, queues, perm)
		b.topics[name] = t
	}
	return t
}

// createTopic creates a topic, or widens an existing one to queues.
func (b *broker) createTopic(name string, queues, perm int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		b.topics[name] = newTopic(name, queues, perm)
		return
	}
	for len(t.queues) < queues {
		t.queues = append(t.queues, queue{})
	}
	t.read, t.write, t.perm = queues, queues, perm
}

// putLocked appends m to its queue, or to SCHEDULE_TOPIC_XXXX if it asks
// for a delay, applies retention and wakes the pulls held on that queue. It
// returns the message's queue and commit log offsets. b.mu is held.
func (b *broker) putLocked(m message, allowDelay bool) (queueOffset, physOffset int64) {
	var due time.Time
	if allowDelay && m.sysFlag&sysFlagTransactionMask == 0 {
		if lvl, err := strconv.Atoi(property(m.props, propDelay)); err == nil && lvl > 0 {
			levels := b.srv.cfg.delayLevels
			lvl = min(lvl, len(levels))
			m.props = withProperty(m.props, propRealTopic, m.topic)
			m.props = withProperty(m.props, propRealQueueID, strconv.Itoa(m.queueID))
			m.topic, m.queueID = scheduleTopic, lvl-1
			due = time.Now().Add(levels[lvl-1])
		}
	}
	t := b.topics[m.topic]
	q := &t.queues[m.queueID]
	queueOffset, physOffset = q.maxOffset(), b.commitLog
	s := encodeStored(m, queueOffset, physOffset, nowMillis(), b.storeHost)
	b.commitLog += int64(len(s.data))
	q.msgs = append(q.msgs, s)
	q.bytes += int64(len(s.data))
	q.retain(b.srv.cfg.retainMsgs, b.srv.cfg.retainBytes)
	for _, w := range q.waiters {
		w.wake()
	}
	q.waiters = q.waiters[:0]
	if !due.IsZero() {
		heap.Push(&b.delayed, delayedMsg{due: due, msg: s})
		select {
		case b.delayWake <- struct{}{}:
		default:
		}
	}
	return queueOffset, physOffset
}

// findPhysLocked returns the message at a commit log offset, looking in the
// hinted topics first, then everywhere. b.mu is held.
func (b *broker) findPhysLocked(phys int64, hints ...string) (stored, bool) {
	for _, name := range hints {
		if t := b.topics[name]; t != nil {
			for qi := range t.queues {
				if i := t.queues[qi].physIndex(phys); i >= 0 {
					return t.queues[qi].msgs[i], true
				}
			}
		}
	}
	for _, t := range b.topics {
		for qi := range t.queues {
			if i := t.queues[qi].physIndex(phys); i >= 0 {
				return t.queues[qi].msgs[i], true
			}
		}
	}
	return stored{}, false
}

// runDelayed moves delayed messages to their real topic when due, as
// ScheduleMessageService does.
func (b *broker) runDelayed() {
	defer b.srv.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b.mu.Lock()
		now := time.Now()
		for b.delayed.Len() > 0 && !b.delayed[0].due.After(now) {
			d := heap.Pop(&b.delayed).(delayedMsg)
			b.deliverDelayedLocked(d.msg)
		}
		wait := time.Hour
		if b.delayed.Len() > 0 {
			wait = time.Until(b.delayed[0].due)
		}
		b.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-b.delayWake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-b.srv.done:
			return
		}
	}
}

// deliverDelayedLocked stores a due message in its real topic and queue. Its
// properties keep DELAY, REAL_TOPIC and REAL_QID, as a 4.9.4 broker's do.
func (b *broker) deliverDelayedLocked(s stored) {
	m := s.message()
	m.topic = property(m.props, propRealTopic)
	qid, err := strconv.Atoi(property(m.props, propRealQueueID))
	t := b.topics[m.topic]
	if err != nil || t == nil || qid < 0 || qid >= len(t.queues) {
		b.srv.logf("rocketmqtest: %s: dropping delayed message for %q queue %d: no such queue", b.name, m.topic, qid)
		return
	}
	m.queueID = qid
	m.props = withProperty(m.props, propWait, "false")
	b.putLocked(m, false)
}

type delayedMsg struct {
	due time.Time
	msg stored
}

type delayHeap []delayedMsg

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(delayedMsg)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// ext returns an ext field, or "" when missing.
func ext(req *remoting.Command, key string) string { return req.ExtFields[key] }

func extInt(req *remoting.Command, key string) (int64, error) {
	v, ok := req.ExtFields[key]
	if !ok {
		return 0, fmt.Errorf("rocketmqtest: missing header field %q", key)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rocketmqtest: header field %q: bad number %q", key, v)
	}
	return n, nil
}

func errorResponse(req *remoting.Command, code int16, err error) *remoting.Command {
	return remoting.NewResponse(req, code, err.Error())
}

// handleCreateTopic is UPDATE_AND_CREATE_TOPIC, what admin tools send.
func (b *broker) handleCreateTopic(req *remoting.Command) *remoting.Command {
	name := ext(req, "topic")
	if !validTopic(name) || name == defaultTopic || name == scheduleTopic {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("The specified topic[%s] is invalid or reserved", name))
	}
	read, err := extInt(req, "readQueueNums")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	write, err := extInt(req, "writeQueueNums")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	perm, err := extInt(req, "perm")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	if read < 1 || write < 1 || read > MaxQueues || write > MaxQueues {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: queue counts %d/%d outside [1, %d]", read, write, MaxQueues))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		t = newTopic(name, 0, 0)
		b.topics[name] = t
	}
	for len(t.queues) < int(max(read, write)) {
		t.queues = append(t.queues, queue{})
	}
	t.read, t.write, t.perm = int(read), int(write), int(perm)
	return remoting.NewResponse(req, remoting.Success, "")
}

// handleDeleteTopic is DELETE_TOPIC_IN_BROKER; the topic's messages and
// offsets go with it.
func (b *broker) handleDeleteTopic(req *remoting.Command) *remoting.Command {
	name := ext(req, "topic")
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[name]; t != nil {
		for qi := range t.queues {
			q := &t.queues[qi]
			for _, w := range q.waiters {
				w.wake()
			}
			q.waiters = nil
		}
		delete(b.topics, name)
	}
	prefix := name + "@"
	for k := range b.offsets {
		if strings.HasPrefix(k, prefix) {
			delete(b.offsets, k)
		}
	}
	return remoting.NewResponse(req, remoting.Success, "")
}
