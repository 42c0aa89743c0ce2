package rocketmqtest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"time"
)

// Stored-message layout constants (MessageDecoder.java, v1 hosts).
const (
	messageMagicCode = 0xDAA320A7
	// Property separators (MessageDecoder.NAME_VALUE_SEPARATOR and
	// PROPERTY_SEPARATOR).
	nameValueSep = '\x01'
	propertySep  = '\x02'

	maxTopicLength    = 127
	maxPropertiesSize = 32767   // the stored length field is a signed short
	maxMessageSize    = 4 << 20 // maxMessageSize's default

	permWrite   = 1 << 1
	permRead    = 1 << 2
	permInherit = 1 << 0
	permRW      = permRead | permWrite

	// System topics.
	defaultTopic   = "TBW102"
	scheduleTopic  = "SCHEDULE_TOPIC_XXXX"
	retryPrefix    = "%RETRY%"
	dlqPrefix      = "%DLQ%"
	tbw102Queues   = 8 // defaultTopicQueueNums of the broker
	maxReconsume16 = 16

	// Properties the broker reads or writes.
	propTags          = "TAGS"
	propDelay         = "DELAY"
	propRealTopic     = "REAL_TOPIC"
	propRealQueueID   = "REAL_QID"
	propRetryTopic    = "RETRY_TOPIC"
	propOriginMsgID   = "ORIGIN_MESSAGE_ID"
	propWait          = "WAIT"
	propCluster       = "CLUSTER"
	propMsgRegion     = "MSG_REGION"
	propTraceSwitch   = "TRACE_ON"
	propUniqKey       = "UNIQ_KEY"
	propReconsumeTime = "RECONSUME_TIME"
	propMaxReconsume  = "MAX_RECONSUME_TIMES"

	sysFlagTransactionPrepared = 1 << 2
	sysFlagTransactionMask     = 3 << 2
)

// topic is one topic's config and queues on one broker.
type topic struct {
	name    string
	read    int
	write   int
	perm    int
	sysFlag int
	queues  []queue // one allocation per topic; never hold a *queue across b.mu
}

func newTopic(name string, queues, perm int) *topic {
	t := &topic{name: name, read: queues, write: queues, perm: perm}
	t.queues = make([]queue, queues)
	return t
}

// queue is one consume queue. msgs[i] has queue offset min+i: retention
// drops messages from the front and moves min up, as the real broker's file
// deletion moves a queue's min offset.
type queue struct {
	min     int64
	msgs    []stored
	bytes   int64 // sum of len(data) over msgs, for retention by bytes
	waiters []*pullWaiter
}

// maxOffset is the offset the next message gets.
func (q *queue) maxOffset() int64 { return q.min + int64(len(q.msgs)) }

// at returns the message at a queue offset in [min, maxOffset).
func (q *queue) at(off int64) stored { return q.msgs[off-q.min] }

// retain drops the oldest messages while the queue holds more than msgs
// messages or bytes bytes (0: no limit), keeping at least the newest one.
// Dropped entries are zeroed so that their bytes can be collected.
func (q *queue) retain(msgs int, bytes int64) {
	drop := 0
	for drop < len(q.msgs)-1 &&
		((msgs > 0 && len(q.msgs)-drop > msgs) || (bytes > 0 && q.bytes > bytes)) {
		q.bytes -= int64(len(q.msgs[drop].data))
		q.msgs[drop] = stored{}
		drop++
	}
	if drop > 0 {
		q.msgs = q.msgs[drop:]
		q.min += int64(drop)
	}
}

// physIndex returns the index in msgs of the message at commit log offset
// phys, or -1. Commit log offsets grow with queue offsets within a queue.
func (q *queue) physIndex(phys int64) int {
	lo, hi := 0, len(q.msgs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if q.msgs[mid].physOffset() < phys {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(q.msgs) && q.msgs[lo].physOffset() == phys {
		return lo
	}
	return -1
}

// message is a message on its way into the store.
type message struct {
	topic          string
	queueID        int
	flag           int32
	sysFlag        int32
	body           []byte
	props          string // key\x01value\x02... as on the wire
	bornTimestamp  int64
	bornHost       [8]byte // IPv4 + port, the stored form
	reconsumeTimes int32
}

// stored is a message in the store: only the exact bytes a pull returns.
// Everything else (offsets, store time, tags) is read back from them, so
// that a stored message costs its encoding and a slice header, and nothing
// the request that brought it in allocated stays reachable.
type stored struct {
	data []byte
}

// Offsets of fixed fields in the stored layout (MessageDecoder.encode).
const (
	posQueueID    = 12
	posFlag       = 16
	posPhysOffset = 28
	posSysFlag    = 36
	posBornTime   = 40
	posBornHost   = 48
	posStoreTime  = 56
	posReconsume  = 72
	posBodyLen    = 84
	posBody       = 88
)

func (s stored) physOffset() int64 { return int64(binary.BigEndian.Uint64(s.data[posPhysOffset:])) }
func (s stored) storeTime() int64  { return int64(binary.BigEndian.Uint64(s.data[posStoreTime:])) }

// sections returns the body, topic and properties.
func (s stored) sections() (body, topic, props []byte) {
	bl := int(binary.BigEndian.Uint32(s.data[posBodyLen:]))
	body = s.data[posBody : posBody+bl]
	rest := s.data[posBody+bl:]
	tl := int(rest[0])
	topic = rest[1 : 1+tl]
	rest = rest[1+tl:]
	pl := int(binary.BigEndian.Uint16(rest))
	return body, topic, rest[2 : 2+pl]
}

// tags returns the TAGS property without allocating.
func (s stored) tags() []byte {
	_, _, props := s.sections()
	return propertyBytes(props, propTags)
}

// message decodes the stored message back, for a send-back or a delayed
// delivery; its body aliases s.data.
func (s stored) message() message {
	body, topic, props := s.sections()
	m := message{
		topic:          string(topic),
		queueID:        int(int32(binary.BigEndian.Uint32(s.data[posQueueID:]))),
		flag:           int32(binary.BigEndian.Uint32(s.data[posFlag:])),
		sysFlag:        int32(binary.BigEndian.Uint32(s.data[posSysFlag:])),
		body:           body,
		props:          string(props),
		bornTimestamp:  int64(binary.BigEndian.Uint64(s.data[posBornTime:])),
		reconsumeTimes: int32(binary.BigEndian.Uint32(s.data[posReconsume:])),
	}
	copy(m.bornHost[:], s.data[posBornHost:])
	return m
}

// encodeStored lays the message out as MessageDecoder.encode does and
// primitive.DecodeMessage reads it, in one allocation of the exact size.
func encodeStored(m message, queueOffset, physOffset, storeTime int64, storeHost [8]byte) stored {
	props := m.props
	size := posBody + len(m.body) + 1 + len(m.topic) + 2 + len(props)
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = binary.BigEndian.AppendUint32(b, messageMagicCode)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(m.body)&0x7fffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(m.queueID))
	b = binary.BigEndian.AppendUint32(b, uint32(m.flag))
	b = binary.BigEndian.AppendUint64(b, uint64(queueOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(physOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(m.sysFlag))
	b = binary.BigEndian.AppendUint64(b, uint64(m.bornTimestamp))
	b = append(b, m.bornHost[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(storeTime))
	b = append(b, storeHost[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.reconsumeTimes))
	b = binary.BigEndian.AppendUint64(b, 0) // prepared transaction offset
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.body)))
	b = append(b, m.body...)
	b = append(b, byte(len(m.topic)))
	b = append(b, m.topic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(props)))
	b = append(b, props...)
	return stored{data: b}
}

// offsetMsgID is the message ID a broker hands out: store host and commit
// log offset, in upper-case hex (MessageDecoder.createMessageId).
func offsetMsgID(storeHost [8]byte, physOffset int64) string {
	var b [16]byte
	copy(b[:], storeHost[:])
	binary.BigEndian.PutUint64(b[8:], uint64(physOffset))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// hostBytes is an IPv4 socket address in the stored form.
func hostBytes(addr string) [8]byte {
	var out [8]byte
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return out
	}
	if ip := net.ParseIP(host).To4(); ip != nil {
		copy(out[:4], ip)
	}
	p, _ := strconv.Atoi(port)
	binary.BigEndian.PutUint32(out[4:], uint32(p))
	return out
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// property returns one property of a wire properties string.
func property(props, key string) string {
	for props != "" {
		var item string
		item, props, _ = strings.Cut(props, string(propertySep))
		k, v, ok := strings.Cut(item, string(nameValueSep))
		if ok && k == key {
			return v
		}
	}
	return ""
}

// propertyBytes is property on the stored bytes.
func propertyBytes(props []byte, key string) []byte {
	for len(props) > 0 {
		item := props
		if i := bytes.IndexByte(props, propertySep); i >= 0 {
			item, props = props[:i], props[i+1:]
		} else {
			props = nil
		}
		if i := bytes.IndexByte(item, nameValueSep); i >= 0 && string(item[:i]) == key {
			return item[i+1:]
		}
	}
	return nil
}

// parseProperties splits a wire properties string, keeping the order.
func parseProperties(props string) [][2]string {
	var out [][2]string
	for props != "" {
		var item string
		item, props, _ = strings.Cut(props, string(propertySep))
		if k, v, ok := strings.Cut(item, string(nameValueSep)); ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// formatProperties joins properties the way MessageDecoder does.
func formatProperties(kvs [][2]string) string {
	var sb strings.Builder
	for _, kv := range kvs {
		sb.WriteString(kv[0])
		sb.WriteByte(nameValueSep)
		sb.WriteString(kv[1])
		sb.WriteByte(propertySep)
	}
	return sb.String()
}

// withProperty sets key in a wire properties string.
func withProperty(props, key, value string) string {
	kvs := parseProperties(props)
	for i := range kvs {
		if kvs[i][0] == key {
			kvs[i][1] = value
			return formatProperties(kvs)
		}
	}
	return props + key + string(nameValueSep) + value + string(propertySep)
}

// withoutProperty removes key from a wire properties string.
func withoutProperty(props, key string) string {
	kvs := parseProperties(props)
	out := kvs[:0]
	for _, kv := range kvs {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	return formatProperties(out)
}

// validTopic is TopicValidator.validateTopic: letters, digits, '%', '|',
// '_' and '-', at most 127 characters.
func validTopic(t string) bool {
	if t == "" || len(t) > maxTopicLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '%' || c == '|' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}
