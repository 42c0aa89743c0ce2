package rocketmqtest_test

import (
	"net"
	"testing"
	"time"

	"github.com/taglane/taglane/mq/internal/remoting"
	"github.com/taglane/taglane/mq/rocketmqtest"
)

// FuzzFrameDecode writes arbitrary bytes to live name server and broker
// connections and checks that the server still answers a well-behaved
// client afterwards: a bad frame may cost its own connection, nothing more.
func FuzzFrameDecode(f *testing.F) {
	s := rocketmqtest.RunT(f)
	if err := s.CreateTopic("fuzz", 2); err != nil {
		f.Fatal(err)
	}
	good := dial(f, s.NameServer(), nil)
	seed := func(c *remoting.Command) {
		frame, err := remoting.Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
		f.Add(frame[:len(frame)/2])
	}
	seed(remoting.NewRequest(remoting.GetRouteInfoByTopic, map[string]string{"topic": "fuzz"}, nil))
	seed(remoting.NewRequest(remoting.HeartBeat, nil, []byte(`{"clientID":"ip@fuzz","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"fuzz","subString":"*"}]}]}`)))
	seed(remoting.NewRequest(remoting.SendMessageV2, map[string]string{"b": "fuzz", "e": "0", "f": "0", "g": "0", "h": "0", "i": "TAGS\x01a\x02"}, []byte("x")))
	seed(remoting.NewRequest(remoting.SendBatchMessage, map[string]string{"b": "fuzz", "e": "1", "f": "0", "g": "0", "h": "0"}, []byte{0, 0, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0}))
	seed(remoting.NewRequest(remoting.PullMessage, map[string]string{"consumerGroup": "g", "topic": "fuzz", "queueId": "0", "queueOffset": "0", "maxMsgNums": "32", "sysFlag": "3", "commitOffset": "0", "suspendTimeoutMillis": "1000"}, nil))
	seed(remoting.NewRequest(remoting.ConsumerSendMsgBack, map[string]string{"group": "g", "offset": "0", "delayLevel": "1"}, nil))
	seed(remoting.NewRequest(remoting.LockBatchMQ, nil, []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{}]}`)))
	seed(&remoting.Command{Code: remoting.GetMaxOffset, ExtFields: map[string]string{"topic": "fuzz", "queueId": "1"}, Serialize: remoting.SerializeRocketMQ})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, addr := range []string{s.NameServer(), s.Brokers()[0].Addr} {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(time.Second))
			nc.Write(data)
			nc.Close()
		}
		if r := rawInvoke(t, good, remoting.GetRouteInfoByTopic, map[string]string{"topic": "fuzz"}, nil); r.Code != remoting.Success {
			t.Fatalf("name server after garbage: %v", r)
		}
		b := dial(t, s.Brokers()[0].Addr, nil)
		if r := rawInvoke(t, b, remoting.GetMaxOffset, map[string]string{"topic": "fuzz", "queueId": "0"}, nil); r.Code != remoting.Success {
			t.Fatalf("broker after garbage: %v", r)
		}
	})
}
