//go:build tools

package mq

import (
	_ "github.com/apache/rocketmq-client-go/v2"
	_ "github.com/apache/rocketmq-client-go/v2/consumer"
	_ "github.com/apache/rocketmq-client-go/v2/primitive"
	_ "github.com/apache/rocketmq-client-go/v2/producer"
	_ "github.com/google/go-cmp/cmp"
	_ "go.uber.org/goleak"
	_ "github.com/taglane/taglane/tagctx"
)
