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
