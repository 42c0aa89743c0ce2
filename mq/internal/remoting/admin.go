package remoting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ResponseError is a response with a code other than Success.
type ResponseError struct {
	RequestCode  int16
	ResponseCode int16
	Remark       string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("remoting: request code %d answered code %d: %s", e.RequestCode, e.ResponseCode, e.Remark)
}

// ResponseCode returns the response code carried by err, if it is or wraps
// a *ResponseError.
func ResponseCode(err error) (int16, bool) {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.ResponseCode, true
	}
	return 0, false
}

// call invokes and turns a non-success response into a *ResponseError.
func (c *Client) call(ctx context.Context, addr string, code int16, ext map[string]string) (*Command, error) {
	resp, err := c.Invoke(ctx, addr, NewRequest(code, ext, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != Success {
		return resp, &ResponseError{RequestCode: code, ResponseCode: resp.Code, Remark: resp.Remark}
	}
	return resp, nil
}

func (c *Client) offsetCall(ctx context.Context, addr string, code int16, ext map[string]string) (int64, error) {
	resp, err := c.call(ctx, addr, code, ext)
	if err != nil {
		return 0, err
	}
	v := resp.ExtFields["offset"]
	off, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("remoting: request code %d: bad offset %q", code, v)
	}
	return off, nil
}

// QueueData is one broker's share of a topic in a route.
type QueueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

// BrokerData is one broker set in a route: addresses by broker ID, 0 being
// the master.
type BrokerData struct {
	Cluster     string           `json:"cluster"`
	BrokerName  string           `json:"brokerName"`
	BrokerAddrs map[int64]string `json:"brokerAddrs"`
}

// Route is a topic's route (TopicRouteData).
type Route struct {
	QueueDatas  []QueueData  `json:"queueDatas"`
	BrokerDatas []BrokerData `json:"brokerDatas"`
}

// MasterAddrs maps the broker names hosting the topic to their master
// addresses.
func (r *Route) MasterAddrs() map[string]string {
	out := map[string]string{}
	for _, b := range r.BrokerDatas {
		if a := b.BrokerAddrs[0]; a != "" {
			out[b.BrokerName] = a
		}
	}
	return out
}

// TopicRoute asks a name server for a topic's route
// (GET_ROUTEINFO_BY_TOPIC). A missing topic gives a *ResponseError with
// code TopicNotExist.
func (c *Client) TopicRoute(ctx context.Context, nameServer, topic string) (*Route, error) {
	resp, err := c.call(ctx, nameServer, GetRouteInfoByTopic, map[string]string{"topic": topic})
	if err != nil {
		return nil, err
	}
	var r Route
	// Java's fastjson writes broker IDs as bare numbers
	// ({"brokerAddrs":{0:"host:port"}}), which is not JSON.
	if err := json.Unmarshal(quoteNumericKeys(resp.Body), &r); err != nil {
		return nil, fmt.Errorf("remoting: route of %q: %w", topic, err)
	}
	return &r, nil
}

// ConsumerIDs lists the client IDs of a group's members a broker knows
// (GET_CONSUMER_LIST_BY_GROUP). A group without members is an error from
// the broker: a *ResponseError with code SystemError.
func (c *Client) ConsumerIDs(ctx context.Context, broker, group string) ([]string, error) {
	resp, err := c.call(ctx, broker, GetConsumerListByGroup, map[string]string{"consumerGroup": group})
	if err != nil {
		return nil, err
	}
	var body struct {
		IDs []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("remoting: consumer list of %q: %w", group, err)
	}
	return body.IDs, nil
}

// ConsumerGroups lists the groups that consume a topic on a broker
// (QUERY_TOPIC_CONSUME_BY_WHO): groups subscribed now and groups with
// committed offsets.
func (c *Client) ConsumerGroups(ctx context.Context, broker, topic string) ([]string, error) {
	resp, err := c.call(ctx, broker, QueryTopicConsumeByWho, map[string]string{"topic": topic})
	if err != nil {
		return nil, err
	}
	var body struct {
		Groups []string `json:"groupList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("remoting: groups of %q: %w", topic, err)
	}
	return body.Groups, nil
}

// ConsumerOffset reads a group's committed offset on a queue
// (QUERY_CONSUMER_OFFSET). A 4.9.4 broker answers 0 for a group that never
// committed; older ones answer QueryNotFound.
func (c *Client) ConsumerOffset(ctx context.Context, broker, group, topic string, queueID int) (int64, error) {
	return c.offsetCall(ctx, broker, QueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queueID),
	})
}

// UpdateConsumerOffset commits an offset for a group on a queue
// (UPDATE_CONSUMER_OFFSET), waiting for the broker's answer.
func (c *Client) UpdateConsumerOffset(ctx context.Context, broker, group, topic string, queueID int, offset int64) error {
	_, err := c.call(ctx, broker, UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queueID),
		"commitOffset": strconv.FormatInt(offset, 10),
	})
	return err
}

// MaxOffset returns the offset the next message of a queue will get
// (GET_MAX_OFFSET).
func (c *Client) MaxOffset(ctx context.Context, broker, topic string, queueID int) (int64, error) {
	return c.offsetCall(ctx, broker, GetMaxOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(queueID)})
}

// MinOffset returns the smallest offset still stored in a queue
// (GET_MIN_OFFSET).
func (c *Client) MinOffset(ctx context.Context, broker, topic string, queueID int) (int64, error) {
	return c.offsetCall(ctx, broker, GetMinOffset, map[string]string{"topic": topic, "queueId": strconv.Itoa(queueID)})
}

// quoteNumericKeys quotes object keys written as bare integers, leaving
// strings alone.
func quoteNumericKeys(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	inString, escaped := false, false
	expectKey := false
	var stack []byte // open containers: '{' or '['
	inObject := func() bool { return len(stack) > 0 && stack[len(stack)-1] == '{' }
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inString {
			out = append(out, ch)
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
			continue
		}
		switch {
		case ch == '"':
			inString, expectKey = true, false
		case ch == '{' || ch == '[':
			stack = append(stack, ch)
			expectKey = ch == '{'
		case ch == '}' || ch == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ch == ',':
			expectKey = inObject()
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
		case expectKey && (ch == '-' || ch >= '0' && ch <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			out = append(out, '"')
			out = append(out, b[i:j]...)
			out = append(out, '"')
			i = j - 1
			expectKey = false
			continue
		default:
			expectKey = false
		}
		out = append(out, ch)
	}
	return out
}
