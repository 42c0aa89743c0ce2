package rocketmqtest

import (
	"fmt"
	"strconv"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// handleSendBack is CONSUMER_SEND_MSG_BACK: the consumer failed a message,
// so the broker stores a copy in the group's retry topic, delayed by the
// delay level, or in its dead-letter topic once the reconsume count is used
// up.
func (b *broker) handleSendBack(c *conn, req *remoting.Command) *remoting.Command {
	group := ext(req, "group")
	phys, err := extInt(req, "offset")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	level, err := extInt(req, "delayLevel")
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	maxTimes := int64(maxReconsume16)
	if v := ext(req, "maxReconsumeTimes"); v != "" {
		if maxTimes, err = strconv.ParseInt(v, 10, 32); err != nil {
			return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: bad maxReconsumeTimes %q", v))
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.subGroups[group] {
		return remoting.NewResponse(req, 26, fmt.Sprintf("subscription group not exist, %s", group))
	}
	orig, ok := b.findPhysLocked(phys, ext(req, "originTopic"), retryPrefix+group)
	if !ok {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("look message by offset failed, %d", phys))
	}
	m := orig.message()
	if property(m.props, propRetryTopic) == "" {
		m.props = withProperty(m.props, propRetryTopic, m.topic)
	}
	m.props = withProperty(m.props, propWait, "false")
	if property(m.props, propOriginMsgID) == "" {
		m.props = withProperty(m.props, propOriginMsgID, offsetMsgID(b.storeHost, phys))
	}
	if int64(m.reconsumeTimes) >= maxTimes || level < 0 {
		m.topic = dlqPrefix + group
		b.topicLocked(m.topic, true, 1, permRW)
		m.props = withoutProperty(m.props, propDelay)
	} else {
		m.topic = retryPrefix + group
		b.topicLocked(m.topic, true, 1, permRW)
		if level == 0 {
			level = 3 + int64(m.reconsumeTimes)
		}
		m.props = withProperty(m.props, propDelay, strconv.FormatInt(level, 10))
	}
	m.queueID = 0
	m.reconsumeTimes++
	b.putLocked(m, true)
	return remoting.NewResponse(req, remoting.Success, "")
}
