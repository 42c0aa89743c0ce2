package rocketmqtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

const (
	// writeTimeout bounds one write to a client: a client that stops reading
	// loses its connection instead of pinning memory forever.
	writeTimeout = 10 * time.Second
	// maxPendingOutput caps what may queue for one slow client.
	maxPendingOutput = 64 << 20
)

// handlerFunc answers one request. A nil response means "answered later" (a
// held pull) or "no answer" (one-way).
type handlerFunc func(c *conn, req *remoting.Command) *remoting.Command

// endpoint is one listening socket (the name server or one broker) and its
// connections.
type endpoint struct {
	srv     *Server
	ln      net.Listener
	handle  handlerFunc
	onClose func(c *conn) // called once per connection, after it is closed

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func newEndpoint(srv *Server, addr string, handle handlerFunc, onClose func(*conn)) (*endpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &endpoint{srv: srv, ln: ln, handle: handle, onClose: onClose, conns: map[*conn]struct{}{}}, nil
}

func (e *endpoint) addr() string { return e.ln.Addr().String() }

func (e *endpoint) serve() {
	defer e.srv.wg.Done()
	for {
		nc, err := e.ln.Accept()
		if err != nil {
			return // closed by Server.Close
		}
		if n := e.srv.conns.Add(1); n > int64(e.srv.cfg.maxConns) {
			e.srv.conns.Add(-1)
			e.srv.logf("rocketmqtest: %s: refused connection from %s: %d connections open (WithMaxConns)", e.addr(), nc.RemoteAddr(), n-1)
			nc.Close()
			continue
		}
		c := &conn{ep: e, nc: nc, signal: make(chan struct{}, 1), done: make(chan struct{})}
		c.lastWrite.Store(time.Now().UnixNano())
		e.mu.Lock()
		if e.srv.closing.Load() {
			e.mu.Unlock()
			e.srv.conns.Add(-1)
			nc.Close()
			continue
		}
		e.conns[c] = struct{}{}
		e.srv.wg.Add(2)
		e.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// closeAll closes the listener and every connection.
func (e *endpoint) closeAll() {
	e.ln.Close()
	e.mu.Lock()
	conns := make([]*conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// conn is one client connection. Requests are handled one at a time on the
// read loop, in order, like a Netty channel; responses go through a buffer
// drained by the write loop so that a handler never blocks on a socket.
type conn struct {
	ep *endpoint
	nc net.Conn

	// clientID is set by the client's first heartbeat; DropClient uses it.
	clientID atomic.Pointer[string]
	// lastWrite is when the write loop last wrote (unix ns): a connection
	// the server writes to is not idle.
	lastWrite atomic.Int64

	mu     sync.Mutex
	out    []byte
	closed bool
	signal chan struct{}
	done   chan struct{}
}

func (c *conn) remoteAddr() string { return c.nc.RemoteAddr().String() }

func (c *conn) id() string {
	if p := c.clientID.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *conn) readLoop() {
	defer c.ep.srv.wg.Done()
	defer c.close()
	r := remoting.NewReader(&idleReader{c: c, idle: c.ep.srv.cfg.idleTimeout}, remoting.DefaultMaxFrameSize,
		remoting.WithLimiter(c.ep.srv.frames))
	for {
		req, err := r.Read()
		if err != nil {
			// A malformed frame leaves the stream out of sync: close this
			// connection, and only this one. So does a frame over the
			// in-flight bound, and an idle connection.
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.ep.srv.logf("rocketmqtest: %s: closing connection from %s: %v", c.ep.addr(), c.remoteAddr(), err)
			}
			return
		}
		if req.IsResponse() {
			continue // answers to our notifications carry nothing we need
		}
		resp := c.ep.srv.dispatch(c, req)
		if resp != nil && !req.IsOneway() {
			c.send(resp)
		}
	}
}

// send queues cmd for the write loop. It never blocks.
func (c *conn) send(cmd *remoting.Command) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	out, err := remoting.AppendFrame(c.out, cmd)
	if err != nil || len(out) > maxPendingOutput {
		c.mu.Unlock()
		if err != nil {
			c.ep.srv.logf("rocketmqtest: encoding response %v: %v", cmd, err)
		}
		c.close()
		return
	}
	c.out = out
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	defer c.ep.srv.wg.Done()
	var buf []byte
	for {
		select {
		case <-c.signal:
		case <-c.done:
			return
		}
		c.mu.Lock()
		buf, c.out = c.out, buf[:0]
		c.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.nc.Write(buf); err != nil {
			c.close()
			return
		}
		c.lastWrite.Store(time.Now().UnixNano())
		if cap(buf) > 1<<20 {
			buf = nil // let a burst's buffer go
		}
	}
}

// close closes the connection once and tells the endpoint's owner, as a
// Netty channelInactive would.
func (c *conn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.out = nil
	close(c.done)
	c.mu.Unlock()
	c.ep.mu.Lock()
	delete(c.ep.conns, c)
	c.ep.mu.Unlock()
	c.ep.srv.conns.Add(-1)
	// Drop the client's registrations before the socket closes, so that
	// whoever sees the EOF also sees the broker without the client.
	if c.ep.onClose != nil {
		c.ep.onClose(c)
	}
	c.nc.Close()
}

// errIdle closes a connection without traffic for the idle timeout.
var errIdle = errors.New("rocketmqtest: connection idle")

// idleReader reads from a connection and fails with errIdle once neither a
// byte arrived nor a write went out for idle, as Netty's IdleStateHandler
// with allIdleTime does on the real broker. The read deadline is moved only
// when it fires, not on every read.
type idleReader struct {
	c        *conn
	idle     time.Duration
	lastRead int64 // unix ns; only the read loop touches it
	armed    bool
}

func (r *idleReader) Read(p []byte) (int, error) {
	if !r.armed {
		r.lastRead = time.Now().UnixNano()
		_ = r.c.nc.SetReadDeadline(time.Now().Add(r.idle))
		r.armed = true
	}
	for {
		n, err := r.c.nc.Read(p)
		if n > 0 {
			r.lastRead = time.Now().UnixNano()
		}
		var ne net.Error
		if err == nil || n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
			return n, err
		}
		last := time.Unix(0, max(r.lastRead, r.c.lastWrite.Load()))
		if time.Since(last) >= r.idle {
			return 0, fmt.Errorf("%w for %v", errIdle, r.idle)
		}
		_ = r.c.nc.SetReadDeadline(last.Add(r.idle))
	}
}
