package rocketmqtest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// Server is a running name server with its brokers.
type Server struct {
	cfg     *config // built once by Run; a pointer keeps Server in a small size class
	ns      *endpoint
	brokers []*broker

	requests sync.Map // RequestCode -> *atomic.Int64

	faultsMu sync.RWMutex
	faults   map[RequestCode]Fault
	// clientFaults are faults for one client ID only.
	clientFaults map[string]map[RequestCode]Fault
	// killed are the client IDs KillClient killed: their heartbeats close
	// the connection instead of registering it.
	killed map[string]bool

	nextOpaque atomic.Int32 // opaque of the server's own requests (notifications)
	notified   atomic.Int64 // NOTIFY_CONSUMER_IDS_CHANGED sent, for tests

	frames *remoting.Limiter // bytes of partly received frames, all connections
	conns  atomic.Int64      // open client connections, all endpoints (WithMaxConns)

	closing   atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed by Close: stops timers and held pulls
	wg        sync.WaitGroup
}

// Run starts a name server and its brokers on 127.0.0.1.
func Run(opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.brokerAddrs) > cfg.brokers {
		return nil, fmt.Errorf("rocketmqtest: %d broker addresses for %d brokers", len(cfg.brokerAddrs), cfg.brokers)
	}
	frames, err := remoting.NewLimiter(cfg.frameBytes)
	if err != nil {
		return nil, fmt.Errorf("rocketmqtest: %w", err)
	}
	s := &Server{cfg: &cfg, faults: map[RequestCode]Fault{}, done: make(chan struct{}), frames: frames}
	if s.ns, err = newEndpoint(s, cfg.nsAddr, s.handleNameServer, nil); err != nil {
		return nil, fmt.Errorf("rocketmqtest: name server: %w", err)
	}
	for i := range cfg.brokers {
		b, err := newBroker(s, brokerName(i), cfg.brokerAddr(i))
		if err != nil {
			s.ns.ln.Close()
			for _, b := range s.brokers {
				b.ep.ln.Close()
			}
			return nil, fmt.Errorf("rocketmqtest: broker %d: %w", i, err)
		}
		s.brokers = append(s.brokers, b)
	}
	s.wg.Add(1)
	go s.ns.serve()
	for _, b := range s.brokers {
		b.start()
	}
	return s, nil
}

// RunT is Run for tests: it fails t if the server cannot start and closes
// the server when the test ends.
func RunT(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Run(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// brokerName gives RocketMQ's customary names: broker-a, broker-b, ...
func brokerName(i int) string {
	return "broker-" + string(rune('a'+i))
}

// NameServer returns the name server address, for
// producer.WithNameServer([]string{s.NameServer()}) and its consumer twin.
func (s *Server) NameServer() string { return s.ns.addr() }

// Broker describes one broker.
type Broker struct {
	Name string // brokerName, as in primitive.MessageQueue
	Addr string // host:port of the master
}

// Brokers lists the brokers in name order.
func (s *Server) Brokers() []Broker {
	out := make([]Broker, len(s.brokers))
	for i, b := range s.brokers {
		out[i] = Broker{Name: b.name, Addr: b.addr}
	}
	return out
}

// Close stops every goroutine and closes every connection. It is
// idempotent and always returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.done)
		s.ns.closeAll()
		for _, b := range s.brokers {
			b.ep.closeAll()
		}
		s.wg.Wait()
	})
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.logf != nil {
		s.cfg.logf(format, args...)
	}
}

// dispatch applies injected faults, then the endpoint's handler, and makes
// sure a request never goes unanswered because of a bug in a handler.
func (s *Server) dispatch(c *conn, req *remoting.Command) (resp *remoting.Command) {
	n, ok := s.requests.Load(RequestCode(req.Code))
	if !ok {
		n, _ = s.requests.LoadOrStore(RequestCode(req.Code), new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
	if f, ok := s.fault(c.id(), RequestCode(req.Code)); ok {
		switch {
		case f.Close:
			c.close()
			return nil
		case f.NoReply:
			return nil
		}
		code := f.Code
		if code == 0 {
			code = SystemError
		}
		remark := f.Remark
		if remark == "" {
			remark = fmt.Sprintf("rocketmqtest: injected failure of request code %d", req.Code)
		}
		return remoting.NewResponse(req, int16(code), remark)
	}
	defer func() {
		if p := recover(); p != nil {
			s.logf("rocketmqtest: panic handling %v: %v", req, p)
			resp = remoting.NewResponse(req, remoting.SystemError, fmt.Sprintf("rocketmqtest: internal error: %v", p))
		}
	}()
	return c.ep.handle(c, req)
}

// errClosed reports a call on a closed server.
var errClosed = errors.New("rocketmqtest: server closed")

// Requests returns how many requests with the code the name server and the
// brokers have received, to assert for instance that a caught-up consumer
// does not spin on pulls.
func (s *Server) Requests(code RequestCode) int64 {
	if n, ok := s.requests.Load(code); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}
