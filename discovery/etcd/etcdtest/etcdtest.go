// Package etcdtest runs a real etcd server inside the process, on
// 127.0.0.1, for tests and demos of the etcd registry. It can be stopped
// and started again on the same ports and data, to show what clients do
// while etcd is unreachable.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// MinTTL is the shortest lease TTL the server grants, in seconds. The
// server's minimum is 1.5 election ticks rounded up to a second; its
// ticks are short here (10ms heartbeat, 100ms election) so that tests can
// use 1-second leases.
const MinTTL = 1

// Server is an embedded single-member etcd.
type Server struct {
	mu     sync.Mutex
	dir    string
	ownDir bool
	client string // host:port
	peer   string
	e      *embed.Etcd
}

// Start starts a server with a data directory of its own (removed by
// Close) on two free loopback ports.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{dir: dir, ownDir: true, client: ports[0], peer: ports[1]}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// Endpoint is the client address, host:port, for clientv3.Config.
func (s *Server) Endpoint() string { return s.client }

// Restart starts the server again after Stop, on the same ports and data.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		return errors.New("etcdtest: already running")
	}
	cfg := embed.NewConfig()
	cfg.Dir = s.dir
	cfg.Name = "etcdtest"
	cu := url.URL{Scheme: "http", Host: s.client}
	pu := url.URL{Scheme: "http", Host: s.peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.TickMs, cfg.ElectionMs = 10, 100
	// etcd logs its own shutdown as errors: quiet, since Stop is routine here.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // a test server: speed over durability
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcdtest: start: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("etcdtest: not ready after 30s")
	}
	s.e = e
	return nil
}

// Stop stops the server; its data stays for Restart. Clients see it as
// unreachable, but not at once: etcd stops gracefully, which takes about
// 5s while clients hold streams (a watch does). Meanwhile it refuses new
// connections and streams, yet serves the streams it has, watches and
// lease renewals, and still expires leases: a lease whose renewal stream
// was not open when Stop began expires then, and watchers see its keys go.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		s.e.Close()
		s.e = nil
	}
}

// Close stops the server and removes its data.
func (s *Server) Close() {
	s.Stop()
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
}
