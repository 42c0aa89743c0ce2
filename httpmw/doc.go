// Package httpmw carries a lane's traffic tag across HTTP hops: server
// middleware takes the tag from an inbound request and puts it in the
// request context, and a client transport sends the context's effective
// tag on outgoing requests. Every served request proves its route: traffic
// tag, node tag and verdict (matched, fallback, misroute) go to the active
// span and to an observer.
//
// A service that calls another one:
//
//	rt, err := httpmw.NewTransport(nil)
//	if err != nil {
//		log.Fatal(err)
//	}
//	client := &http.Client{Transport: rt}
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("/order", func(w http.ResponseWriter, r *http.Request) {
//		// r.Context() carries the inbound tag; the transport sends it on.
//		req, err := http.NewRequestWithContext(r.Context(), "GET", "http://stock/check", nil)
//		if err != nil {
//			http.Error(w, err.Error(), http.StatusInternalServerError)
//			return
//		}
//		resp, err := client.Do(req)
//		// ...
//	})
//	mw, err := httpmw.New() // a bad option is this error, naming it
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(http.ListenAndServe(":8080", mw(mux)))
//
// Middleware, Handler and Transport are the must-style shorthands of New
// and NewTransport, for options that are constants of the program: they
// panic on an invalid option, like regexp.MustCompile.
//
// On the wire the tag travels in the X-Tag header and in the x-tag member
// of the W3C baggage header, so it survives services that only run
// OpenTelemetry propagation. WithHeaders and WithBaggageKey rename them;
// WithHostPattern also reads it from host names such as
// app-feature-x.test.example.com. Invalid tags are served as untagged and
// reported, or answered with 400 under WithRejectInvalid. WithTrust decides
// whose tags are believed; a production edge strips them.
//
// A decision is final downstream. An entry point that is not TrustAll, or
// that refused a tag, marks the request's context, and Transport then sends
// the untagged mark, an empty X-Tag, which the next hop takes as decided:
// it reads neither baggage nor its host pattern, so a Host that a reverse
// proxy forwards cannot pick a lane. A refused tag is removed from
// r.Header and from the context's OpenTelemetry baggage. WithStrict makes
// an instance refuse traffic it should not serve (421 Misdirected Request)
// rather than serve a misroute that stale discovery sent it.
//
// With otelhttp, put otelhttp outside on both sides: its handler around
// this middleware, so the route proof lands on its server span, and its
// transport around this one, so the tag member is merged into the baggage
// otelhttp writes rather than overwritten by it:
//
//	handler := otelhttp.NewHandler(mw(mux), "orders")
//	client := &http.Client{Transport: otelhttp.NewTransport(rt)}
package httpmw
