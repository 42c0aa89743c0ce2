package remoting_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

// echoServer answers each request with its code as the response code and
// its body echoed back, except code 99 which it never answers, and sends a
// request of its own (code 40) after answering code 7.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			wg.Go(func() {
				r := remoting.NewReader(nc, 0)
				for {
					req, err := r.Read()
					if err != nil {
						return
					}
					if req.Code == 99 || req.IsOneway() {
						continue
					}
					resp := remoting.NewResponse(req, req.Code, "")
					resp.Body = req.Body
					frame, _ := remoting.Encode(resp)
					if req.Code == 7 {
						n := remoting.NewRequest(40, map[string]string{"consumerGroup": "g"}, nil)
						more, _ := remoting.Encode(n)
						frame = append(frame, more...)
					}
					if _, err := nc.Write(frame); err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestClientInvoke(t *testing.T) {
	t.Parallel()
	addr := echoServer(t)
	notified := make(chan string, 1)
	c := remoting.NewClient(func(req *remoting.Command) *remoting.Command {
		notified <- req.ExtFields["consumerGroup"]
		return nil
	})
	defer c.Close()
	ctx := context.Background()

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			resp, err := c.Invoke(ctx, addr, remoting.NewRequest(int16(i), nil, []byte{byte(i)}))
			if err != nil || resp.Code != int16(i) || len(resp.Body) != 1 || resp.Body[0] != byte(i) {
				t.Errorf("request %d: %v, %v", i, resp, err)
			}
		})
	}
	wg.Wait()

	if _, err := c.Invoke(ctx, addr, remoting.NewRequest(7, nil, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-notified:
		if g != "g" {
			t.Errorf("handler saw group %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called for a server request")
	}

	if err := c.InvokeOneway(ctx, addr, remoting.NewRequest(15, nil, nil)); err != nil {
		t.Errorf("one-way: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(short, addr, remoting.NewRequest(99, nil, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered request: %v, want deadline exceeded", err)
	}

	c.Close()
	if _, err := c.Invoke(ctx, addr, remoting.NewRequest(1, nil, nil)); !errors.Is(err, remoting.ErrClosed) {
		t.Errorf("Invoke after Close: %v, want ErrClosed", err)
	}
}

func TestConnFailsPendingOnClose(t *testing.T) {
	t.Parallel()
	addr := echoServer(t)
	c, err := remoting.Dial(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), remoting.NewRequest(99, nil, nil))
		done <- err
	}()
	// Close may come before or after the request is written; either way
	// the caller must be released with ErrClosed.
	c.Close()
	if err := <-done; !errors.Is(err, remoting.ErrClosed) {
		t.Errorf("pending request after Close: %v, want ErrClosed", err)
	}
	if c.Err() == nil {
		t.Error("Err() is nil after Close")
	}
	if err := c.InvokeOneway(context.Background(), remoting.NewRequest(1, nil, nil)); !errors.Is(err, remoting.ErrClosed) {
		t.Errorf("InvokeOneway after Close: %v", err)
	}
}

func TestDialFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := remoting.Dial(context.Background(), addr, nil); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
}
