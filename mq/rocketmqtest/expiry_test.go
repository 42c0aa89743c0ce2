package rocketmqtest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// watcher is a raw group member that heartbeats on its own schedule and
// reports every NOTIFY_CONSUMER_IDS_CHANGED it receives.
type watcher struct {
	notified chan string
	stop     chan struct{}
	done     chan struct{}
}

// startWatcher joins group on topic as "ip@watcher" and, if every > 0,
// heartbeats again every interval until the test ends (bounded in count).
func startWatcher(t *testing.T, s *rocketmqtest.Server, group, topic string, every time.Duration) *watcher {
	t.Helper()
	w := &watcher{notified: make(chan string, 64), stop: make(chan struct{}), done: make(chan struct{})}
	c := dial(t, s.Brokers()[0].Addr, func(req *remoting.Command) *remoting.Command {
		if req.Code == remoting.NotifyConsumerIDsChanged {
			select {
			case w.notified <- req.ExtFields["consumerGroup"]:
			default:
			}
		}
		return nil
	})
	heartbeat(t, c, "ip@watcher", group, topic)
	<-w.notified // its own join
	go func() {
		defer close(w.done)
		if every <= 0 {
			return
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range 1000 {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := c.Invoke(ctx, remoting.NewRequest(remoting.HeartBeat, nil, mustHeartbeatBody("ip@watcher", group, topic)))
			cancel()
			if err != nil || r.Code != remoting.Success {
				t.Errorf("watcher heartbeat: %v, %v", r, err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(w.stop); <-w.done })
	return w
}

func (w *watcher) expectNotified(t *testing.T, why string) {
	t.Helper()
	select {
	case <-w.notified:
	case <-time.After(10 * time.Second):
		t.Fatalf("no NOTIFY_CONSUMER_IDS_CHANGED %s", why)
	}
}

// A real consumer that stops heartbeating (every v2.1.2 client does, for
// 30 s, after each heartbeat) expires; the broker drops and closes it but
// tells nobody, as a real 4.9.4 does. A normal close does notify.
func TestExpiryDoesNotNotifyButCloseDoes(t *testing.T) {
	t.Parallel()
	rocketmqtest.SkipIfClientRaces(t)
	const topic, group = "expiring", "expiring-group"

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		const expiry = time.Second
		s := rocketmqtest.RunT(t, rocketmqtest.WithChannelExpiry(expiry))
		if err := s.CreateTopic(topic, 2); err != nil {
			t.Fatal(err)
		}
		w := startWatcher(t, s, group, topic, expiry/20)
		silent := newPushConsumer(t, s, group, topic, nil, nil)
		w.expectNotified(t, "when the real consumer joined")
		id := clientID(t, s, group, silent.name)
		before := s.Notifications()
		waitFor(t, 10*expiry, func() string {
			if slices.Contains(s.OnlineConsumers(group), id) {
				return "silent consumer " + id + " not expired"
			}
			return ""
		}, nil)
		// Absence can only be shown by waiting: a notification would
		// have been queued by the housekeeping pass that dropped it, so
		// two more passes are ample.
		select {
		case g := <-w.notified:
			t.Errorf("notified about %q after an expiry", g)
		case <-time.After(expiry / 2):
		}
		if n := s.Notifications() - before; n != 0 {
			t.Errorf("%d notifications sent on expiry, want 0", n)
		}
		if got := s.OnlineConsumers(group); !slices.Equal(got, []string{"ip@watcher"}) {
			t.Errorf("online after expiry %v, want the watcher only", got)
		}
	})

	t.Run("close", func(t *testing.T) {
		t.Parallel()
		s := rocketmqtest.RunT(t)
		if err := s.CreateTopic(topic, 2); err != nil {
			t.Fatal(err)
		}
		w := startWatcher(t, s, group, topic, 0)
		leaving := newPushConsumer(t, s, group, topic, nil, nil)
		w.expectNotified(t, "when the real consumer joined")
		id := clientID(t, s, group, leaving.name)
		if err := leaving.Shutdown(); err != nil {
			t.Fatal(err)
		}
		w.expectNotified(t, "when the real consumer shut down")
		if got := s.OnlineConsumers(group); slices.ContainsFunc(got, func(c string) bool { return strings.HasSuffix(c, id) }) {
			t.Errorf("online after Shutdown %v", got)
		}
	})
}

// A connection shared by two groups: one group's entry expires, the close
// that follows drops the other group's entry too, and that group is
// notified, as doChannelCloseEvent does on the real broker.
func TestExpiryCloseNotifiesTheConnectionsOtherGroups(t *testing.T) {
	t.Parallel()
	// Heartbeats come every expiry/20: the margin a loaded machine under
	// -race needs.
	const expiry = time.Second
	s := rocketmqtest.RunT(t, rocketmqtest.WithChannelExpiry(expiry))
	w := startWatcher(t, s, "kept", "t", expiry/20)
	shared := dial(t, s.Brokers()[0].Addr, nil)
	heartbeat(t, shared, "ip@shared", "kept", "t")
	w.expectNotified(t, "when the shared connection joined")
	heartbeat(t, shared, "ip@shared", "quiet", "t")
	// Keep "kept" alive on the shared connection while "quiet" goes silent.
	stop := time.After(10 * expiry)
	tick := time.NewTicker(expiry / 20)
	defer tick.Stop()
	for alive := true; alive; {
		select {
		case <-shared.Done():
			alive = false
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = shared.Invoke(ctx, remoting.NewRequest(remoting.HeartBeat, nil, mustHeartbeatBody("ip@shared", "kept", "t")))
			cancel()
		case <-stop:
			t.Fatal("connection with an expired group not closed")
		}
	}
	w.expectNotified(t, "to the other group of the closed connection")
	if got := s.OnlineConsumers("quiet"); len(got) != 0 {
		t.Errorf("expired group still online: %v", got)
	}
}

// A client whose heartbeats the server swallows goes silent on an open
// connection, as a frozen process does: it expires, nobody is notified, and
// the other members stay.
func TestFailClientRequestsFreezesOneClient(t *testing.T) {
	t.Parallel()
	const expiry = time.Second
	s := rocketmqtest.RunT(t, rocketmqtest.WithChannelExpiry(expiry))
	w := startWatcher(t, s, "frozen-group", "t", expiry/20)
	frozen := dial(t, s.Brokers()[0].Addr, nil)
	heartbeat(t, frozen, "ip@frozen", "frozen-group", "t")
	w.expectNotified(t, "when the second member joined")
	s.FailClientRequests("ip@frozen", rocketmqtest.HeartBeat, rocketmqtest.Fault{NoReply: true})
	before := s.Notifications()
	// It keeps heartbeating; the server does not take them.
	tick := time.NewTicker(expiry / 20)
	defer tick.Stop()
	deadline := time.After(10 * expiry)
	for frozenGone := false; !frozenGone; {
		select {
		case <-frozen.Done():
			frozenGone = true
		case <-tick.C:
			_ = frozen.InvokeOneway(context.Background(), remoting.NewRequest(remoting.HeartBeat, nil, mustHeartbeatBody("ip@frozen", "frozen-group", "t")))
		case <-deadline:
			t.Fatal("frozen client not expired")
		}
	}
	if got := s.OnlineConsumers("frozen-group"); !slices.Equal(got, []string{"ip@watcher"}) {
		t.Errorf("online after the expiry %v, want the watcher only", got)
	}
	if n := s.Notifications() - before; n != 0 {
		t.Errorf("%d notifications on expiry, want 0", n)
	}
	// Other clients' heartbeats were answered all along: the watcher
	// is still there, and ClearFaults lets the frozen one back in.
	s.ClearFaults()
	again := dial(t, s.Brokers()[0].Addr, nil)
	heartbeat(t, again, "ip@frozen", "frozen-group", "t")
	if got := s.OnlineConsumers("frozen-group"); !slices.Equal(got, []string{"ip@frozen", "ip@watcher"}) {
		t.Errorf("online after ClearFaults %v", got)
	}
}
