package rocketmqtest

import (
	"strconv"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// offsetKey is ConsumerOffsetManager's "topic@group" key.
func offsetKey(topic, group string) string { return topic + "@" + group }

func (b *broker) commitOffsetLocked(group, topic string, queueID int, offset int64) {
	k := offsetKey(topic, group)
	m := b.offsets[k]
	if m == nil {
		m = map[int]int64{}
		b.offsets[k] = m
	}
	m[queueID] = offset
}

func (b *broker) handleQueryOffset(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	topicName := ext(req, "topic")
	b.mu.Lock()
	off, ok := b.offsets[offsetKey(topicName, ext(req, "consumerGroup"))][int(qid)]
	var minOff int64
	if q := b.queueLocked(topicName, qid); q != nil {
		minOff = q.min
	}
	b.mu.Unlock()
	if !ok {
		// A group that never committed reads back 0 while the queue's
		// first message is still in memory, which is always the case
		// here unless retention deleted it (see ROCKETMQ-FACTS: code 0,
		// not 22 QUERY_NOT_FOUND). Once offset 0 is gone, the real
		// broker answers 22 (ConsumerManageProcessor.queryConsumerOffset).
		if minOff > 0 {
			return remoting.NewResponse(req, remoting.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
		}
		off = 0
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.ExtFields["offset"] = strconv.FormatInt(off, 10)
	return resp
}

func (b *broker) handleUpdateOffset(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	off, err := extInt(req, "commitOffset")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	b.mu.Lock()
	b.commitOffsetLocked(ext(req, "consumerGroup"), ext(req, "topic"), int(qid), off)
	b.mu.Unlock()
	return remoting.NewResponse(req, remoting.Success, "")
}

// queueLocked returns a queue or nil. b.mu is held.
func (b *broker) queueLocked(topicName string, qid int64) *queue {
	t := b.topics[topicName]
	if t == nil || qid < 0 || qid >= int64(len(t.queues)) {
		return nil
	}
	return &t.queues[qid]
}

func offsetResponse(req *remoting.Command, off int64) *remoting.Command {
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.ExtFields["offset"] = strconv.FormatInt(off, 10)
	return resp
}

func (b *broker) handleMaxOffset(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var off int64
	if q := b.queueLocked(ext(req, "topic"), qid); q != nil {
		off = q.maxOffset()
	}
	return offsetResponse(req, off)
}

func (b *broker) handleMinOffset(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var off int64
	if q := b.queueLocked(ext(req, "topic"), qid); q != nil {
		off = q.min
	}
	return offsetResponse(req, off)
}

func (b *broker) handleSearchOffset(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	ts, err := extInt(req, "timestamp")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queueLocked(ext(req, "topic"), qid)
	if q == nil {
		return offsetResponse(req, 0)
	}
	// The first message stored at or after ts; the max offset if none.
	lo, hi := 0, len(q.msgs)
	for lo < hi {
		mid := (lo + hi) / 2
		if q.msgs[mid].storeTime() < ts {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return offsetResponse(req, q.min+int64(lo))
}

func (b *broker) handleEarliestStoreTime(req *remoting.Command) *remoting.Command {
	qid, err := extInt(req, "queueId")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ts int64
	if q := b.queueLocked(ext(req, "topic"), qid); q != nil && len(q.msgs) > 0 {
		ts = q.msgs[0].storeTime()
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.ExtFields["timestamp"] = strconv.FormatInt(ts, 10)
	return resp
}
