// Package bench measures taglane's hot paths side by side with the peers
// that do the same job on the same input: ByteDance metainfo
// (github.com/bytedance/gopkg/cloud/metainfo) for the context lookup and
// the HTTP header round trip, OpenTelemetry propagation.Baggage for
// extract and inject, plain gRPC and otelgrpc with baggage for calls,
// bare net/http and otelhttp for the middleware and transport, and the
// plain rocketmq-client-go push consumer for consuming.
//
// It is a module of its own so that the root module does not inherit the
// peers as dependencies. It has no API: everything is in its tests.
//
//	cd bench && ./run.sh        # the README's table: 6 counts, benchstat
//	go test -run '^$' -bench Lookup -benchmem
//
// The tests (go test ./...) check that each pair does the same job: both
// sides find the same tag, write headers a peer reads back, deliver the
// tag to the handler.
package bench
