package etcd_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/discovery/etcd"
	"github.com/taglane/taglane/discovery/etcd/etcdtest"
	"github.com/taglane/taglane/tagctx"
)

func ExampleNew() {
	srv, err := etcdtest.Start() // a real etcd in this process
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	reg, err := etcd.New(cli, etcd.WithTTL(5*time.Second))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	r, err := reg.Register(ctx, discovery.Instance{Service: "stock", Addr: "10.0.0.7:50051", Tag: tagctx.MustParse("feature-x")})
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx)

	// The key is etcd's naming layout, the tag in the metadata.
	resp, _ := cli.Get(ctx, "stock/", clientv3.WithPrefix())
	for _, kv := range resp.Kvs {
		fmt.Printf("%s %s\n", kv.Key, kv.Value)
	}

	// A watcher sees the instance with its tag.
	got := make(chan discovery.State, 1)
	stop, _ := reg.Watch("stock", func(s discovery.State) {
		select {
		case got <- s:
		default:
		}
	})
	defer stop()
	s := <-got
	fmt.Println(s.Instances[0].Addr, s.Instances[0].Tag)
	// Output:
	// stock/10.0.0.7:50051 {"Addr":"10.0.0.7:50051","Metadata":{"x-tag":"feature-x"}}
	// 10.0.0.7:50051 feature-x
}
