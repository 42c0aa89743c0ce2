package etcd_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/taglane/taglane/discovery/etcd"
)

// A bad option is New's error, naming the option; building it does not
// panic.
func TestNewOptionErrors(t *testing.T) {
	// No server is needed: New only resolves options, and the client does
	// not connect until it is used.
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name string
		opts []etcd.Option
		want string // "" for valid options
	}{
		{name: "zero TTL", opts: []etcd.Option{etcd.WithTTL(0)}, want: "etcd: WithTTL(0s): want at least 1s"},
		{name: "negative TTL", opts: []etcd.Option{etcd.WithTTL(-time.Second)}, want: "etcd: WithTTL(-1s): want at least 1s"},
		{name: "sub-second TTL rounds up", opts: []etcd.Option{nil, etcd.WithTTL(time.Millisecond), etcd.WithPrefix("/lanes/"), etcd.WithErrorHandler(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := etcd.New(c, tt.opts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("New error (-got +want):\n%s", diff)
			}
			if (r == nil) == (err == nil) {
				t.Errorf("New = %v, %v: want exactly one", r, err)
			}
		})
	}
}
