package remoting

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed reports a request on a closed connection or client.
var ErrClosed = errors.New("remoting: connection closed")

// writeTimeout bounds one write, so that a peer that stops reading cannot
// wedge the caller.
const writeTimeout = 10 * time.Second

// Handler answers a request the peer sent (a broker's NOTIFY_CONSUMER_IDS_CHANGED,
// say). A nil result sends no answer. It runs on the connection's read loop,
// so it must not block or invoke on the same connection.
type Handler func(req *Command) *Command

// Conn is one connection to a name server or broker. Requests are
// multiplexed by opaque; it is safe for concurrent use.
type Conn struct {
	nc      net.Conn
	handler Handler
	opaque  atomic.Int32

	wmu sync.Mutex // serializes frames on the socket

	mu      sync.Mutex
	pending map[int32]chan *Command
	err     error // set once when the connection dies
	done    chan struct{}
}

// Dial connects to addr. handler may be nil: requests from the peer are then
// dropped, as the peer expects no answer to notifications.
func Dial(ctx context.Context, addr string, handler Handler) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("remoting: dial %q: %w", addr, err)
	}
	c := &Conn{nc: nc, handler: handler, pending: map[int32]chan *Command{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Done is closed when the connection is gone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection is gone, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; pending requests fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
}

func (c *Conn) readLoop() {
	r := NewReader(c.nc, 0)
	for {
		cmd, err := r.Read()
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		}
		if cmd.IsResponse() {
			c.mu.Lock()
			ch := c.pending[cmd.Opaque]
			delete(c.pending, cmd.Opaque)
			c.mu.Unlock()
			if ch != nil {
				ch <- cmd
			}
			continue
		}
		if c.handler == nil {
			continue
		}
		if resp := c.handler(cmd); resp != nil && !cmd.IsOneway() {
			resp.Opaque = cmd.Opaque
			resp.Flag |= FlagResponse
			_ = c.write(resp)
		}
	}
}

func (c *Conn) write(cmd *Command) error {
	frame, err := Encode(cmd)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(frame); err != nil {
		c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
		return err
	}
	return nil
}

// Invoke sends req and waits for its response until ctx is done. It sets
// req's opaque.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	req.Opaque = c.opaque.Add(1)
	req.Flag &^= FlagResponse | FlagOneway
	ch := make(chan *Command, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[req.Opaque] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, req.Opaque)
		c.mu.Unlock()
	}
	if err := c.write(req); err != nil {
		forget()
		return nil, fmt.Errorf("remoting: request code %d: %w", req.Code, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-c.done:
		return nil, fmt.Errorf("remoting: request code %d: %w", req.Code, c.Err())
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("remoting: request code %d: %w", req.Code, ctx.Err())
	}
}

// InvokeOneway sends req flagged one-way; the peer sends no answer.
func (c *Conn) InvokeOneway(ctx context.Context, req *Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req.Opaque = c.opaque.Add(1)
	req.Flag = req.Flag&^FlagResponse | FlagOneway
	if err := c.Err(); err != nil {
		return err
	}
	return c.write(req)
}

// Client keeps one connection per address and redials a dead one on the
// next request.
type Client struct {
	handler Handler

	mu     sync.Mutex
	conns  map[string]*Conn
	closed bool
}

// NewClient returns a client; handler answers requests peers send (nil
// drops them).
func NewClient(handler Handler) *Client {
	return &Client{handler: handler, conns: map[string]*Conn{}}
}

func (c *Client) conn(ctx context.Context, addr string) (*Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if cn := c.conns[addr]; cn != nil && cn.Err() == nil {
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	// Dial without the lock, so that one unreachable broker does not hold
	// up requests to the others.
	cn, err := Dial(ctx, addr, c.handler)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.Close()
		return nil, ErrClosed
	}
	if old := c.conns[addr]; old != nil && old.Err() == nil {
		cn.Close() // lost a race with another dial; keep one connection
		return old, nil
	}
	c.conns[addr] = cn
	return cn, nil
}

// Invoke sends req to addr and waits for the response.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return cn.Invoke(ctx, req)
}

// InvokeOneway sends req to addr without waiting for an answer.
func (c *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	return cn.InvokeOneway(ctx, req)
}

// Close closes every connection. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	conns := c.conns
	c.conns = map[string]*Conn{}
	c.closed = true
	c.mu.Unlock()
	for _, cn := range conns {
		cn.Close()
	}
	return nil
}
