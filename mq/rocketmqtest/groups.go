package rocketmqtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// heartbeatData is HeartbeatData's JSON form.
type heartbeatData struct {
	ClientID        string `json:"clientID"`
	ProducerDataSet []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerDataSet []consumerData `json:"consumerDataSet"`
}

type consumerData struct {
	GroupName           string             `json:"groupName"`
	ConsumeType         string             `json:"consumeType"`
	MessageModel        string             `json:"messageModel"`
	ConsumeFromWhere    string             `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionData `json:"subscriptionDataSet"`
	UnitMode            bool               `json:"unitMode"`
}

type subscriptionData struct {
	ClassFilterMode bool            `json:"classFilterMode"`
	Topic           string          `json:"topic"`
	SubString       string          `json:"subString"`
	TagsSet         []string        `json:"tagsSet"`
	CodeSet         json.RawMessage `json:"codeSet"` // strings from Go, numbers from Java
	SubVersion      int64           `json:"subVersion"`
	ExpressionType  string          `json:"expressionType"`
}

// group is ConsumerGroupInfo: the live channels of one consumer group.
type group struct {
	name     string
	channels map[*conn]*channel
	subs     map[string]subscriptionData
}

// channel is ClientChannelInfo.
type channel struct {
	clientID   string
	lastUpdate time.Time
}

func (b *broker) handleHeartbeat(c *conn, req *remoting.Command) *remoting.Command {
	var hb heartbeatData
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: bad heartbeat body: %v", err))
	}
	if hb.ClientID == "" {
		return remoting.NewResponse(req, remoting.SystemError, "rocketmqtest: heartbeat without clientID")
	}
	id := hb.ClientID
	if b.srv.isKilled(id) {
		// A killed process sends nothing; this is a leftover of a client
		// the test killed (KillClient). Registering it would list it
		// until the channel expiry.
		b.srv.logf("rocketmqtest: %s: heartbeat of killed client %s: closing its connection", b.name, id)
		c.close()
		return nil
	}
	c.clientID.Store(&id)
	now := time.Now()
	var notify []notification
	b.mu.Lock()
	for _, cd := range hb.ConsumerDataSet {
		if cd.GroupName == "" {
			continue
		}
		b.subGroups[cd.GroupName] = true
		// The group's retry topic exists from its first heartbeat on, with
		// one queue, perm 6 (createTopicInSendMessageBackMethod).
		b.topicLocked(retryPrefix+cd.GroupName, true, 1, permRW)
		g := b.groups[cd.GroupName]
		if g == nil {
			g = &group{name: cd.GroupName, channels: map[*conn]*channel{}, subs: map[string]subscriptionData{}}
			b.groups[cd.GroupName] = g
		}
		changed := false
		if ch := g.channels[c]; ch != nil {
			ch.clientID, ch.lastUpdate = id, now
		} else {
			g.channels[c] = &channel{clientID: id, lastUpdate: now}
			changed = true
		}
		seen := map[string]bool{}
		for _, sd := range cd.SubscriptionDataSet {
			seen[sd.Topic] = true
			old, ok := g.subs[sd.Topic]
			if !ok {
				changed = true
			}
			if !ok || sd.SubVersion > old.SubVersion {
				g.subs[sd.Topic] = sd
			}
		}
		for t := range g.subs {
			if !seen[t] {
				delete(g.subs, t)
				changed = true
			}
		}
		if changed {
			notify = append(notify, g.notificationLocked())
		}
	}
	for _, pd := range hb.ProducerDataSet {
		if pd.GroupName == "" {
			continue
		}
		m := b.producers[pd.GroupName]
		if m == nil {
			m = map[*conn]*channel{}
			b.producers[pd.GroupName] = m
		}
		m[c] = &channel{clientID: id, lastUpdate: now}
	}
	b.mu.Unlock()
	b.srv.notify(notify)
	return remoting.NewResponse(req, remoting.Success, "")
}

// notification is a NOTIFY_CONSUMER_IDS_CHANGED for every channel of a group.
type notification struct {
	group string
	to    []*conn
}

func (g *group) notificationLocked() notification {
	n := notification{group: g.name}
	for c := range g.channels {
		n.to = append(n.to, c)
	}
	return n
}

// notify sends NOTIFY_CONSUMER_IDS_CHANGED one-way, so the members
// rebalance at once instead of at their next 20 s rebalance.
func (s *Server) notify(ns []notification) {
	for _, n := range ns {
		for _, c := range n.to {
			req := remoting.NewRequest(remoting.NotifyConsumerIDsChanged, map[string]string{"consumerGroup": n.group}, nil)
			req.Language = "JAVA"
			req.Flag = remoting.FlagOneway
			req.Opaque = s.nextOpaque.Add(1)
			s.notified.Add(1)
			c.send(req)
		}
	}
}

// removeChannelLocked drops c from g and returns the notification for the
// rest of the group, if any remain. b.mu is held.
func (b *broker) removeChannelLocked(g *group, c *conn) (notification, bool) {
	if _, ok := g.channels[c]; !ok {
		return notification{}, false
	}
	delete(g.channels, c)
	if len(g.channels) == 0 {
		delete(b.groups, g.name)
		return notification{}, false
	}
	return g.notificationLocked(), true
}

// connClosed drops everything the connection registered and notifies the
// groups it was in, as ConsumerManager.doChannelCloseEvent does.
func (b *broker) connClosed(c *conn) {
	var notify []notification
	b.mu.Lock()
	for _, g := range b.groups {
		if n, ok := b.removeChannelLocked(g, c); ok {
			notify = append(notify, n)
		}
	}
	for name, m := range b.producers {
		delete(m, c)
		if len(m) == 0 {
			delete(b.producers, name)
		}
	}
	b.mu.Unlock()
	b.srv.notify(notify)
}

func (b *broker) handleUnregister(c *conn, req *remoting.Command) *remoting.Command {
	var notify []notification
	b.mu.Lock()
	if name := ext(req, "consumerGroup"); name != "" {
		if g := b.groups[name]; g != nil {
			if n, ok := b.removeChannelLocked(g, c); ok {
				notify = append(notify, n)
			}
		}
	}
	if name := ext(req, "producerGroup"); name != "" {
		if m := b.producers[name]; m != nil {
			delete(m, c)
			if len(m) == 0 {
				delete(b.producers, name)
			}
		}
	}
	b.mu.Unlock()
	b.srv.notify(notify)
	return remoting.NewResponse(req, remoting.Success, "")
}

// consumerIDs returns the client IDs of a group's live channels, sorted.
func (b *broker) consumerIDs(name string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[name]
	if g == nil {
		return nil
	}
	ids := make([]string, 0, len(g.channels))
	for _, ch := range g.channels {
		if !slices.Contains(ids, ch.clientID) {
			ids = append(ids, ch.clientID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (b *broker) handleConsumerList(req *remoting.Command) *remoting.Command {
	name := ext(req, "consumerGroup")
	ids := b.consumerIDs(name)
	if len(ids) == 0 {
		// A group without members is an error, never an empty list.
		return remoting.NewResponse(req, remoting.SystemError, "no consumer for this group, "+name)
	}
	body, err := json.Marshal(struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}{ids})
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

// consumeByWho is the union QUERY_TOPIC_CONSUME_BY_WHO answers: groups with
// a live subscription to the topic and groups with offsets on it.
func (b *broker) consumeByWho(topicName string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := map[string]bool{}
	for name, g := range b.groups {
		if _, ok := g.subs[topicName]; ok {
			set[name] = true
		}
	}
	prefix := topicName + "@"
	for k := range b.offsets {
		if g, ok := strings.CutPrefix(k, prefix); ok {
			set[g] = true
		}
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (b *broker) handleConsumeByWho(req *remoting.Command) *remoting.Command {
	body, err := json.Marshal(struct {
		GroupList []string `json:"groupList"`
	}{b.consumeByWho(ext(req, "topic"))})
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

type subscriptionGroupConfig struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	BrokerID                       int    `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int    `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIDsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

func (b *broker) handleSubscriptionGroups(req *remoting.Command) *remoting.Command {
	table := map[string]subscriptionGroupConfig{}
	b.mu.Lock()
	for name := range b.subGroups {
		table[name] = subscriptionGroupConfig{
			GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
			RetryQueueNums: 1, RetryMaxTimes: maxReconsume16, WhichBrokerWhenConsumeSlowly: 1,
			NotifyConsumerIDsChangedEnable: true,
		}
	}
	b.mu.Unlock()
	body, err := json.Marshal(struct {
		SubscriptionGroupTable map[string]subscriptionGroupConfig `json:"subscriptionGroupTable"`
		DataVersion            map[string]int64                   `json:"dataVersion"`
	}{table, map[string]int64{"timestamp": nowMillis(), "counter": int64(len(table))}})
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

// runHousekeeping expires channels that stopped heartbeating on a live
// connection and closes those connections, as ClientHousekeepingService
// does every 10 s with a 120 s limit. Like ConsumerManager.scanNotActiveChannel
// it removes the expired entries without notifying the rest of the group
// (no code 40): they take the queues at their own periodic rebalance. The
// close that follows is a normal one, so groups the connection was still
// live in are dropped and notified, as doChannelCloseEvent does.
func (b *broker) runHousekeeping() {
	defer b.srv.wg.Done()
	expiry := b.srv.cfg.channelExpiry
	every := min(max(expiry/4, 10*time.Millisecond), 10*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.srv.done:
			return
		}
		b.expire(time.Now().Add(-expiry))
	}
}

// expire drops, silently, every channel not refreshed since cutoff, then
// closes their connections.
func (b *broker) expire(cutoff time.Time) {
	victims := map[*conn]bool{}
	b.mu.Lock()
	for name, g := range b.groups {
		for c, ch := range g.channels {
			if ch.lastUpdate.Before(cutoff) {
				victims[c] = true
				delete(g.channels, c)
			}
		}
		if len(g.channels) == 0 {
			delete(b.groups, name)
		}
	}
	for name, m := range b.producers {
		for c, ch := range m {
			if ch.lastUpdate.Before(cutoff) {
				victims[c] = true
				delete(m, c)
			}
		}
		if len(m) == 0 {
			delete(b.producers, name)
		}
	}
	b.mu.Unlock()
	for c := range victims {
		b.srv.logf("rocketmqtest: %s: closing connection of %s (%s): no heartbeat since %v", b.name, c.id(), c.remoteAddr(), cutoff)
		c.close()
	}
}
