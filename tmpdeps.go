//go:build tools

package taglane

import (
	_ "github.com/google/go-cmp/cmp"
	_ "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	_ "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/baggage"
	_ "go.opentelemetry.io/otel/propagation"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.opentelemetry.io/otel/sdk/trace/tracetest"
	_ "go.opentelemetry.io/otel/trace"
	_ "go.uber.org/goleak"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/endpointsharding"
	_ "google.golang.org/grpc/balancer/pickfirst"
	_ "google.golang.org/grpc/resolver/manual"
	_ "google.golang.org/grpc/interop/grpc_testing"
	_ "google.golang.org/grpc/health/grpc_health_v1"
)
