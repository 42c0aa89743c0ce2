package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// MaxLanesJSON bounds the size of stored lane definitions ParseLanes reads.
const MaxLanesJSON = 64 << 10

// lanesJSON is the stored form of Lanes, the same as the lane balancer's
// config: {"fallback":"stable","parents":{"a2":["a"]}}.
type lanesJSON struct {
	Fallback rpc.Fallback        `json:"fallback,omitempty"`
	Parents  map[string][]string `json:"parents,omitempty"`
}

// MarshalJSON encodes l as {"fallback":...,"parents":{lane:[parents]}},
// the form ParseLanes reads and the lane balancer's config uses.
func (l Lanes) MarshalJSON() ([]byte, error) {
	js := lanesJSON{Fallback: l.Fallback}
	if len(l.Parents) > 0 {
		js.Parents = make(map[string][]string, len(l.Parents))
		for lane, chain := range l.Parents {
			ps := make([]string, len(chain))
			for i, p := range chain {
				ps[i] = p.String()
			}
			js.Parents[lane.String()] = ps
		}
	}
	return json.Marshal(js)
}

// ParseLanes decodes and validates lane definitions stored in a registry.
// Unknown fields are errors: a misspelt "parents" must not quietly mean
// "no chain".
func ParseLanes(b []byte) (Lanes, error) {
	if len(b) > MaxLanesJSON {
		return Lanes{}, fmt.Errorf("discovery: lanes: %d bytes, limit %d: %w", len(b), MaxLanesJSON, ErrInvalid)
	}
	var js lanesJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&js); err != nil {
		return Lanes{}, fmt.Errorf("discovery: lanes %s: %w: %w", quote(string(b)), ErrInvalid, err)
	}
	if dec.More() {
		return Lanes{}, fmt.Errorf("discovery: lanes %s: data after the object: %w", quote(string(b)), ErrInvalid)
	}
	l := Lanes{Fallback: js.Fallback}
	if len(js.Parents) > 0 {
		l.Parents = make(map[tagctx.Tag][]tagctx.Tag, len(js.Parents))
	}
	for lane, ps := range js.Parents {
		lt, err := tagctx.Parse(lane)
		if err != nil {
			return Lanes{}, fmt.Errorf("discovery: lanes: %w: %w", ErrInvalid, err)
		}
		chain := make([]tagctx.Tag, len(ps))
		for i, p := range ps {
			if chain[i], err = tagctx.Parse(p); err != nil {
				return Lanes{}, fmt.Errorf("discovery: lanes: parents of %q: %w: %w", lane, ErrInvalid, err)
			}
		}
		// Parse lowercases: two spellings of one lane are one lane.
		if _, dup := l.Parents[lt]; dup {
			return Lanes{}, fmt.Errorf("discovery: lanes: lane %q defined twice: %w", lt, ErrInvalid)
		}
		l.Parents[lt] = chain
	}
	if err := l.Check(); err != nil {
		return Lanes{}, err
	}
	return l, nil
}
