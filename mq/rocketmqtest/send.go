package rocketmqtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// sendHeader is SendMessageRequestHeader. Code 310 and 320 carry it with
// one-letter keys (SendMessageRequestHeaderV2), code 10 with full names.
type sendHeader struct {
	producerGroup  string
	topic          string
	defaultTopic   string
	queueID        int
	sysFlag        int32
	bornTimestamp  int64
	flag           int32
	properties     string
	reconsumeTimes int32
	maxReconsume   int32
	batch          bool
}

var v2Keys = map[string]string{
	"producerGroup": "a", "topic": "b", "defaultTopic": "c", "defaultTopicQueueNums": "d",
	"queueId": "e", "sysFlag": "f", "bornTimestamp": "g", "flag": "h", "properties": "i",
	"reconsumeTimes": "j", "unitMode": "k", "maxReconsumeTimes": "l", "batch": "m",
}

func parseSendHeader(req *remoting.Command) (sendHeader, error) {
	_, v2 := req.ExtFields["b"]
	get := func(k string) string {
		if v2 {
			return req.ExtFields[v2Keys[k]]
		}
		return req.ExtFields[k]
	}
	num := func(k string, bits int, required bool) (int64, error) {
		v := get(k)
		if v == "" && !required {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("rocketmqtest: send header field %q: bad number %q", k, v)
		}
		return n, nil
	}
	var (
		h   sendHeader
		n   int64
		err error
	)
	h.producerGroup, h.topic, h.defaultTopic, h.properties = get("producerGroup"), get("topic"), get("defaultTopic"), get("properties")
	if n, err = num("queueId", 32, true); err != nil {
		return h, err
	}
	h.queueID = int(n)
	if n, err = num("sysFlag", 32, true); err != nil {
		return h, err
	}
	h.sysFlag = int32(n)
	if h.bornTimestamp, err = num("bornTimestamp", 64, true); err != nil {
		return h, err
	}
	if n, err = num("flag", 32, true); err != nil {
		return h, err
	}
	h.flag = int32(n)
	if n, err = num("reconsumeTimes", 32, false); err != nil {
		return h, err
	}
	h.reconsumeTimes = int32(n)
	if n, err = num("maxReconsumeTimes", 32, false); err != nil {
		return h, err
	}
	h.maxReconsume = int32(n)
	h.batch = get("batch") == "true" || req.Code == remoting.SendBatchMessage
	return h, nil
}

func (b *broker) handleSend(c *conn, req *remoting.Command) *remoting.Command {
	h, err := parseSendHeader(req)
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	if !validTopic(h.topic) {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("The specified topic[%s] contains illegal characters or is too long", h.topic))
	}
	if h.topic == defaultTopic || h.topic == scheduleTopic {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("The specified topic[%s] is conflict with system reserved words", h.topic))
	}
	if h.sysFlag&sysFlagTransactionMask != 0 {
		// Half messages need the transaction check-back machinery, which
		// this broker does not have; refusing is better than storing a
		// message the producer means to roll back.
		return remoting.NewResponse(req, remoting.NoPermission, "rocketmqtest: transactional messages are not supported")
	}
	if len(req.Body) > maxMessageSize {
		return remoting.NewResponse(req, remoting.MessageIllegal, fmt.Sprintf("the message body size over max value, MAX: %d", maxMessageSize))
	}
	var msgs []message
	born := hostBytes(c.remoteAddr())
	if req.Code == remoting.SendBatchMessage {
		if msgs, err = decodeBatch(req.Body); err != nil {
			return errorResponse(req, remoting.MessageIllegal, err)
		}
	} else {
		msgs = []message{{body: req.Body, props: h.properties, flag: h.flag}}
	}
	for i := range msgs {
		m := &msgs[i]
		m.topic = h.topic
		m.sysFlag = h.sysFlag
		m.bornTimestamp = h.bornTimestamp
		m.bornHost = born
		m.reconsumeTimes = h.reconsumeTimes
		m.props = withProperty(m.props, propCluster, b.srv.cfg.cluster)
		if len(m.props) > maxPropertiesSize {
			return remoting.NewResponse(req, remoting.MessageIllegal, fmt.Sprintf("the message properties size %d over max value %d", len(m.props), maxPropertiesSize))
		}
	}

	b.mu.Lock()
	t := b.topics[h.topic]
	if t == nil {
		t = b.autoCreateLocked(h)
	}
	if t == nil {
		b.mu.Unlock()
		return remoting.NewResponse(req, remoting.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", h.topic))
	}
	if t.perm&permWrite == 0 {
		b.mu.Unlock()
		return remoting.NewResponse(req, remoting.NoPermission, fmt.Sprintf("the topic[%s] sending message is forbidden", h.topic))
	}
	qid := h.queueID
	if qid < 0 {
		qid = rand.IntN(t.write)
	}
	if qid >= t.write {
		b.mu.Unlock()
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("request queueId[%d] is illegal, %s, Producer: %s", qid, h.topic, c.remoteAddr()))
	}
	ids := make([]string, 0, len(msgs))
	first := int64(-1)
	for _, m := range msgs {
		m.queueID = qid
		qoff, phys := b.putLocked(m, !h.batch)
		if first < 0 {
			first = qoff
		}
		ids = append(ids, offsetMsgID(b.storeHost, phys))
	}
	b.mu.Unlock()

	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.ExtFields["msgId"] = strings.Join(ids, ",")
	resp.ExtFields["queueId"] = strconv.Itoa(qid)
	resp.ExtFields["queueOffset"] = strconv.FormatInt(first, 10)
	resp.ExtFields[propMsgRegion] = "DefaultRegion"
	resp.ExtFields[propTraceSwitch] = "true"
	return resp
}

// autoCreateLocked creates a topic a producer sends to for the first time,
// if autoCreateTopicEnable is on and the producer names an existing default
// topic; retry topics are always created, as for a send-back. b.mu is held.
func (b *broker) autoCreateLocked(h sendHeader) *topic {
	if strings.HasPrefix(h.topic, retryPrefix) {
		return b.topicLocked(h.topic, true, 1, permRW)
	}
	if !b.srv.cfg.autoCreate {
		return nil
	}
	def := b.topics[h.defaultTopic]
	if def == nil || def.perm&permInherit == 0 {
		return nil
	}
	return b.topicLocked(h.topic, true, b.srv.cfg.queues, def.perm&^permInherit)
}

// decodeBatch splits a batch body as MessageDecoder.decodeMessages does:
// TOTALSIZE MAGIC BODYCRC FLAG BODYLEN BODY PROPLEN(2) PROPERTIES, repeated.
func decodeBatch(body []byte) ([]message, error) {
	var msgs []message
	for len(body) > 0 {
		if len(body) < 20 {
			return nil, errors.New("rocketmqtest: truncated batch message header")
		}
		total := int64(int32(binary.BigEndian.Uint32(body)))
		if total < 22 || total > int64(len(body)) {
			return nil, fmt.Errorf("rocketmqtest: batch message size %d outside [22, %d]", total, len(body))
		}
		m := body[:total]
		body = body[total:]
		flag := int32(binary.BigEndian.Uint32(m[12:]))
		bl := int64(int32(binary.BigEndian.Uint32(m[16:])))
		if bl < 0 || 20+bl+2 > total {
			return nil, fmt.Errorf("rocketmqtest: batch message body length %d exceeds message of %d bytes", bl, total)
		}
		payload := m[20 : 20+bl]
		pl := int64(binary.BigEndian.Uint16(m[20+bl:]))
		if 20+bl+2+pl != total {
			return nil, fmt.Errorf("rocketmqtest: batch message properties length %d does not fit message of %d bytes", pl, total)
		}
		msgs = append(msgs, message{flag: flag, body: payload, props: string(m[22+bl : 22+bl+pl])})
	}
	if len(msgs) == 0 {
		return nil, errors.New("rocketmqtest: empty batch")
	}
	return msgs, nil
}
