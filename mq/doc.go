// Package mq gives RocketMQ traffic lanes on rocketmq-client-go v2: tagged
// producers, lane and stable consumer groups, and no lost message when lanes
// come and go.
//
// A producer wrapped by NewProducer stamps the effective tag of the send's
// context (tagctx.Effective) into the message user property "x-tag". A
// consumer built by NewConsumer is a lane consumer on a tagged node (group
// "<tag>_<base>") and a stable consumer on a stable node (group
// "<prefix><base>"); both subscribe to the same topics:
//
//	p := mq.NewProducer(rocketmqProducer)
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
// A lane consumer handles the messages of its tag and acks the rest. A
// stable consumer handles untagged messages, messages with an invalid tag
// (reported to the observer as Rejected) and messages of lanes with no
// consumer online; it acks the messages of online lanes. It reads lane
// liveness from the brokers (the lane groups consuming the topic, code 300;
// their members on every master broker, code 38) every refresh interval,
// with hysteresis (online at once, offline after WithOfflineAfter answers),
// keeping the last state when a broker does not answer. A view older than
// the staleness bound is not trusted: the stable consumer then handles every
// tag (a duplicate is acceptable, a loss is not).
//
// # Lane start
//
// Before its first start, a lane group has no offsets, and a 4.9.4 broker
// answers 0 for them, which would replay the topic's history. So a lane
// consumer not yet listed by code 300 first copies the stable group's
// committed offsets to its own group: it starts where stable is. A
// restarted lane resumes from its own offsets.
//
// # Lane offline takeover
//
// When a lane goes offline (shutdown or crash), the messages stable skipped
// for it but the lane never consumed would be lost. The stable group's
// leader (the member with the smallest client ID, which every instance
// computes alike) waits until every stable instance has turned the lane
// offline (staleness bound + hysteresis + margin), then, per queue, pulls
// the messages of the lane's tag from the lane group's committed offset up
// to the queue's max offset, hands them to the stable handler (context
// tagged, route proof "fallback", HandedOver(ctx) true), and moves the lane group's offset past
// them; the lane group's retry topic is drained the same way. Reading up to
// the max offset, not to the stable group's committed offset, covers every
// message a stable instance skipped, even one whose commit still waits for
// the client's 5 s commit timer. A handler failure stops that queue there;
// the next tick retries.
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
// two refreshes, and a full takeover runs again.
//
// Remaining assumptions: a lane instance that starts, gets its tag skipped
// by some stable instance and crashes without committing anything, all
// between two liveness refreshes of the leader, goes unnoticed, and what
// was skipped for it is not handed over; stable instances' clocks run at
// the same rate (each compares only its own durations); a frozen stable
// instance is harmless, because it checks its view's freshness against its
// own clock at every decision and every message it skips was stored before
// that decision, hence below the max offset the takeover reads later.
//
// A lane seeded from stable's committed offsets replays what stable
// handled but had not committed yet (the client commits every 5 s), and
// stable handles the lane's tag until its next refresh sees the lane: both
// are duplicates, never gaps. consumer.WithNamespace and
// consumer.WithUnitName are not supported: the admin queries use the plain
// group names.
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
