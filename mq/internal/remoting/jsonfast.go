package remoting

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeJSONHeaderFast parses the header shape RocketMQ peers write (the
// fields of RemotingCommand, string ext fields) without reflection; it runs
// for every frame. It reports false for anything else, and the caller then
// falls back to encoding/json, whose answer is authoritative: the fast path
// must agree with it whenever it succeeds (FuzzJSONHeader checks).
func decodeJSONHeaderFast(b []byte) (*Command, bool) {
	p := jsonParser{b: b}
	c := &Command{}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	p.ws()
	if p.eat('}') {
		return p.finish(c)
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		switch key {
		case "code":
			n, ok := p.int(16)
			if !ok {
				return nil, false
			}
			c.Code = int16(n)
		case "version":
			n, ok := p.int(16)
			if !ok {
				return nil, false
			}
			c.Version = int16(n)
		case "opaque":
			n, ok := p.int(32)
			if !ok {
				return nil, false
			}
			c.Opaque = int32(n)
		case "flag":
			n, ok := p.int(32)
			if !ok {
				return nil, false
			}
			c.Flag = int32(n)
		case "language":
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			c.Language = s
		case "remark":
			if p.null() {
				c.Remark = ""
				break
			}
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			c.Remark = s
		case "extFields":
			if p.null() {
				c.ExtFields = nil
				break
			}
			m, ok := p.stringMap(c.ExtFields)
			if !ok {
				return nil, false
			}
			c.ExtFields = m
		case "serializeTypeCurrentRPC":
			if _, ok := p.str(); !ok {
				return nil, false
			}
		default:
			// encoding/json matches keys case-insensitively; leave
			// anything unusual to it.
			return nil, false
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return p.finish(c)
		}
		return nil, false
	}
}

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) finish(c *Command) (*Command, bool) {
	p.ws()
	if p.i != len(p.b) {
		return nil, false
	}
	if c.ExtFields == nil {
		c.ExtFields = map[string]string{}
	}
	return c, true
}

func (p *jsonParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// int parses a JSON integer that fits in bits.
func (p *jsonParser) int(bits uint) (int64, bool) {
	start := p.i
	neg := p.eat('-')
	if p.i >= len(p.b) {
		return 0, false
	}
	if p.b[p.i] == '0' {
		p.i++
	} else {
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			if p.i-start > 12 {
				return 0, false
			}
		}
	}
	digits := p.b[start:p.i]
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	var n int64
	for _, d := range digits {
		n = n*10 + int64(d-'0')
	}
	if neg {
		n = -n
	}
	lim := int64(1) << (bits - 1)
	if n < -lim || n >= lim {
		return 0, false
	}
	return n, true
}

// str parses a JSON string. Escapes and invalid UTF-8 go through
// encoding/json, so that both paths agree byte for byte.
func (p *jsonParser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	escaped := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c == '"':
			raw := p.b[start:p.i]
			p.i++
			if !escaped && utf8.Valid(raw) {
				return string(raw), true
			}
			var s string
			if err := json.Unmarshal(p.b[start-1:p.i], &s); err != nil {
				return "", false
			}
			return s, true
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

func (p *jsonParser) stringMap(m map[string]string) (map[string]string, bool) {
	if !p.eat('{') {
		return nil, false
	}
	if m == nil {
		m = map[string]string{}
	}
	p.ws()
	if p.eat('}') {
		return m, true
	}
	for {
		p.ws()
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		m[k] = v
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return m, true
		}
		return nil, false
	}
}
