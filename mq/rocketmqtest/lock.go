package rocketmqtest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// lockMaxLive is REBALANCE_LOCK_MAX_LIVE_TIME: a queue lock not renewed
// for this long may be taken by another client.
const lockMaxLive = 60 * time.Second

type lockKey struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

type lockEntry struct {
	clientID string
	last     time.Time
}

type lockBatchBody struct {
	ConsumerGroup string    `json:"consumerGroup"`
	ClientID      string    `json:"clientId"`
	MQSet         []lockKey `json:"mqSet"`
}

// handleLock is LOCK_BATCH_MQ for orderly consumers: it grants each queue
// that is free, already held by the caller, or whose lock expired.
func (b *broker) handleLock(req *remoting.Command) *remoting.Command {
	var body lockBatchBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: bad lock body: %v", err))
	}
	now := time.Now()
	ok := []lockKey{}
	b.mu.Lock()
	m := b.locks[body.ConsumerGroup]
	if m == nil {
		m = map[lockKey]*lockEntry{}
		b.locks[body.ConsumerGroup] = m
	}
	for _, mq := range body.MQSet {
		e := m[mq]
		if e == nil || e.clientID == body.ClientID || now.Sub(e.last) > lockMaxLive {
			m[mq] = &lockEntry{clientID: body.ClientID, last: now}
			ok = append(ok, mq)
		}
	}
	b.mu.Unlock()
	out, err := json.Marshal(struct {
		LockOKMQSet []lockKey `json:"lockOKMQSet"`
	}{ok})
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = out
	return resp
}

// handleUnlock is UNLOCK_BATCH_MQ: it releases the caller's own locks.
func (b *broker) handleUnlock(req *remoting.Command) *remoting.Command {
	var body lockBatchBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: bad unlock body: %v", err))
	}
	b.mu.Lock()
	if m := b.locks[body.ConsumerGroup]; m != nil {
		for _, mq := range body.MQSet {
			if e := m[mq]; e != nil && e.clientID == body.ClientID {
				delete(m, mq)
			}
		}
	}
	b.mu.Unlock()
	return remoting.NewResponse(req, remoting.Success, "")
}
