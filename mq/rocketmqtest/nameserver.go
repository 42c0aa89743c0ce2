package rocketmqtest

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// The brokers live in the same process, so the name server reads their topic
// tables directly: a topic a broker creates is routable at once, as it is
// after a real broker's immediate re-registration.

type queueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

type brokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

type topicRouteData struct {
	QueueDatas        []queueData         `json:"queueDatas"`
	BrokerDatas       []brokerData        `json:"brokerDatas"`
	FilterServerTable map[string][]string `json:"filterServerTable"`
}

func (s *Server) handleNameServer(_ *conn, req *remoting.Command) *remoting.Command {
	switch req.Code {
	case remoting.GetRouteInfoByTopic:
		return s.handleRoute(req)
	case remoting.GetBrokerClusterInfo:
		return s.handleClusterInfo(req)
	case remoting.GetAllTopicListFromNameServer:
		return s.handleTopicList(req)
	case remoting.DeleteTopicInNameServer:
		// Routes come from the brokers' topic tables; deleting the topic
		// there (DELETE_TOPIC_IN_BROKER) removes the route.
		return remoting.NewResponse(req, remoting.Success, "")
	}
	return remoting.NewResponse(req, remoting.RequestCodeNotSupported,
		fmt.Sprintf("rocketmqtest: request code %d not supported by the name server", req.Code))
}

func (b *broker) data() brokerData {
	return brokerData{Cluster: b.srv.cfg.cluster, BrokerName: b.name, BrokerAddrs: map[string]string{"0": b.addr}}
}

func (s *Server) route(topicName string) (topicRouteData, bool) {
	rd := topicRouteData{QueueDatas: []queueData{}, BrokerDatas: []brokerData{}, FilterServerTable: map[string][]string{}}
	for _, b := range s.brokers {
		b.mu.Lock()
		t := b.topics[topicName]
		var qd queueData
		if t != nil {
			qd = queueData{BrokerName: b.name, ReadQueueNums: t.read, WriteQueueNums: t.write, Perm: t.perm, TopicSysFlag: t.sysFlag}
		}
		b.mu.Unlock()
		if t != nil {
			rd.QueueDatas = append(rd.QueueDatas, qd)
			rd.BrokerDatas = append(rd.BrokerDatas, b.data())
		}
	}
	return rd, len(rd.QueueDatas) > 0
}

func (s *Server) handleRoute(req *remoting.Command) *remoting.Command {
	name := ext(req, "topic")
	rd, ok := s.route(name)
	if !ok {
		return remoting.NewResponse(req, remoting.TopicNotExist,
			"No topic route info in name server for the topic: "+name)
	}
	body, err := json.Marshal(rd)
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

func (s *Server) handleClusterInfo(req *remoting.Command) *remoting.Command {
	info := struct {
		BrokerAddrTable  map[string]brokerData `json:"brokerAddrTable"`
		ClusterAddrTable map[string][]string   `json:"clusterAddrTable"`
	}{map[string]brokerData{}, map[string][]string{}}
	for _, b := range s.brokers {
		info.BrokerAddrTable[b.name] = b.data()
		info.ClusterAddrTable[s.cfg.cluster] = append(info.ClusterAddrTable[s.cfg.cluster], b.name)
	}
	body, err := json.Marshal(info)
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

func (s *Server) handleTopicList(req *remoting.Command) *remoting.Command {
	body, err := json.Marshal(struct {
		TopicList []string `json:"topicList"`
	}{s.Topics()})
	if err != nil {
		return errorResponse(req, remoting.SystemError, err)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

// Topics lists the topics of every broker, system topics included, sorted.
func (s *Server) Topics() []string {
	seen := map[string]bool{}
	for _, b := range s.brokers {
		b.mu.Lock()
		for name := range b.topics {
			seen[name] = true
		}
		b.mu.Unlock()
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
