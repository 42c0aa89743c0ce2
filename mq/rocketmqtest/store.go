package rocketmqtest

import (
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
	queues  []*queue
}

func newTopic(name string, queues, perm int) *topic {
	t := &topic{name: name, read: queues, write: queues, perm: perm}
	t.queues = make([]*queue, queues)
	for i := range t.queues {
		t.queues[i] = &queue{}
	}
	return t
}

// queue is one consume queue; a message's queue offset is its index.
type queue struct {
	msgs    []*stored
	waiters []*pullWaiter
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

// stored is a message in the store, kept both parsed and in the exact bytes
// a pull returns.
type stored struct {
	message
	queueOffset int64
	physOffset  int64
	storeTime   int64 // ms
	tags        string
	data        []byte
}

// encode lays the message out as MessageDecoder.encode does and
// primitive.DecodeMessage reads it.
func (m *stored) encode(storeHost [8]byte) {
	props := m.props
	size := 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + len(m.body) + 1 + len(m.topic) + 2 + len(props)
	b := make([]byte, 0, size)
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = binary.BigEndian.AppendUint32(b, messageMagicCode)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(m.body)&0x7fffffff)
	b = binary.BigEndian.AppendUint32(b, uint32(m.queueID))
	b = binary.BigEndian.AppendUint32(b, uint32(m.flag))
	b = binary.BigEndian.AppendUint64(b, uint64(m.queueOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(m.physOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(m.sysFlag))
	b = binary.BigEndian.AppendUint64(b, uint64(m.bornTimestamp))
	b = append(b, m.bornHost[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.storeTime))
	b = append(b, storeHost[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.reconsumeTimes))
	b = binary.BigEndian.AppendUint64(b, 0) // prepared transaction offset
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.body)))
	b = append(b, m.body...)
	b = append(b, byte(len(m.topic)))
	b = append(b, m.topic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(props)))
	b = append(b, props...)
	m.data = b
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
