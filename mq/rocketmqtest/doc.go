// Package rocketmqtest runs an Apache RocketMQ name server and brokers
// inside the test process, on 127.0.0.1, so that code written against
// rocketmq-client-go v2 can be tested against the real client over real TCP
// with no Java, no Docker and no external service: miniredis for RocketMQ.
//
// It answers what rocketmq-client-go v2.1.2 uses, the way a RocketMQ 4.9.4
// broker does: topic routes (auto-created topics through TBW102, retry
// topics created at a group's first heartbeat), sync, async, one-way and
// batch sends, pulls with long polling, heartbeats and consumer lists with
// NOTIFY_CONSUMER_IDS_CHANGED on every membership change, committed offsets,
// min/max offsets and search by time, send-back to %RETRY%<group> with
// delay levels and the dead-letter queue, queue locks for orderly
// consumers, and client unregistration. Unknown request codes get
// REQUEST_CODE_NOT_SUPPORTED, so a client never waits for a timeout.
//
// Quick start:
//
//	func TestOrders(t *testing.T) {
//		s := rocketmqtest.RunT(t) // closed when the test ends
//		if err := s.CreateTopic("orders", 4); err != nil {
//			t.Fatal(err)
//		}
//		p, _ := rocketmq.NewProducer(
//			producer.WithNameServer([]string{s.NameServer()}),
//			producer.WithInstanceName("orders-producer"),
//		)
//		p.Start()
//		defer p.Shutdown()
//		p.SendSync(ctx, primitive.NewMessage("orders", []byte("order #1")))
//
//		c, _ := rocketmq.NewPushConsumer(
//			consumer.WithNameServer([]string{s.NameServer()}),
//			consumer.WithGroupName("billing"),
//			consumer.WithInstance("billing-1"), // one client instance per consumer
//		)
//		rec := new(rocketmqtest.Recorder)
//		c.Subscribe("orders", consumer.MessageSelector{}, rec.Handler("billing-1"))
//		c.Start()
//		defer c.Shutdown()
//		rec.WaitBodies(t, 10*time.Second, "order #1")
//		// ... then assert on what handlers got and on the server's state:
//		off, _ := s.CommittedOffset("billing", s.Queues("orders")[0])
//	}
//
// A Recorder collects what handlers received (by consumer, with the
// handler's context) and waits for bodies without sleeping.
//
// State inspection (Messages, QueueMessages, MaxOffset, CommittedOffset,
// OnlineConsumers, ConsumerGroups, Topics, Queues) reads the brokers'
// memory directly. Fault injection: DropClient closes a client's
// connections as a crash would; FailRequests makes a request code fail, and
// FailClientRequests makes it fail for one client, to freeze its heartbeats
// say.
//
// Things to know when writing tests with rocketmq-client-go v2.1.2:
//
//   - The client keeps one process-wide client per "ip@instance"; give each
//     producer and consumer its own instance name, or a consumer's
//     Shutdown keeps the shared connection, and the group, alive.
//   - A consumer refuses to start on a topic without a route: send to it
//     first or CreateTopic it.
//   - On a group's very first start the client looks up routes before its
//     first heartbeat creates %RETRY%<group>, so it pulls retries only
//     after its 30 s route refresh and next 20 s rebalance, as against a
//     real broker. CreateTopic(RetryTopic(group), 1) up front avoids the wait.
//   - The client commits offsets every 5 s (10 s after start) and at
//     Shutdown, and rebalances every 20 s, at start and on notification.
//   - The client has data races of its own between rebalance and its
//     timers; tests that run its consumers under -race fail at random.
//     SkipIfClientRaces skips such a test under -race (run it without too),
//     and IgnoreClientGoroutines tells goleak which goroutines the client
//     leaves behind after Shutdown.
//
// Like a real 4.9.4 broker, and unlike earlier versions of this package: a
// pull returns at most 32 messages and 256 KiB whatever maxMsgNums asks; a
// member whose channel expires (WithChannelExpiry, no heartbeat for 120 s)
// is dropped and its connection closed without notifying the rest of its
// group, who take its queues at their next periodic rebalance (a normal
// close still notifies at once); connections without traffic close after
// WithIdleTimeout (120 s); responses carry version 401.
//
// Memory: a stored message costs its stored encoding (88 bytes of header,
// then body, topic and properties) and a 24-byte slot, about 350 bytes for a
// 128-byte body (BenchmarkStoreMemory), and nothing is deleted unless
// WithRetention says so; a frame's buffer grows with the bytes that arrived, and
// WithFrameBytesInFlight bounds what partly received frames hold in total,
// and WithMaxConns the connections open at once (each costs two goroutines
// and some 32 KiB).
// WithNameServerAddr and WithBrokerAddrs listen on fixed addresses; the
// command mq/cmd/minimq runs a Server as a standalone process.
//
// Differences from a real broker: everything lives in memory; there is no
// commit log on disk (retention deletes message by message, not a file at a
// time), no slave, no transactional (half) messages (refused with
// NO_PERMISSION), no request/reply messages (codes 324/325 get
// REQUEST_CODE_NOT_SUPPORTED), no SQL92 filtering (such subscriptions
// receive everything), and no ACL.
// Held pulls are answered the moment their suspend time runs out, where a
// real broker checks every 5 s.
// Producers and the name server are one process, so a topic a broker
// creates is routable at once.
package rocketmqtest
