package remoting_test

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/remoting"
)

// FuzzDecode feeds arbitrary frames to the decoder: it must never panic,
// and whatever it accepts must survive an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	for _, c := range []*remoting.Command{
		remoting.NewRequest(remoting.SendMessage, map[string]string{"b": "topic", "i": "UNIQ_KEY\x01x\x02"}, []byte("body")),
		{Code: 105, Language: "JAVA", Remark: "r", ExtFields: map[string]string{"topic": "t"}, Serialize: remoting.SerializeRocketMQ},
	} {
		frame, err := remoting.Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame[4:])
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := remoting.Decode(frame)
		if err != nil {
			return
		}
		again, err := remoting.Encode(c)
		if err != nil {
			return // e.g. a header that grew past the 16 MiB cap
		}
		c2, err := remoting.NewReader(bytes.NewReader(again), 0).Read()
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v\n%v", err, c)
		}
		// The JSON header turns invalid UTF-8 into U+FFFD, so compare the
		// second decode with a third, which must be stable.
		third, err := remoting.Encode(c2)
		if err != nil {
			t.Fatal(err)
		}
		c3, err := remoting.NewReader(bytes.NewReader(third), 0).Read()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c3, c2); diff != "" {
			t.Errorf("unstable round trip (-third +second):\n%s", diff)
		}
	})
}

// FuzzJSONHeader checks that the reflection-free JSON header decoder agrees
// with encoding/json whenever it accepts a header.
func FuzzJSONHeader(f *testing.F) {
	f.Add([]byte(`{"code":10,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"b":"t","i":"UNIQ_KEY\u0001x\u0002"}}`))
	f.Add([]byte(`{"code":-1,"extFields":null,"remark":null,"serializeTypeCurrentRPC":"JSON"}`))
	f.Add([]byte(`{"Code":1}`))
	f.Add([]byte(`{"opaque":2147483648}`))
	f.Add([]byte(`{"remark":"\ud800\u00e9\xff"}`))
	f.Add([]byte(` { } `))
	f.Add([]byte(`{"language":"\/\u0041"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := remoting.DecodeJSONHeaderFast(b)
		if !ok {
			return
		}
		std, err := remoting.DecodeJSONHeaderStd(b)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", b, err)
		}
		if diff := cmp.Diff(fast, std); diff != "" {
			t.Errorf("decoders disagree on %q (-fast +std):\n%s", b, diff)
		}
	})
}
