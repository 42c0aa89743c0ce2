package admin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuoteNumericKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"fastjson broker addrs", `{"brokerAddrs":{0:"127.0.0.1:10911",1:"h:2"}}`, `{"brokerAddrs":{"0":"127.0.0.1:10911","1":"h:2"}}`},
		{"already quoted", `{"brokerAddrs":{"0":"a"}}`, `{"brokerAddrs":{"0":"a"}}`},
		{"numbers as values stay", `{"perm":6,"n":[1,2]}`, `{"perm":6,"n":[1,2]}`},
		{"strings untouched", `{"a":"{0:\"x\",1:y}"}`, `{"a":"{0:\"x\",1:y}"}`},
		{"spaces and negative", `{ -1 : "x" }`, `{ "-1" : "x" }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(string(quoteNumericKeys([]byte(tc.in))), tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}
