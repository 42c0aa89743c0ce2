package remoting_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/taglane/taglane/mq/internal/remoting"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  *remoting.Command
	}{
		{"json request", &remoting.Command{Code: 10, Language: "GO", Version: 317, Opaque: 7, ExtFields: map[string]string{"topic": "t", "properties": "UNIQ_KEY\x01abc\x02TAGS\x01a\"b\\c\x02"}, Body: []byte("body")}},
		{"json response with remark", &remoting.Command{Code: 1, Language: "JAVA", Version: 395, Opaque: -3, Flag: remoting.FlagResponse, Remark: "no consumer for this group, g\n\t☃", ExtFields: map[string]string{}}},
		{"json one-way without body", &remoting.Command{Code: 15, Language: "GO", Flag: remoting.FlagOneway, ExtFields: map[string]string{"commitOffset": "12"}}},
		{"binary request", &remoting.Command{Code: 105, Language: "JAVA", Version: 395, Opaque: 1 << 30, Remark: "r", ExtFields: map[string]string{"topic": "t", "": "empty key"}, Body: []byte{0, 1, 2}, Serialize: remoting.SerializeRocketMQ}},
		{"binary empty", &remoting.Command{Code: 0, Language: "GO", ExtFields: map[string]string{}, Serialize: remoting.SerializeRocketMQ}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := remoting.Encode(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
				t.Fatalf("length field %d, frame of %d bytes after it", n, len(frame)-4)
			}
			got, err := remoting.NewReader(bytes.NewReader(frame), 0).Read()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.cmd); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	t.Parallel()
	frame := func(total uint32, rest ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, total), rest...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty stream", nil, 0, io.EOF},
		{"truncated length", []byte{0, 0}, 0, io.ErrUnexpectedEOF},
		{"negative length", frame(0xFFFFFFFF), 0, remoting.ErrMalformed},
		{"length over the cap", frame(1025, make([]byte, 1025)...), 1024, remoting.ErrMalformed},
		{"truncated frame", frame(100, 0, 0, 0, 2), 0, io.ErrUnexpectedEOF},
		{"header beyond frame", frame(6, 0, 0, 0, 9, '{', '}'), 0, remoting.ErrMalformed},
		{"bad json", frame(7, 0, 0, 0, 3, '{', 'x', '}'), 0, remoting.ErrMalformed},
		{"unknown serialization", frame(6, 5, 0, 0, 2, '{', '}'), 0, remoting.ErrMalformed},
		{"binary ext overrun", frame(4+21, append([]byte{1, 0, 0, 21}, append(make([]byte, 17), 0x7f, 0, 0, 0)...)...), 0, remoting.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remoting.NewReader(bytes.NewReader(tc.in), tc.max).Read()
			if !errors.Is(err, tc.want) {
				t.Errorf("Read() error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	frame, err := remoting.Encode(remoting.NewRequest(10, map[string]string{"properties": "K\x01V\x02bad\xff"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	header := string(frame[8:])
	for _, want := range []string{`\u0001`, `\u0002`, `\ufffd`} {
		if !strings.Contains(header, want) {
			t.Errorf("header %s lacks %s", header, want)
		}
	}
}

func TestEncodeRejectsOversizedFrames(t *testing.T) {
	t.Parallel()
	_, err := remoting.Encode(remoting.NewRequest(10, nil, make([]byte, remoting.DefaultMaxFrameSize)))
	if err == nil {
		t.Error("Encode accepted a frame over DefaultMaxFrameSize")
	}
}

func TestCommandFlags(t *testing.T) {
	t.Parallel()
	req := remoting.NewRequest(remoting.PullMessage, nil, nil)
	req.Opaque = 42
	req.Serialize = remoting.SerializeRocketMQ
	resp := remoting.NewResponse(req, remoting.Success, "")
	if req.IsResponse() || !resp.IsResponse() || resp.Opaque != 42 || resp.Serialize != remoting.SerializeRocketMQ {
		t.Errorf("request %v, response %v", req, resp)
	}
	req.Flag |= remoting.FlagOneway
	if !req.IsOneway() || !strings.Contains(req.String(), "code=11") {
		t.Errorf("one-way request %v", req)
	}
}
