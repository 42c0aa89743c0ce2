package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"go.uber.org/goleak"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	goleak.VerifyTestMain(m, rocketmqtest.IgnoreClientGoroutines()...)
}

// build compiles the command into a directory removed with the test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "minimq")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestServesAnotherProcessAndStopsOnSignal runs the built command as a child
// process on free ports, sends and pulls through the real client from this
// process, and stops it with SIGINT, then again with SIGTERM: each must end
// with exit code 0.
func TestServesAnotherProcessAndStopsOnSignal(t *testing.T) {
	rocketmqtest.SkipIfClientRaces(t)
	bin := build(t)
	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-broker-addrs", "127.0.0.1:0", "-retain-messages", "1000")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			var nameServer, broker string
			for lines.Scan() {
				f := strings.Fields(lines.Text())
				switch {
				case len(f) == 3 && f[1] == "nameserver":
					nameServer = f[2]
				case len(f) == 4 && f[1] == "broker":
					broker = f[3]
				}
				if lines.Text() == "minimq: ready" {
					break
				}
			}
			if nameServer == "" || broker == "" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no addresses printed; stderr: %s", stderr.String())
			}

			topic := "standalone-" + sig.String()
			p, err := rocketmq.NewProducer(producer.WithNameServer([]string{nameServer}),
				producer.WithInstanceName("minimq-test-p"+string(rune('0'+i))), producer.WithRetry(2),
				producer.WithQueueSelector(producer.NewManualQueueSelector()))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{"one", "two", "three"} {
				// All to queue 0: a pull of an empty queue would be held 20 s.
				msg := primitive.NewMessage(topic, []byte(body))
				msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
				r, err := p.SendSync(ctx, msg)
				if err != nil || r.Status != primitive.SendOK {
					t.Fatalf("send %q: %v, %v", body, r, err)
				}
			}
			pc, err := rocketmq.NewPullConsumer(consumer.WithNameServer([]string{nameServer}),
				consumer.WithGroupName("standalone"), consumer.WithInstance("minimq-test-c"+string(rune('0'+i))))
			if err != nil {
				t.Fatal(err)
			}
			if err := pc.Subscribe(topic, consumer.MessageSelector{}); err != nil {
				t.Fatal(err)
			}
			if err := pc.Start(); err != nil {
				t.Fatal(err)
			}
			var got []string
			mq := primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: 0}
			r, err := pc.PullFrom(ctx, &mq, 0, 32)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range r.GetMessageExts() {
				got = append(got, string(m.Body))
				if m.StoreHost != broker {
					t.Errorf("message stored by %s, want the printed broker %s", m.StoreHost, broker)
				}
			}
			pc.Shutdown()
			p.Shutdown()
			if strings.Join(got, ",") != "one,two,three" {
				t.Errorf("pulled %v, want the 3 sent", got)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for lines.Scan() { // drain "stopping"
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %v: %v; stderr: %s", sig, err, stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d after %v", code, sig)
			}
		})
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, 2, `unexpected argument "serve"`},
		{"address without port", []string{"-addr", "localhost"}, 2, `invalid -addr localhost: "localhost" is not host:port`},
		{"host name", []string{"-addr", "localhost:0"}, 2, "invalid -addr localhost:0: \"localhost:0\": host must be an IPv4 address"},
		{"negative retention", []string{"-addr", "127.0.0.1:0", "-retain-messages", "-1"}, 2, "invalid -retain-messages -1 -retain-bytes 67108864: negative"},
		{"too many brokers", []string{"-brokers", "99"}, 2, "invalid -brokers 99: outside [1, 16]"},
		{"negative brokers", []string{"-brokers", "-1"}, 2, "invalid -brokers -1: outside [1, 16]"},
		{"no queues", []string{"-queues", "0"}, 2, "invalid -queues 0: outside [1, 1024]"},
		{"zero idle", []string{"-idle", "0s"}, 2, "invalid -idle 0s: not positive"},
		{"zero expiry", []string{"-channel-expiry", "0s"}, 2, "invalid -channel-expiry 0s: not positive"},
		{"no connections", []string{"-max-conns", "0"}, 2, "invalid -max-conns 0: below 1"},
		{"broker address", []string{"-broker-addrs", "x"}, 2, `invalid -broker-addrs x: address 0: "x" is not host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), tc.args, &out, &errOut); code != tc.want || !strings.Contains(errOut.String(), tc.msg) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), tc.want, tc.msg)
			}
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-broker-addrs", "127.0.0.1:0"}, &syncWriter{w: &out, ready: cancel}, &errOut)
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, stderr %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
}

// syncWriter calls ready once "ready" is written: the server is up.
type syncWriter struct {
	mu    sync.Mutex
	w     *bytes.Buffer
	ready func()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Contains(p, []byte("ready")) {
		s.ready()
	}
	return s.w.Write(p)
}
