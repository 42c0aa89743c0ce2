// Package httpmw carries a lane's traffic tag across HTTP hops: server
// middleware takes the tag from an inbound request and puts it in the
// request context, and a client transport sends the context's effective
// tag on outgoing requests. Each served request proves its route: traffic
// tag, node tag and verdict go to the active span and to an observer.
//
// Quick start, a service that calls another one:
//
//	client := &http.Client{Transport: httpmw.Transport(nil)}
//	mux := http.NewServeMux()
//	mux.HandleFunc("/order", func(w http.ResponseWriter, r *http.Request) {
//		// r.Context() carries the inbound tag; the transport sends it on.
//		req, _ := http.NewRequestWithContext(r.Context(), "GET", "http://stock/check", nil)
//		resp, err := client.Do(req)
//		// ...
//	})
//	http.ListenAndServe(":8080", httpmw.Handler(mux, httpmw.WithObserver(countRoutes)))
//
// On the wire the tag travels in the X-Tag header and in the x-tag member
// of the W3C baggage header (so it survives services that only run
// OpenTelemetry propagation); WithHeaders and WithBaggageKey rename them,
// and WithHostPattern also reads it from host names such as
// app-feature-x.test.example.com. Invalid tags are served as untagged and
// reported, or answered with 400 under WithRejectInvalid. WithTrust decides
// whose tags are believed; a production edge strips them.
package httpmw
