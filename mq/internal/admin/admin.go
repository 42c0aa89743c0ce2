// Package admin is the small RocketMQ admin client the mq lanes need and
// rocketmq-client-go v2 does not expose: topic routes, the online members of
// any group, any group's committed offsets, the groups consuming a topic, and
// a plain pull. It speaks the remoting protocol through
// mq/internal/remoting; every call is bounded by its context and the
// client's timeout.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/taglane/taglane/mq/internal/remoting"
)

// noConsumerRemark opens 4.9.4's remark for a group with no member
// (ConsumerManageProcessor.getConsumerListByGroup).
const noConsumerRemark = "no consumer for this group"

// DefaultTimeout bounds one request when the caller's context has no
// earlier deadline: the client's own default for admin requests is 3 s.
const DefaultTimeout = 3 * time.Second

var (
	// ErrNoConsumer is GET_CONSUMER_LIST_BY_GROUP's code 1 "no consumer for
	// this group": a 4.9.4 broker never answers an empty list, so this
	// means the group has no member on that broker (offline), not an
	// unknown state.
	ErrNoConsumer = errors.New("admin: no consumer for this group")
	// ErrTopicNotExist is the name server's code 17 for a topic it has no
	// route for.
	ErrTopicNotExist = errors.New("admin: topic does not exist")
	// ErrOffsetNotFound is QUERY_CONSUMER_OFFSET's code 22. A 4.9.4 broker
	// answers 0 instead for a never-committed group, so callers must not
	// rely on it meaning "never consumed".
	ErrOffsetNotFound = errors.New("admin: offset not found")
)

// CodeError is a response code the call does not expect.
type CodeError struct {
	Op     string
	Code   int16
	Remark string
}

func (e *CodeError) Error() string {
	return fmt.Sprintf("admin: %s: response code %d: %q", e.Op, e.Code, e.Remark)
}

// Client talks to one name server set and the brokers it routes to.
type Client struct {
	rc         *remoting.Client
	nameserver []string
	timeout    time.Duration
}

// New returns a client of the given name servers. timeout <= 0 means
// DefaultTimeout.
func New(nameservers []string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{rc: remoting.NewClient(nil), nameserver: slices.Clone(nameservers), timeout: timeout}
}

// Close closes every connection.
func (c *Client) Close() error { return c.rc.Close() }

func (c *Client) invoke(ctx context.Context, addr string, req *remoting.Command) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.rc.Invoke(ctx, addr, req)
	if err != nil {
		return nil, fmt.Errorf("admin: %s: %w", addr, err)
	}
	return resp, nil
}

// Broker is a master broker hosting a topic and the topic's queue count on it.
type Broker struct {
	Name   string
	Addr   string
	Queues int // read queues
}

// Route lists the master brokers hosting topic with read permission.
func (c *Client) Route(ctx context.Context, topic string) ([]Broker, error) {
	var lastErr error
	for _, ns := range c.nameserver {
		resp, err := c.invoke(ctx, ns, remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": topic}, nil))
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Code {
		case remoting.Success:
		case remoting.TopicNotExist:
			return nil, fmt.Errorf("admin: route of %q: %w", topic, ErrTopicNotExist)
		default:
			lastErr = &CodeError{Op: "route of " + strconv.Quote(topic), Code: resp.Code, Remark: resp.Remark}
			continue
		}
		return parseRoute(resp.Body)
	}
	if lastErr == nil {
		lastErr = errors.New("admin: no name server")
	}
	return nil, lastErr
}

func parseRoute(body []byte) ([]Broker, error) {
	var rd struct {
		QueueDatas []struct {
			BrokerName    string `json:"brokerName"`
			ReadQueueNums int    `json:"readQueueNums"`
			Perm          int    `json:"perm"`
		} `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerName  string            `json:"brokerName"`
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(body, &rd); err != nil {
		if err2 := json.Unmarshal(quoteNumericKeys(body), &rd); err2 != nil {
			return nil, fmt.Errorf("admin: route body: %w", err)
		}
	}
	const permRead = 1 << 2
	var out []Broker
	for _, q := range rd.QueueDatas {
		if q.Perm&permRead == 0 || q.ReadQueueNums <= 0 {
			continue
		}
		for _, b := range rd.BrokerDatas {
			if b.BrokerName != q.BrokerName {
				continue
			}
			if addr := b.BrokerAddrs["0"]; addr != "" { // brokerId 0 is the master
				out = append(out, Broker{Name: b.BrokerName, Addr: addr, Queues: q.ReadQueueNums})
			}
		}
	}
	slices.SortFunc(out, func(a, b Broker) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// ConsumerList returns the client IDs of group's members connected to the
// broker at addr; ErrNoConsumer if it has none there.
func (c *Client) ConsumerList(ctx context.Context, addr, group string) ([]string, error) {
	resp, err := c.invoke(ctx, addr, remoting.NewRequest(remoting.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
	if err != nil {
		return nil, err
	}
	switch resp.Code {
	case remoting.Success:
	case remoting.SystemError:
		// 38's own code-1 answer is "no consumer for this group, <group>"
		// (ROCKETMQ-FACTS): offline, not unknown. Any other code-1 answer
		// (an exception in the broker) says nothing about the group, and
		// taking it for "offline" would start a takeover of a live lane.
		if strings.HasPrefix(resp.Remark, noConsumerRemark) {
			return nil, fmt.Errorf("admin: consumers of %q on %s: %w (%s)", group, addr, ErrNoConsumer, resp.Remark)
		}
		return nil, &CodeError{Op: "consumers of " + strconv.Quote(group), Code: resp.Code, Remark: resp.Remark}
	default:
		return nil, &CodeError{Op: "consumers of " + strconv.Quote(group), Code: resp.Code, Remark: resp.Remark}
	}
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("admin: consumers of %q: body: %w", group, err)
	}
	if len(body.ConsumerIDList) == 0 {
		return nil, fmt.Errorf("admin: consumers of %q on %s: %w (empty list)", group, addr, ErrNoConsumer)
	}
	return body.ConsumerIDList, nil
}

// ConsumeByWho returns the groups QUERY_TOPIC_CONSUME_BY_WHO lists for
// topic on the broker at addr: those subscribed now and those with offsets.
func (c *Client) ConsumeByWho(ctx context.Context, addr, topic string) ([]string, error) {
	resp, err := c.invoke(ctx, addr, remoting.NewRequest(remoting.QueryTopicConsumeByWho, map[string]string{"topic": topic}, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != remoting.Success {
		return nil, &CodeError{Op: "consumers of topic " + strconv.Quote(topic), Code: resp.Code, Remark: resp.Remark}
	}
	var body struct {
		GroupList []string `json:"groupList"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		return nil, fmt.Errorf("admin: consumers of topic %q: body: %w", topic, err)
	}
	return body.GroupList, nil
}

func (c *Client) offsetCall(ctx context.Context, addr string, code int16, op string, ext map[string]string) (int64, error) {
	resp, err := c.invoke(ctx, addr, remoting.NewRequest(code, ext, nil))
	if err != nil {
		return 0, err
	}
	switch resp.Code {
	case remoting.Success:
	case remoting.QueryNotFound:
		return 0, fmt.Errorf("admin: %s: %w", op, ErrOffsetNotFound)
	default:
		return 0, &CodeError{Op: op, Code: resp.Code, Remark: resp.Remark}
	}
	v := resp.ExtFields["offset"]
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("admin: %s: bad offset %q", op, v)
	}
	return n, nil
}

// Queue names one queue on one broker.
type Queue struct {
	Addr  string
	Topic string
	ID    int
}

func (q Queue) String() string { return fmt.Sprintf("%s/%s/%d", q.Addr, q.Topic, q.ID) }

// CommittedOffset is QUERY_CONSUMER_OFFSET (14). A never-committed group
// reads 0 on a 4.9.4 broker.
func (c *Client) CommittedOffset(ctx context.Context, q Queue, group string) (int64, error) {
	return c.offsetCall(ctx, q.Addr, remoting.QueryConsumerOffset, "offset of "+strconv.Quote(group)+" on "+q.String(),
		map[string]string{"consumerGroup": group, "topic": q.Topic, "queueId": strconv.Itoa(q.ID)})
}

// MaxOffset is GET_MAX_OFFSET (30): the offset the next message gets.
func (c *Client) MaxOffset(ctx context.Context, q Queue) (int64, error) {
	return c.offsetCall(ctx, q.Addr, remoting.GetMaxOffset, "max offset of "+q.String(),
		map[string]string{"topic": q.Topic, "queueId": strconv.Itoa(q.ID)})
}

// MinOffset is GET_MIN_OFFSET (31).
func (c *Client) MinOffset(ctx context.Context, q Queue) (int64, error) {
	return c.offsetCall(ctx, q.Addr, remoting.GetMinOffset, "min offset of "+q.String(),
		map[string]string{"topic": q.Topic, "queueId": strconv.Itoa(q.ID)})
}

// UpdateOffset is UPDATE_CONSUMER_OFFSET (15), sent as a request so that
// the caller learns whether the broker took it.
func (c *Client) UpdateOffset(ctx context.Context, q Queue, group string, offset int64) error {
	op := "update offset of " + strconv.Quote(group) + " on " + q.String()
	resp, err := c.invoke(ctx, q.Addr, remoting.NewRequest(remoting.UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": q.Topic, "queueId": strconv.Itoa(q.ID), "commitOffset": strconv.FormatInt(offset, 10),
	}, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return &CodeError{Op: op, Code: resp.Code, Remark: resp.Remark}
	}
	return nil
}

// PullResult is one answer to Pull.
type PullResult struct {
	Msgs []*primitive.MessageExt
	// Next is where the next pull starts.
	Next int64
	// Max is the queue's max offset as the broker saw it.
	Max int64
}

// Pull reads up to n messages of q from offset, as group, without
// suspending (no long polling) and without committing. subscription is a
// TAG expression ("*" for all); it travels in the request, so the broker
// needs no live subscription of group. Messages are decoded and their
// Queue set; a retry topic's messages get their original Topic back, as
// the push consumer does.
func (c *Client) Pull(ctx context.Context, q Queue, brokerName, group, subscription string, offset int64, n int) (PullResult, error) {
	const sysFlagSubscription = 1 << 2
	if subscription == "" {
		subscription = "*"
	}
	resp, err := c.invoke(ctx, q.Addr, remoting.NewRequest(remoting.PullMessage, map[string]string{
		"consumerGroup":        group,
		"topic":                q.Topic,
		"queueId":              strconv.Itoa(q.ID),
		"queueOffset":          strconv.FormatInt(offset, 10),
		"maxMsgNums":           strconv.Itoa(n),
		"sysFlag":              strconv.Itoa(sysFlagSubscription),
		"commitOffset":         "0",
		"suspendTimeoutMillis": "0",
		"subscription":         subscription,
		"subVersion":           "0",
		"expressionType":       "TAG",
	}, nil))
	if err != nil {
		return PullResult{}, err
	}
	op := "pull " + q.String() + " at " + strconv.FormatInt(offset, 10)
	next, err1 := strconv.ParseInt(resp.ExtFields["nextBeginOffset"], 10, 64)
	maxOff, err2 := strconv.ParseInt(resp.ExtFields["maxOffset"], 10, 64)
	switch resp.Code {
	case remoting.Success, remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved:
		if err1 != nil || err2 != nil {
			return PullResult{}, fmt.Errorf("admin: %s: bad offsets %q/%q", op, resp.ExtFields["nextBeginOffset"], resp.ExtFields["maxOffset"])
		}
	default:
		return PullResult{}, &CodeError{Op: op, Code: resp.Code, Remark: resp.Remark}
	}
	r := PullResult{Next: next, Max: maxOff}
	if resp.Code != remoting.Success {
		return r, nil
	}
	r.Msgs = primitive.DecodeMessage(resp.Body)
	for _, m := range r.Msgs {
		m.Queue = &primitive.MessageQueue{Topic: q.Topic, BrokerName: brokerName, QueueId: q.ID}
		if rt := m.GetProperty(primitive.PropertyRetryTopic); rt != "" && m.Topic == q.Topic {
			m.Topic = rt
		}
	}
	return r, nil
}

// Master is a master broker of a cluster.
type Master struct {
	Cluster string
	Name    string
	Addr    string
}

// Masters returns the master brokers the name servers know, sorted by
// cluster and name (GET_BROKER_CLUSTER_INFO, code 106).
func (c *Client) Masters(ctx context.Context) ([]Master, error) {
	var lastErr error
	for _, ns := range c.nameserver {
		resp, err := c.invoke(ctx, ns, remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
		if err != nil {
			lastErr = err
			continue
		}
		if resp.Code != remoting.Success {
			lastErr = &CodeError{Op: "cluster info", Code: resp.Code, Remark: resp.Remark}
			continue
		}
		return parseMasters(resp.Body)
	}
	if lastErr == nil {
		lastErr = errors.New("admin: no name server")
	}
	return nil, lastErr
}

func parseMasters(body []byte) ([]Master, error) {
	var info struct {
		BrokerAddrTable map[string]struct {
			Cluster     string            `json:"cluster"`
			BrokerName  string            `json:"brokerName"`
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		if err2 := json.Unmarshal(quoteNumericKeys(body), &info); err2 != nil {
			return nil, fmt.Errorf("admin: cluster info body: %w", err)
		}
	}
	var out []Master
	for name, b := range info.BrokerAddrTable {
		if addr := b.BrokerAddrs["0"]; addr != "" { // brokerId 0 is the master
			out = append(out, Master{Cluster: b.Cluster, Name: name, Addr: addr})
		}
	}
	slices.SortFunc(out, func(a, b Master) int {
		if a.Cluster != b.Cluster {
			return cmpString(a.Cluster, b.Cluster)
		}
		return cmpString(a.Name, b.Name)
	})
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CreateTopic creates topic, or updates its queue counts, on the broker at
// addr (UPDATE_AND_CREATE_TOPIC, code 17) with queues read and write
// queues and read-write permission, as mqadmin updateTopic does. The
// broker registers the topic with the name servers itself.
func (c *Client) CreateTopic(ctx context.Context, addr, topic string, queues int) error {
	q := strconv.Itoa(queues)
	resp, err := c.invoke(ctx, addr, remoting.NewRequest(remoting.CreateTopic, map[string]string{
		"topic":           topic,
		"defaultTopic":    "TBW102",
		"readQueueNums":   q,
		"writeQueueNums":  q,
		"perm":            "6", // PermName.PERM_READ | PERM_WRITE
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    "0",
		"order":           "false",
	}, nil))
	if err != nil {
		return err
	}
	if resp.Code != remoting.Success {
		return &CodeError{Op: "create topic " + strconv.Quote(topic) + " on " + addr, Code: resp.Code, Remark: resp.Remark}
	}
	return nil
}
