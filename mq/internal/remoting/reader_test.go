package remoting_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
)

func TestNewLimiterValidates(t *testing.T) {
	t.Parallel()
	if _, err := remoting.NewLimiter(remoting.DefaultMaxFrameSize - 1); err == nil {
		t.Error("NewLimiter accepted a limit below one frame")
	}
	if l, err := remoting.NewLimiter(remoting.DefaultMaxFrameSize); err != nil || l.InFlight() != 0 {
		t.Errorf("NewLimiter(DefaultMaxFrameSize) = %v, %v", l, err)
	}
}

// A frame far longer than the first chunk arrives in pieces and comes out
// whole: the buffer grows with the bytes, and the limiter is free again once
// the frame is complete.
func TestReaderGrowsWithTheBytesReceived(t *testing.T) {
	t.Parallel()
	body := make([]byte, 3<<20+17)
	for i := range body {
		body[i] = byte(i * 7)
	}
	frame, err := remoting.Encode(remoting.NewRequest(remoting.SendMessage, map[string]string{"b": "t"}, body))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := remoting.NewLimiter(remoting.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := net.Pipe()
	defer srv.Close()
	go func() {
		defer cli.Close()
		for b := frame; len(b) > 0; {
			n := min(len(b), 1000)
			if _, err := cli.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	c, err := remoting.NewReader(srv, 0, remoting.WithLimiter(lim)).Read()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Body, body) || c.ExtFields["b"] != "t" {
		t.Errorf("read back %v", c)
	}
	if n := lim.InFlight(); n != 0 {
		t.Errorf("limiter holds %d bytes after the frame completed", n)
	}
}

// A reader that announces a long frame holds only what arrived; when two
// partly received frames would exceed the shared limit, the one asking for
// more fails with ErrOverLimit and the other completes.
func TestLimiterBoundsFramesAcrossReaders(t *testing.T) {
	t.Parallel()
	lim, err := remoting.NewLimiter(remoting.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	const total = remoting.DefaultMaxFrameSize
	prefix := binary.BigEndian.AppendUint32(nil, total)

	// Reader A receives 9 MiB of a 16 MiB frame, then waits.
	aSrv, aCli := net.Pipe()
	defer aSrv.Close()
	defer aCli.Close()
	aDone := make(chan error, 1)
	go func() {
		_, err := remoting.NewReader(aSrv, 0, remoting.WithLimiter(lim)).Read()
		aDone <- err
	}()
	if _, err := aCli.Write(append(prefix, make([]byte, 9<<20)...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for lim.InFlight() < 9<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("limiter holds %d bytes, want at least 9 MiB", lim.InFlight())
		}
		time.Sleep(time.Millisecond) // polling a counter, nothing to signal
	}
	if n := lim.InFlight(); n > 2*(9<<20) {
		t.Errorf("limiter holds %d bytes for 9 MiB received", n)
	}

	// Reader B announces the same and sends 1 MiB: no room.
	bSrv, bCli := net.Pipe()
	defer bSrv.Close()
	go func() {
		defer bCli.Close()
		_, _ = bCli.Write(append(prefix, make([]byte, 1<<20)...))
	}()
	_, err = remoting.NewReader(bSrv, 0, remoting.WithLimiter(lim)).Read()
	if !errors.Is(err, remoting.ErrOverLimit) {
		t.Errorf("second reader: %v, want ErrOverLimit", err)
	}

	// A short frame still gets through: its first chunk is never refused.
	small, err := remoting.Encode(remoting.NewRequest(remoting.HeartBeat, nil, []byte("hb")))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := remoting.NewReader(bytes.NewReader(small), 0, remoting.WithLimiter(lim)).Read(); err != nil || string(c.Body) != "hb" {
		t.Errorf("short frame with the limiter full: %v, %v", c, err)
	}

	// A's peer sends the rest: A reads a malformed-header frame (all
	// zeros is a JSON header of length 0), and the limiter is empty.
	if _, err := aCli.Write(make([]byte, total-9<<20)); err != nil {
		t.Fatal(err)
	}
	if err := <-aDone; err != nil && !errors.Is(err, remoting.ErrMalformed) {
		t.Errorf("first reader: %v", err)
	}
	if n := lim.InFlight(); n != 0 {
		t.Errorf("limiter holds %d bytes after both readers returned", n)
	}
}

// FuzzReader feeds arbitrary streams to a limited Reader: it must never
// panic, never read a frame over its cap, and always give the limiter back
// what it took.
func FuzzReader(f *testing.F) {
	frame, err := remoting.Encode(remoting.NewRequest(remoting.HeartBeat, map[string]string{"k": "v"}, []byte("body")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(frame)
	f.Add(append(frame, frame...))
	f.Add([]byte{0, 0x10, 0, 0, 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0, 0, 6, 0, 0, 0, 2, '{', '}', 0, 0})
	lim, err := remoting.NewLimiter(remoting.DefaultMaxFrameSize)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := remoting.NewReader(bytes.NewReader(stream), 1<<20, remoting.WithLimiter(lim))
		for range 64 {
			c, err := r.Read()
			if n := lim.InFlight(); n != 0 {
				t.Fatalf("limiter holds %d bytes between frames", n)
			}
			if err != nil {
				if err == io.EOF && c != nil {
					t.Fatal("command with io.EOF")
				}
				return
			}
			if len(c.Body) > 1<<20 {
				t.Fatalf("body of %d bytes over the 1 MiB cap", len(c.Body))
			}
		}
	})
}
