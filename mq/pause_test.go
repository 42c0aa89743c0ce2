package mq_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/taglane/taglane/mq"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// leaderOf waits until exactly one of st says it is the takeover leader
// and returns its index.
func leaderOf(t testing.TB, st []*mq.Consumer) int {
	t.Helper()
	leader := -1
	waitFor(t, 10*time.Second, func() string {
		leader = -1
		n := 0
		for i, c := range st {
			if c.Leader() {
				leader, n = i, n+1
			}
		}
		if n != 1 {
			return fmt.Sprintf("%d stable instances say they lead, want 1", n)
		}
		return ""
	})
	return leader
}

// waitLost waits up to timeout for every body and returns those that never
// came: a lost message is one no handler ever gets.
func waitLost(t testing.TB, rec *rocketmqtest.Recorder, timeout time.Duration, bodies []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rec.Wait(ctx, bodies...); err == nil {
		return nil
	}
	return rec.Missing(bodies...)
}

// TestFrozenStableAcrossTakeover is the sequence of issue 12: a stable
// instance is frozen (as by SIGSTOP: a handler call blocked after its
// decision, its pulled messages waiting, its refresh blocked with answers
// in hand), the lane crashes meanwhile and the leader completes the
// takeover, then the frozen instance resumes with its old beliefs. Every
// blue message must still be handled by someone.
func TestFrozenStableAcrossTakeover(t *testing.T) {
	for _, freezeLeader := range []bool{false, true} {
		name := "non-leader"
		if freezeLeader {
			name = "leader"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			skipIfClientRaces(t)
			s := rocketmqtest.RunT(t)
			const topic = "frozen"
			if err := s.CreateTopic(topic, 4); err != nil {
				t.Fatal(err)
			}
			rec := new(rocketmqtest.Recorder)
			st := []*mq.Consumer{
				startConsumer(t, s, "svc", topic, "", rec.Handler("stable-0"), rec),
				startConsumer(t, s, "svc", topic, "", rec.Handler("stable-1"), rec),
			}
			g := newGate(t)
			lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
			for _, c := range st {
				waitOnline(t, c, "blue")
			}
			leader := leaderOf(t, st)
			frozen, other := st[1-leader], st[leader]
			if freezeLeader {
				frozen, other = other, frozen
			}
			p := newProducer(t, s)
			stream := startStream(t, p, topic, "frozen", time.Millisecond, "blue", "", "blue")
			stream.waitSent(t, 100)

			resume := mq.Freeze(frozen)
			stream.waitSent(t, 100)
			crash(t, s, lane, g)
			if !freezeLeader {
				// The leader completes the takeover while the other
				// instance is frozen, and keeps the lane's offsets up.
				waitFor(t, 20*time.Second, func() string {
					if other.Stats().Takeovers == 0 {
						return "the leader completed no takeover"
					}
					return ""
				})
			}
			stream.waitSent(t, 1500) // well past the staleness bound at 1 msg/ms
			resume()
			stream.waitSent(t, 600)
			blue := stream.bodies("blue")
			all := append(append([]string{}, blue...), stream.bodies("")...)
			lost := waitLost(t, rec, 20*time.Second, all)
			t.Logf("%d blue of %d messages; lost %d; duplicates %d; handed over %d+%d, takeovers %d+%d",
				len(blue), len(all), len(lost), rec.Duplicates(all...),
				st[0].Stats().Redelivered, st[1].Stats().Redelivered, st[0].Stats().Takeovers, st[1].Stats().Takeovers)
			if len(lost) > 0 {
				t.Errorf("%d messages lost, first %q", len(lost), lost[0])
			}
		})
	}
}

// cutProxy forwards TCP connections to a target until cut: then it closes
// what it forwards and accepts only to close at once, as an unreachable
// name server looks to a client, until restored.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// setCut cuts (closing every forwarded connection) or restores the proxy.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestStableRefreshesFailAcrossTakeover: one stable instance loses its
// name server, so its liveness refreshes fail for far longer than the
// staleness bound, while the lane crashes and the leader completes the
// takeover. The failing instance must stop skipping the lane's tag once
// its last "online" answer is older than the bound, and must not take the
// lane for online again when its refreshes come back with "offline".
func TestStableRefreshesFailAcrossTakeover(t *testing.T) {
	t.Parallel()
	skipIfClientRaces(t)
	s := rocketmqtest.RunT(t)
	const topic = "failing"
	if err := s.CreateTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	rec := new(rocketmqtest.Recorder)
	proxies := []*cutProxy{newCutProxy(t, s.NameServer()), newCutProxy(t, s.NameServer())}
	var st []*mq.Consumer
	for i, px := range proxies {
		st = append(st, startConsumer(t, s, "svc", topic, "", rec.Handler(fmt.Sprintf("stable-%d", i)), rec,
			mq.WithNameServer(px.addr())))
	}
	g := newGate(t)
	lane := startConsumer(t, s, "svc", topic, "blue", g.wrap(rec.Handler("blue")), rec)
	for _, c := range st {
		waitOnline(t, c, "blue")
	}
	leader := leaderOf(t, st)
	failing, other := 1-leader, leader
	p := newProducer(t, s)
	stream := startStream(t, p, topic, "failing", time.Millisecond, "blue", "", "blue")
	stream.waitSent(t, 100)

	proxies[failing].setCut(true)
	cutAt := time.Now()
	// Its last "online" answer ages past the bound: it skips nothing.
	waitOnline(t, st[failing])
	if d := time.Since(cutAt); d < testStaleness-2*testRefresh {
		t.Errorf("the failing instance stopped trusting blue after %v, before the staleness bound %v", d, testStaleness)
	}
	crash(t, s, lane, g)
	waitFor(t, 20*time.Second, func() string {
		if st[other].Stats().Takeovers == 0 {
			return "the leader completed no takeover"
		}
		return ""
	})
	stream.waitSent(t, 1000)
	proxies[failing].setCut(false)
	stream.waitSent(t, 600)
	blue := stream.bodies("blue")
	all := append(append([]string{}, blue...), stream.bodies("")...)
	lost := waitLost(t, rec, 20*time.Second, all)
	t.Logf("%d blue of %d messages; refreshes failed for %v; lost %d; duplicates %d; handed over %d+%d",
		len(blue), len(all), time.Since(cutAt).Round(time.Millisecond), len(lost), rec.Duplicates(all...),
		st[0].Stats().Redelivered, st[1].Stats().Redelivered)
	if len(lost) > 0 {
		t.Errorf("%d messages lost, first %q", len(lost), lost[0])
	}
}
