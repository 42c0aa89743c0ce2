// Package mq gives RocketMQ traffic lanes on rocketmq-client-go v2: tagged
// producers, lane and stable consumer groups, and no lost message when lanes
// come and go.
//
// A producer wrapped by WrapProducer stamps the effective tag of the send's
// context (tagctx.Effective) into the message user property "x-tag". A
// consumer built by NewConsumer is a lane consumer on a tagged node (group
// "<tag>_<base>") and a stable consumer on a stable node (group
// "<prefix><base>"); both subscribe to the same topics:
//
//	p, err := mq.WrapProducer(rocketmqProducer)
//	_, err := p.SendSync(tagctx.With(ctx, tag), primitive.NewMessage("orders", body))
//
//	c, err := mq.NewConsumer("orders", mq.WithNameServer(nameServer))
//	err = c.Subscribe("orders", consumer.MessageSelector{},
//		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
//			// every msg carries tagctx.From(ctx); calls made with ctx stay in its lane
//			return consumer.ConsumeSuccess, nil
//		})
//	err = c.Start()
//	defer c.Shutdown()
//
// A lane consumer handles the messages of its tag and acks the rest
// (with WithParents, it also handles those of the lanes below it in a
// chain while they have no consumer online; see Parent lanes). A stable
// consumer handles untagged messages, messages with an invalid tag
// (reported to the observer as Rejected) and messages of lanes with no
// consumer online; it acks the messages of online lanes. It reads lane
// liveness from the brokers (the lane groups consuming the topic, code 300;
// their members on every master broker, code 38) every refresh interval,
// with hysteresis (online at once, offline after WithOfflineAfter answers),
// keeping the last state when a broker does not answer. A lane's "online"
// is a belief stamped with the start of the refresh whose answer said so;
// the stable consumer skips the lane's tag only until that stamp plus the
// staleness bound, whatever happened since (a pause, failing refreshes, an
// "offline" answer still inside the hysteresis). Past it, the stable
// consumer handles every tag: a duplicate is acceptable, a loss is not.
//
// # Topics
//
// A push consumer of rocketmq-client-go v2.1.2 cannot start on a topic that
// does not exist yet, even with the brokers' autoCreateTopicEnable: they
// create a topic only at its first send. Start checks every subscribed
// topic first and returns an error wrapping ErrTopicNotExist that names it.
// Programs that own their topics create them with CreateTopic
// (UPDATE_AND_CREATE_TOPIC on every master broker of the cluster).
//
// # Lane start
//
// Before its first start, a lane group has no offsets, and a 4.9.4 broker
// answers 0 for them, which would replay the topic's history. So a lane
// consumer not yet listed by code 300 first copies the stable group's
// committed offsets to its own group: it starts where stable is. A
// restarted lane resumes from its own offsets; a queue it has none on
// while retention deleted offset 0 (the broker answers 22, and the client
// would start at the max offset, above what a lagging stable skips: a seed
// cut short by a crash, a queue added since) is seeded the same way, and a
// takeover hands over such a queue from its min offset. Start then waits, bounded
// by WithStartWait, until the stable consumers see the lane (WaitVisible):
// the brokers list it, and one refresh interval plus the takeover margin
// has passed. Messages of the lane's tag sent after Start returns go to the
// lane only. Those sent before may be handled by both: stable handles the
// tag until it sees the lane, and the lane replays what stable handled but
// had not committed yet. Both are duplicates, never gaps.
//
// # Lane offline takeover
//
// When a lane goes offline (shutdown or crash), the messages stable skipped
// for it but the lane never consumed would be lost. The stable group's
// leader (the member with the smallest client ID, which every instance
// computes alike) waits the takeover delay, the staleness bound plus the
// margin, after the end of the refresh whose answer first said the lane is
// offline. Then, per queue, it pulls the messages of the lane's tag from the
// lane group's committed offset up to the queue's max offset read then,
// hands them to the stable handler (context tagged, route proof "fallback",
// HandedOver(ctx) true), and moves the lane group's offset past them; the
// lane group's retry topic is drained the same way. A handler failure
// stops that queue there; the next tick retries.
//
// The leader leaves out the messages it handled itself meanwhile (it
// remembers them while the takeover is pending), so with one stable
// instance a stop or crash costs no duplicates; with several, what the
// others handled in that window is handed over again: delivery is
// at-least-once, and Stats counts the redeliveries. If the leader dies
// halfway, the next instance in line becomes leader when the group's
// membership changes, and hands over the rest from the lane's offsets,
// which the dead leader moved only past what it had finished.
//
// While the lane stays offline the leader keeps draining its retry topic
// (delayed retries surface later) and keeps the lane's offsets up with
// stable's committed offsets (after checking again that the lane is still
// offline), so a lane restarted later does not replay what stable handled
// meanwhile. If the lane's offsets moved under it, the lane lived between
// two refreshes, and a full takeover runs again; so it does if the routes
// now hold a queue the takeover did not cover (its broker was missing from
// the route then), and after a lapse between
// two of the leader's answers about the lane (from the start of one
// refresh to the end of the next) longer than the watch gap, the refresh
// interval plus the takeover margin: the leader paused, or its refreshes
// were slow or failed, and a lane instance may have lived unseen. A lapse
// while a takeover waits makes another follow it; one longer than the
// staleness bound restarts the wait.
//
// # Parent lanes
//
// WithParents gives lanes parent chains, as rpc.WithParents does: with
// feature-x2 -> feature-x -> stable, a message of feature-x2 goes to the
// consumers of feature-x2, else (none online) to those of feature-x, else
// to stable. Every consumer of a base group, stable and lanes, must be
// given the same chains, and chains form a tree (a parent's own chain is
// the rest of the chain: WithParents(x2, x, y) needs WithParents(x, y)).
//
// What the package says of stable above holds for every handler group:
// stable, and the group of every lane that is some chain's parent. Such a
// group watches the lanes below it (stable: every lane; lane X: the lanes
// whose chain names X), with the same refresh, hysteresis, staleness,
// leader (the smallest client ID among its own members), takeover and
// keep-up. For a message of lane T, the lanes before group G are T and
// T's parents below G. G skips the message only while it believes, on a
// fresh view, that one of them is online; else it handles it (route proof
// "fallback"). So the lane's tag is G's to handle once all of them are
// offline in G's view; G's takeover of T starts then: after the takeover
// delay since the end of the answer that said the last of them is
// offline, G hands over T's messages from T's committed offsets to the max
// offsets, and keeps T's offsets up with G's own committed offsets while
// they all stay offline. While one of them is online (a parent of T above
// it, say), G neither takes T over nor keeps its offsets up: G skipped T's
// messages meanwhile, and moving T's offsets past them would hide them
// from the takeover that follows when that parent goes offline. A lapse
// in G's watch of any of those lanes, or a parent's offsets moved under
// G's keep-up (it lived unseen), starts a new offline period of T, as it
// does for T's own; and T's offsets are not kept up while a parent's
// takeover is still pending, as it is the parent's keep-up that checks
// for such a life.
//
// A lane listed in a chain that never had a consumer has no group, so no
// state and no takeover of its own. A takeover of lane L therefore also
// hands over the messages of the lanes below L that the leader has never
// seen listed, and that no parent of theirs below L handles: each from
// L's committed offset or, if higher, its own group's (0 when it has
// none). Lanes seen listed get their own takeover, which runs whenever
// L's would. L's retry topic holds the messages of lanes below it that L
// handled and asked to retry; because chains form a tree, L's handler is
// in their chains too, and its drain of the retry topic hands them to a
// consumer that may handle them.
//
// A starting lane T seeds, per queue, the minimum of stable's committed
// offset and that of every parent of T that has a group, online or not.
// An online parent skips T's messages from where it is once it sees T,
// possibly below stable. An offline parent's pending takeover hands over
// only the parent's own tag and that of descendants never seen listed (T
// is listed once seeded: its takeover by stable covers it instead); the
// messages of T that stable skipped while the parent was online and
// the parent never consumed lie above the parent's offsets, and once T is
// online, T's own takeover by stable (which would have covered them) no
// longer runs. So T must start at or below them. The minimum replays what
// some group already handled (duplicates), never starts above what one
// skipped. WaitVisible waits as before: the parents' consumers refresh at
// the same interval as stable (give every consumer of a base group the
// same timing options), so they see the lane within the same time.
//
// # What is guaranteed, and what is assumed
//
// Guaranteed: every message of a lane's tag that a stable instance skipped
// is consumed by the lane (its group commits past it) or handed over by a
// takeover, whatever pauses, clock jumps or refresh failures happen to any
// stable instance, the leader included. The argument: a stable instance
// skips a tag only on an "online" answer from a refresh that started
// before the lane left the brokers' consumer list, and only until that
// start plus the staleness bound, checked against its own monotonic clock
// when it decides (a handler call frozen after deciding acks only
// messages stored before that moment). The leader's first "offline" answer
// came after the lane left the list, so once the takeover delay has passed
// since, no stable instance skips the tag, and every message one skipped
// is below the max offsets the takeover reads then. After the takeover,
// below stable's committed offsets every message was handled, not skipped,
// so keeping the lane's offsets up with them loses nothing.
//
// With parents, the same argument per handler group G and lane T, "the
// lane is offline" read as "T and every parent of T below G are offline":
// every group before G in T's chain skips T's messages only while a lane
// before it is online, and every message below T's committed offsets was
// consumed by T, handed over by a takeover of T, or handled by the group
// that kept T's offsets up (it handles T's tag while it does). When G
// takes T over, the messages some group skipped for T and nobody handled
// are above T's committed offsets (a group before G that skipped them has
// died, else T would not be G's) and below the max offsets G reads after
// its delay: G hands them over. A descendant that never had a group has
// no committed offsets; its messages are handed over with its nearest
// parent's, from that parent's offsets, below which the parent consumed
// (so handled) them or its handler did.
//
// Assumed: (1) stable instances' monotonic clocks advance at the same rate,
// within the margin over the takeover delay, and also while an instance is
// paused: Go's monotonic clock counts SIGSTOP, GC and scheduling stalls,
// but a virtual machine whose clock stands still while it is frozen breaks
// this. Wall-clock jumps do not matter. (2) The brokers' consumer list
// tells the truth: a lane group that no master broker lists has no member
// consuming (a frozen lane process stays listed for 120 s on 4.9.4; its
// messages wait, nothing is lost). (3) A lane instance does not start,
// have its tag skipped and die without committing, all between two
// consecutive answers of the leader about it, or the leader never learns
// that the lane lived. Answers further apart than the watch gap (500 ms by
// default) count as a lapse (see above), and WaitVisible keeps a starting
// lane listed for that long before Start returns, so a probe sees every
// lane instance whose Start returned: what is assumed is only that an
// instance dying inside its own Start (or started WithStartWait(0)) and
// listed for less than the watch gap is not both missed by the leader and
// skipped for by another stable instance. (4) Only the lane consumer and
// the leaders of the handler groups above it write a lane group's
// offsets.
//
// # Skips before the handler goroutine
//
// A consumer drops the messages it skips already on the pull goroutine
// (rocketmq-client-go's filter message hook), so they never get the
// goroutine and the ack round the client spends on every message it
// hands to a handler; Stats.Skipped counts them there. It keeps each
// pulled batch's last message, which the consume path decides again: the
// client commits one past the largest offset it put into the process
// queue once the queue drains, so the group's committed offset advances
// past the dropped messages exactly as if they had been acked one by one.
// The guarantee above is unchanged: a skip made at pull time is decided
// with the same liveness view, stamped and bounded the same way, as one
// made at consume time, only earlier, and the argument rests on when a
// message is skipped, not on when its offset is committed: every message
// skipped for a lane was stored before that decision, so it is below the
// max offset a takeover reads once the takeover delay has passed. A
// consumer.WithFilterMessageHook passed with WithConsumerOptions replaces
// the prefilter (the client keeps one list of hooks): every message is
// then decided on the consume path, as correct and a little slower.
//
// # Delays with the defaults
//
// Refresh interval 250 ms, staleness bound 1 s, offline after 2 answers,
// takeover margin 250 ms, so the takeover delay is 1.25 s. Measured on the
// embedded broker (TestLaneTimings, loaded 2-core machine): a lane
// consumer's Start returns after 0.5-0.6 s, and stable stops handling its
// tag 0.02-0.3 s after Start is called (before these defaults: 0.6 s, with
// Start returning at once); after a crash (the broker drops the connection
// at once) or a graceful Shutdown, the first handed-over message arrives
// 1.26-1.4 s later and the last a few tens of milliseconds after it
// (before: 8.1-8.4 s), with 0-1 duplicates. A real 4.9.4 broker adds its own
// detection: about 1 s after Shutdown or SIGKILL, 120 s for a frozen lane
// process that keeps its connection open.
//
// consumer.WithNamespace and consumer.WithUnitName are not supported: the
// admin queries use the plain group names.
//
// # Tracing
//
// The producer runs each send in a "send <topic>" span (kind producer) and
// writes its W3C trace context into the message properties beside the tag
// ("traceparent", "tracestate" with the default propagator). The consumer
// continues the trace in a "process <topic>" span (kind consumer) per
// handler call, with the OpenTelemetry messaging attributes
// (messaging.system=rocketmq, messaging.destination.name,
// messaging.consumer.group.name, messaging.operation.type=process, ...)
// and the route proof (taglane.traffic_tag, taglane.node_tag,
// taglane.route), recorded before the handler runs; the handler's context
// carries the span, so the handler's own spans are its children. A batch
// of one tag is parented to its first message's trace and links all of
// them. WithTracerProvider and WithPropagators choose the provider and the
// propagator (default: the global ones). Without an SDK no span is
// started; a trace context already in flight still passes through.
//
// rocketmq-client-go v2's public API cannot list a group's members or read
// another group's offsets; a small remoting client inside this module does.
// Every consumer gets its own client instance (connection): on a shared
// one, a stopped group stays "online" at the broker for about two minutes.
package mq
