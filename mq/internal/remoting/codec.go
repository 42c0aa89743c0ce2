package remoting

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
)

// DefaultMaxFrameSize caps the length field of a frame. RocketMQ's own cap
// is 16 MiB (a 4 MiB message plus headers fits with room to spare); a peer
// announcing more is broken or hostile, and reading it would let one socket
// allocate unbounded memory.
const DefaultMaxFrameSize = 16 << 20

// maxHeaderSize caps the header: the length field has 24 bits for it.
const maxHeaderSize = 1<<24 - 1

// ErrMalformed reports a frame that cannot be decoded. The stream it came
// from is out of sync and must be closed.
var ErrMalformed = errors.New("remoting: malformed frame")

// firstChunk is what a frame's buffer starts with: heartbeats, pulls and
// most sends fit, so they are read into one exact allocation; a longer frame
// grows as its bytes arrive, never on the word of its length prefix alone.
// readBufSize is the stream's read buffer. Both are what one connection
// costs at least, so they are kept small: frames longer than the buffer
// are read around it, straight into their own.
const (
	firstChunk  = 16 << 10
	readBufSize = 16 << 10
)

// ErrOverLimit reports a frame the shared [Limiter] has no room for. The
// stream is left mid-frame and must be closed.
var ErrOverLimit = errors.New("remoting: frame bytes in flight over the limit")

// Limiter bounds the memory that partly received frames hold across every
// [Reader] sharing it: a server with one Limiter cannot be made to hold more
// than its limit, plus 16 KiB per connection, by peers that announce long
// frames and send them slowly, or not at all. The first 16 KiB of a frame
// are counted but never refused, so short frames always get through. It is
// safe for concurrent use.
type Limiter struct {
	max  int64
	used atomic.Int64
}

// NewLimiter returns a Limiter of maxBytes, which must be at least
// DefaultMaxFrameSize so that one frame of the largest size always fits.
func NewLimiter(maxBytes int64) (*Limiter, error) {
	if maxBytes < DefaultMaxFrameSize {
		return nil, fmt.Errorf("remoting: limiter of %d bytes is below one frame of %d", maxBytes, DefaultMaxFrameSize)
	}
	return &Limiter{max: maxBytes}, nil
}

// InFlight returns the bytes partly received frames hold now.
func (l *Limiter) InFlight() int64 { return l.used.Load() }

// acquire takes n bytes. A forced acquire always succeeds: the first chunk
// of a frame is never refused, so that peers filling the limiter with long
// frames cannot stop the short ones every client sends.
func (l *Limiter) acquire(n int64, force bool) bool {
	if force {
		l.used.Add(n)
		return true
	}
	for {
		used := l.used.Load()
		if used+n > l.max {
			return false
		}
		if l.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (l *Limiter) release(n int64) { l.used.Add(-n) }

// ReaderOption configures NewReader.
type ReaderOption func(*Reader)

// WithLimiter makes the Reader take the buffer of every frame it reads from
// l while the frame arrives, and fail with ErrOverLimit when l is full. A nil
// l is no limit.
func WithLimiter(l *Limiter) ReaderOption {
	return func(r *Reader) { r.lim = l }
}

// Reader reads commands from a stream of frames. The memory one frame takes
// grows with the bytes that arrived (at most twice them, at least 16 KiB),
// up to the frame size limit.
type Reader struct {
	r   *bufio.Reader
	max int
	lim *Limiter
}

// NewReader returns a Reader that rejects frames longer than maxFrameSize
// bytes (DefaultMaxFrameSize if maxFrameSize <= 0).
func NewReader(r io.Reader, maxFrameSize int, opts ...ReaderOption) *Reader {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	rd := &Reader{r: bufio.NewReaderSize(r, readBufSize), max: maxFrameSize}
	for _, o := range opts {
		if o != nil {
			o(rd)
		}
	}
	return rd
}

// Read returns the next command. An error other than io.EOF leaves the
// stream unusable.
func (r *Reader) Read() (*Command, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r.r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(lenBuf[:])))
	if n < 4 || n > int64(r.max) {
		return nil, fmt.Errorf("%w: frame length %d outside [4, %d]", ErrMalformed, n, r.max)
	}
	frame, err := r.readFrame(int(n))
	if err != nil {
		return nil, err
	}
	return Decode(frame)
}

// readFrame reads n bytes into a buffer that doubles as they arrive. The
// limiter holds the buffer's capacity until the frame is complete: from then
// on the caller owns the bytes and works on them before reading the next.
func (r *Reader) readFrame(n int) ([]byte, error) {
	var held int64
	if r.lim != nil {
		defer func() { r.lim.release(held) }()
	}
	grow := func(buf []byte) ([]byte, error) {
		c := min(max(2*cap(buf), firstChunk), n)
		if r.lim != nil {
			if !r.lim.acquire(int64(c-cap(buf)), c <= firstChunk) {
				return nil, fmt.Errorf("%w: a frame of %d bytes with %d received", ErrOverLimit, n, len(buf))
			}
			held += int64(c - cap(buf))
		}
		return append(make([]byte, 0, c), buf...), nil
	}
	var buf []byte
	for len(buf) < n {
		if len(buf) == cap(buf) {
			var err error
			if buf, err = grow(buf); err != nil {
				return nil, err
			}
		}
		m, err := r.r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// Decode decodes one frame without its leading 4-byte total length. The
// command's Body aliases frame.
func Decode(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, no header length", ErrMalformed, len(frame))
	}
	hl := binary.BigEndian.Uint32(frame)
	typ := byte(hl >> 24)
	hl &= 0xFFFFFF
	if int64(hl) > int64(len(frame)-4) {
		return nil, fmt.Errorf("%w: header length %d exceeds frame of %d bytes", ErrMalformed, hl, len(frame))
	}
	header, body := frame[4:4+hl], frame[4+hl:]
	var (
		c   *Command
		err error
	)
	switch typ {
	case SerializeJSON:
		c, err = decodeJSONHeader(header)
	case SerializeRocketMQ:
		c, err = decodeBinaryHeader(header)
	default:
		return nil, fmt.Errorf("%w: unknown serialization type %d", ErrMalformed, typ)
	}
	if err != nil {
		return nil, err
	}
	c.Serialize = typ
	if len(body) > 0 {
		c.Body = body
	}
	return c, nil
}

// Encode returns c as one frame, length prefix included.
func Encode(c *Command) ([]byte, error) {
	return AppendFrame(nil, c)
}

// AppendFrame appends c as one frame to dst.
func AppendFrame(dst []byte, c *Command) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	switch c.Serialize {
	case SerializeJSON:
		dst = appendJSONHeader(dst, c)
	case SerializeRocketMQ:
		dst = appendBinaryHeader(dst, c)
	default:
		return dst[:start], fmt.Errorf("remoting: unknown serialization type %d", c.Serialize)
	}
	hl := len(dst) - start - 8
	if hl > maxHeaderSize {
		return dst[:start], fmt.Errorf("remoting: header of %d bytes exceeds %d", hl, maxHeaderSize)
	}
	dst = append(dst, c.Body...)
	total := len(dst) - start - 4
	if total > DefaultMaxFrameSize {
		return dst[:start], fmt.Errorf("remoting: frame of %d bytes exceeds %d", total, DefaultMaxFrameSize)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(total))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.Serialize)<<24|uint32(hl))
	return dst, nil
}

// jsonHeader mirrors RemotingCommand's JSON form. Language is raw because
// Java writes a string and some clients a number.
type jsonHeader struct {
	Code      int16             `json:"code"`
	Language  json.RawMessage   `json:"language"`
	Version   int16             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func decodeJSONHeader(b []byte) (*Command, error) {
	if c, ok := decodeJSONHeaderFast(b); ok {
		return c, nil
	}
	return decodeJSONHeaderStd(b)
}

func decodeJSONHeaderStd(b []byte) (*Command, error) {
	var h jsonHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	lang := string(h.Language)
	var s string
	if json.Unmarshal(h.Language, &s) == nil {
		lang = s
	}
	if h.ExtFields == nil {
		h.ExtFields = map[string]string{}
	}
	return &Command{
		Code: h.Code, Language: lang, Version: h.Version, Opaque: h.Opaque,
		Flag: h.Flag, Remark: h.Remark, ExtFields: h.ExtFields,
	}, nil
}

// appendJSONHeader writes the header by hand: it runs for every frame, and
// encoding/json's reflection and map sorting cost more than the rest of a
// send.
func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	lang := c.Language
	if lang == "" {
		lang = "GO"
	}
	dst = appendJSONString(dst, lang)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	if c.Remark != "" {
		dst = append(dst, `,"remark":`...)
		dst = appendJSONString(dst, c.Remark)
	}
	dst = append(dst, `,"extFields":{`...)
	first := true
	for k, v := range c.ExtFields {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, v)
	}
	dst = append(dst, `},"serializeTypeCurrentRPC":"JSON"}`...)
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Message properties travel in
// ext fields with \x01 and \x02 separators, so control characters must be
// escaped; invalid UTF-8 becomes U+FFFD like encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b >= 0x20:
				dst = append(dst, b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// Java's LanguageCode ordinals, used by the binary header.
var languageNames = map[byte]string{0: "JAVA", 1: "CPP", 2: "DOTNET", 3: "PYTHON", 4: "DELPHI", 5: "ERLANG", 6: "RUBY", 7: "OTHER", 8: "HTTP", 9: "GO", 10: "PHP", 11: "OMS"}

func languageCode(name string) byte {
	for k, v := range languageNames {
		if v == name {
			return k
		}
	}
	return 9
}

// binary header: code int16, language byte, version int16, opaque int32,
// flag int32, remark (int32 length + bytes), ext fields (int32 length, then
// int16 key length + key, int32 value length + value, repeated).
func decodeBinaryHeader(b []byte) (*Command, error) {
	if len(b) < 17 {
		return nil, fmt.Errorf("%w: binary header of %d bytes", ErrMalformed, len(b))
	}
	c := &Command{
		Code:     int16(binary.BigEndian.Uint16(b)),
		Language: languageNames[b[2]],
		Version:  int16(binary.BigEndian.Uint16(b[3:])),
		Opaque:   int32(binary.BigEndian.Uint32(b[5:])),
		Flag:     int32(binary.BigEndian.Uint32(b[9:])),
	}
	rest := b[13:]
	remark, rest, ok := cutLen32(rest)
	if !ok {
		return nil, fmt.Errorf("%w: binary header remark", ErrMalformed)
	}
	c.Remark = string(remark)
	ext, rest, ok := cutLen32(rest)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: binary header ext fields", ErrMalformed)
	}
	c.ExtFields = map[string]string{}
	for len(ext) > 0 {
		if len(ext) < 2 {
			return nil, fmt.Errorf("%w: binary header ext key", ErrMalformed)
		}
		kl := int(binary.BigEndian.Uint16(ext))
		if len(ext) < 2+kl {
			return nil, fmt.Errorf("%w: binary header ext key", ErrMalformed)
		}
		k := string(ext[2 : 2+kl])
		v, r, ok := cutLen32(ext[2+kl:])
		if !ok {
			return nil, fmt.Errorf("%w: binary header ext value", ErrMalformed)
		}
		c.ExtFields[k] = string(v)
		ext = r
	}
	return c, nil
}

func cutLen32(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := int64(int32(binary.BigEndian.Uint32(b)))
	if n < 0 || n > int64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func appendBinaryHeader(dst []byte, c *Command) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Code))
	dst = append(dst, languageCode(c.Language))
	dst = binary.BigEndian.AppendUint16(dst, uint16(c.Version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Opaque))
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.Remark)))
	dst = append(dst, c.Remark...)
	lenAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for k, v := range c.ExtFields {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
	return dst
}
