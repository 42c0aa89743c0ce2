module github.com/taglane/taglane/bench

go 1.26.0

replace (
	github.com/taglane/taglane => ../
	github.com/taglane/taglane/mq => ../mq
)

require (
	github.com/bytedance/gopkg v0.1.4
	github.com/google/go-cmp v0.7.0
	github.com/taglane/taglane v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel v1.47.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
)
