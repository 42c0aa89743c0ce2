package rocketmqtest

import "github.com/taglane/taglane/mq/internal/remoting"

// RequestCode is a RocketMQ remoting request code (RequestCode.java).
type RequestCode int16

// Request codes the server answers.
const (
	SendMessage             RequestCode = remoting.SendMessage
	PullMessage             RequestCode = remoting.PullMessage
	QueryConsumerOffset     RequestCode = remoting.QueryConsumerOffset
	UpdateConsumerOffset    RequestCode = remoting.UpdateConsumerOffset
	SearchOffsetByTimestamp RequestCode = remoting.SearchOffsetByTimestamp
	GetMaxOffset            RequestCode = remoting.GetMaxOffset
	GetMinOffset            RequestCode = remoting.GetMinOffset
	GetEarliestMsgStoreTime RequestCode = remoting.GetEarliestMsgStoreTime
	HeartBeat               RequestCode = remoting.HeartBeat
	UnregisterClient        RequestCode = remoting.UnregisterClient
	ConsumerSendMsgBack     RequestCode = remoting.ConsumerSendMsgBack
	GetConsumerListByGroup  RequestCode = remoting.GetConsumerListByGroup
	LockBatchMQ             RequestCode = remoting.LockBatchMQ
	UnlockBatchMQ           RequestCode = remoting.UnlockBatchMQ
	GetRouteInfoByTopic     RequestCode = remoting.GetRouteInfoByTopic
	GetBrokerClusterInfo    RequestCode = remoting.GetBrokerClusterInfo
	GetAllTopicList         RequestCode = remoting.GetAllTopicListFromNameServer
	QueryTopicConsumeByWho  RequestCode = remoting.QueryTopicConsumeByWho
	SendMessageV2           RequestCode = remoting.SendMessageV2
	SendBatchMessage        RequestCode = remoting.SendBatchMessage
)

// ResponseCode is a RocketMQ remoting response code (ResponseCode.java).
type ResponseCode int16

// Response codes useful in a Fault.
const (
	SystemError          ResponseCode = remoting.SystemError
	SystemBusy           ResponseCode = remoting.SystemBusy
	ServiceNotAvailable  ResponseCode = remoting.ServiceNotAvailable
	NoPermission         ResponseCode = remoting.NoPermission
	TopicNotExist        ResponseCode = remoting.TopicNotExist
	PullNotFound         ResponseCode = remoting.PullNotFound
	PullOffsetMoved      ResponseCode = remoting.PullOffsetMoved
	QueryNotFound        ResponseCode = remoting.QueryNotFound
	SubscriptionNotExist ResponseCode = remoting.SubscriptionNotExist
)

// Fault says how the server treats a request code it is told to fail.
type Fault struct {
	// Code is the response code to answer with. Success is no failure, so
	// the zero value answers SystemError.
	Code ResponseCode
	// Remark is the response remark; empty gives a remark naming the fault.
	Remark string
	// NoReply swallows the request: the client waits until its timeout.
	NoReply bool
	// Close closes the connection instead of answering, as a broker that
	// crashes mid-request would.
	Close bool
}

// FailRequests makes the name server and every broker treat later requests
// with the given code as f says, until ClearFaults. A later call for the
// same code replaces the fault.
func (s *Server) FailRequests(code RequestCode, f Fault) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.faults[code] = f
}

// FailClientRequests is FailRequests for the requests of one client only,
// on the connections its heartbeats named with its client ID ("ip@instance");
// it takes precedence over a fault for every client. With
// FailClientRequests(id, HeartBeat, Fault{NoReply: true}) the client goes
// silent while its connection stays open, as a frozen (SIGSTOP) process
// does: the brokers expire it after WithChannelExpiry, and nobody is
// notified.
func (s *Server) FailClientRequests(clientID string, code RequestCode, f Fault) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	if s.clientFaults == nil {
		s.clientFaults = map[string]map[RequestCode]Fault{}
	}
	m := s.clientFaults[clientID]
	if m == nil {
		m = map[RequestCode]Fault{}
		s.clientFaults[clientID] = m
	}
	m[code] = f
}

// ClearFaults restores normal answers to every request code, for every
// client.
func (s *Server) ClearFaults() {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	clear(s.faults)
	clear(s.clientFaults)
}

// fault returns the fault for a request of the client (clientID may be "",
// before its first heartbeat).
func (s *Server) fault(clientID string, code RequestCode) (Fault, bool) {
	s.faultsMu.RLock()
	defer s.faultsMu.RUnlock()
	if clientID != "" {
		if f, ok := s.clientFaults[clientID][code]; ok {
			return f, true
		}
	}
	f, ok := s.faults[code]
	return f, ok
}

// DropClient closes every broker connection of the client with the given
// client ID (as rocketmq-client-go builds it: "ip@instance"), as a crash of
// that process would. The brokers drop its consumers and producers at once
// and notify the rest of each group. A client that is in fact alive
// reconnects on its next request and rejoins at its next heartbeat (within
// 30 s). DropClient returns the number of connections closed.
func (s *Server) DropClient(clientID string) int {
	return s.DropClients(func(id string) bool { return id == clientID })
}

// KillClient is DropClient for a client that is dead for good, as a killed
// process is: its connections close, and from then on a heartbeat naming its
// client ID, on any connection, closes that connection unanswered instead of
// registering the client. A test that simulates a crash by DropClient and
// then shuts the client down needs it: rocketmq-client-go v2.1.2 may still
// send a heartbeat that was in flight, on a new connection opened after its
// Shutdown closed the others (its connection table lost the dropped ones),
// and the member it registers would stay listed until the channel expiry,
// which a killed process's could not. KillClient returns the number of
// connections closed.
func (s *Server) KillClient(clientID string) int {
	s.faultsMu.Lock()
	if s.killed == nil {
		s.killed = map[string]bool{}
	}
	s.killed[clientID] = true
	s.faultsMu.Unlock()
	return s.DropClient(clientID)
}

// isKilled reports whether KillClient killed the client ID.
func (s *Server) isKilled(clientID string) bool {
	s.faultsMu.RLock()
	defer s.faultsMu.RUnlock()
	return s.killed[clientID]
}

// DropClients is DropClient for every client whose ID matches.
func (s *Server) DropClients(match func(clientID string) bool) int {
	n := 0
	for _, b := range s.brokers {
		b.ep.mu.Lock()
		var victims []*conn
		for c := range b.ep.conns {
			if id := c.id(); id != "" && match(id) {
				victims = append(victims, c)
			}
		}
		b.ep.mu.Unlock()
		for _, c := range victims {
			c.close()
		}
		n += len(victims)
	}
	return n
}
