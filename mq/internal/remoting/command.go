// Package remoting speaks the RocketMQ remoting protocol: length-prefixed
// frames carrying a header (JSON, serialization type 0, or RocketMQ's binary
// layout, type 1) and an opaque body.
//
// The embedded broker in mq/rocketmqtest serves it, and mq/internal/admin
// builds on [Client] the admin queries rocketmq-client-go does not expose
// (online consumers of a group, another group's offsets).
//
//	c := remoting.NewClient(nil) // nil: this client answers no server-initiated requests
//	defer c.Close()
//	resp, err := c.Invoke(ctx, brokerAddr, remoting.NewRequest(remoting.GetConsumerListByGroup,
//		map[string]string{"consumerGroup": "orders"}, nil))
package remoting

import (
	"fmt"
)

// Flag bits of [Command.Flag].
const (
	// FlagResponse marks a response; requests have it clear.
	FlagResponse = 1 << 0
	// FlagOneway marks a request the peer must not answer.
	FlagOneway = 1 << 1
)

// Serialization types of the header, carried in the high byte of the header
// length field.
const (
	SerializeJSON     byte = 0
	SerializeRocketMQ byte = 1
)

// Command is one request or response.
type Command struct {
	Code      int16
	Language  string
	Version   int16
	Opaque    int32
	Flag      int32
	Remark    string
	ExtFields map[string]string
	Body      []byte

	// Serialize is the header serialization the command arrived in; a
	// response is written in the serialization of its request, as the Java
	// broker does.
	Serialize byte
}

// ProtocolVersion is the version this package puts on its commands: the
// version code of RocketMQ 4.9.4 (MQVersion.Version.V4_9_4.ordinal() is
// 401; 402 is 4.9.5-SNAPSHOT), the broker rocketmq-client-go v2.1.2 is
// measured against.
const ProtocolVersion = 401

// NewRequest returns a request command. ext may be nil.
func NewRequest(code int16, ext map[string]string, body []byte) *Command {
	if ext == nil {
		ext = map[string]string{}
	}
	return &Command{Code: code, Language: "GO", Version: ProtocolVersion, ExtFields: ext, Body: body}
}

// NewResponse returns the response to req with the given code and remark,
// carrying req's opaque so that the peer can match it.
func NewResponse(req *Command, code int16, remark string) *Command {
	return &Command{
		Code:      code,
		Language:  "JAVA",
		Version:   ProtocolVersion,
		Opaque:    req.Opaque,
		Flag:      FlagResponse,
		Remark:    remark,
		ExtFields: map[string]string{},
		Serialize: req.Serialize,
	}
}

// IsResponse reports whether c is a response.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether c is a request that wants no answer.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// String is for logs and test failures.
func (c *Command) String() string {
	kind := "request"
	if c.IsResponse() {
		kind = "response"
	}
	return fmt.Sprintf("%s code=%d opaque=%d flag=%d remark=%q ext=%v body=%dB",
		kind, c.Code, c.Opaque, c.Flag, c.Remark, c.ExtFields, len(c.Body))
}
