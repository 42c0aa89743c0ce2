package tagctx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/baggage"
)

// Limits on what an entry point reads, checked before any parsing so a
// hostile header costs a length check, not a parse.
const (
	// MaxHeaderBytes caps the total bytes of tag-bearing header values (the
	// tag header and every baggage header value together).
	MaxHeaderBytes = 8 << 10
	// MaxBaggageMembers caps the list members of the baggage headers.
	MaxBaggageMembers = 64
)

// Default wire keys.
const (
	DefaultHeader     = "X-Tag"
	DefaultBaggageKey = "x-tag"
	BaggageHeader     = "baggage"
)

// ErrLimit is matched by errors for input over MaxHeaderBytes or
// MaxBaggageMembers.
var ErrLimit = errors.New("tagctx: tag-bearing headers over limit")

// Extract finds the traffic tag in the values of a tag header and of W3C
// baggage headers (member baggageKey), checking limits first. The tag
// header wins over baggage. found reports whether a tag was present at all;
// err says why a present tag, or input over the limits, was not accepted,
// in which case the traffic must be treated as untagged. It does not
// allocate for valid lowercase input.
func Extract(tagValues, baggageValues []string, baggageKey string) (t Tag, found bool, err error) {
	total := 0
	for _, v := range tagValues {
		total += len(v)
	}
	for _, v := range baggageValues {
		total += len(v)
	}
	if total > MaxHeaderBytes {
		return Tag{}, false, fmt.Errorf("%w: %d bytes, limit %d", ErrLimit, total, MaxHeaderBytes)
	}
	if len(tagValues) > 0 {
		t, err := Parse(tagValues[0])
		for _, v := range tagValues[1:] {
			if v != tagValues[0] {
				return Tag{}, true, fmt.Errorf("tagctx: conflicting tag header values %q and %q: %w", tagValues[0], v, ErrInvalidTag)
			}
		}
		return t, true, err
	}
	return fromBaggage(baggageValues, baggageKey)
}

func fromBaggage(values []string, key string) (Tag, bool, error) {
	members := 0
	for _, v := range values {
		members += strings.Count(v, ",") + 1
	}
	if members > MaxBaggageMembers {
		return Tag{}, false, fmt.Errorf("%w: %d baggage members, limit %d", ErrLimit, members, MaxBaggageMembers)
	}
	for _, v := range values {
		for v != "" {
			var m string
			m, v, _ = strings.Cut(v, ",")
			k, rest, ok := strings.Cut(m, "=")
			if !ok || trimOWS(k) != key {
				continue
			}
			val, _, _ := strings.Cut(rest, ";")
			val = trimOWS(val)
			if strings.IndexByte(val, '%') >= 0 {
				dec, err := url.PathUnescape(val)
				if err != nil {
					return Tag{}, true, fmt.Errorf("tagctx: baggage member %q: %w: %w", key, ErrInvalidTag, err)
				}
				val = dec
			}
			t, err := Parse(val)
			return t, true, err
		}
	}
	return Tag{}, false, nil
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// MergeBaggage returns the baggage header value header with member key set
// to t, keeping every other member in order. The zero Tag removes the
// member, so a hop that decided "stable" does not forward a lane tag it
// received in baggage.
func MergeBaggage(header, key string, t Tag) string {
	if !hasMember(header, key) {
		switch {
		case t.IsZero():
			return header
		case header == "":
			return member(key, t)
		default:
			return header + "," + member(key, t)
		}
	}
	var b strings.Builder
	b.Grow(len(header) + len(key) + len(t.s) + 2)
	for rest := header; rest != ""; {
		var m string
		m, rest, _ = strings.Cut(rest, ",")
		if k, _, _ := strings.Cut(m, "="); trimOWS(k) == key || trimOWS(m) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(trimOWS(m))
	}
	if !t.IsZero() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(member(key, t))
	}
	return b.String()
}

// memberSlots sizes the member cache: a direct-mapped table, so a lookup is
// a short hash and one atomic load, and a flood of distinct tags from
// outside cannot grow memory (it only evicts).
const memberSlots = 256

type memberEntry struct{ tag, member string }

var members [memberSlots]atomic.Pointer[memberEntry]

// memberSlot hashes a tag's length and its first and last eight bytes
// (every byte of a tag of up to 16). Tags sharing a slot evict each other,
// which costs an allocation, never a wrong answer.
func memberSlot(s string) uint {
	x := uint64(len(s))
	if len(s) >= 8 {
		x ^= load64(s)*0xff51afd7ed558ccd ^ load64(s[len(s)-8:])*0xc4ceb9fe1a85ec53
	} else {
		for i := 0; i < len(s); i++ {
			x = x<<8 | uint64(s[i])
		}
	}
	return uint((x * 0x9e3779b97f4a7c15) >> (64 - 8)) // memberSlots == 1<<8
}

func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// member returns "key=tag". For the default key the strings are cached, so
// injecting a tag allocates nothing for them: strings are immutable and
// can be shared. Other keys are rare and not cached: keying the cache by
// key too costs a string compare, about 4 ns of a 65 ns inject.
func member(key string, t Tag) string {
	if key != DefaultBaggageKey {
		return key + "=" + t.s
	}
	slot := &members[memberSlot(t.s)]
	if e := slot.Load(); e != nil && e.tag == t.s {
		return e.member
	}
	s := key + "=" + t.s
	slot.Store(&memberEntry{tag: t.s, member: s})
	return s
}

// hasMember is a cheap pre-check: false means key is surely not a member.
func hasMember(header, key string) bool {
	return header != "" && strings.Contains(header, key)
}

// FromBaggage reads the tag from OpenTelemetry baggage member key.
func FromBaggage(b baggage.Baggage, key string) (t Tag, found bool, err error) {
	m := b.Member(key)
	if m.Key() == "" {
		return Tag{}, false, nil
	}
	t, err = Parse(m.Value())
	return t, true, err
}

// ToBaggage returns b with member key set to t (removed for the zero Tag).
func ToBaggage(b baggage.Baggage, key string, t Tag) (baggage.Baggage, error) {
	if t.IsZero() {
		return b.DeleteMember(key), nil
	}
	m, err := baggage.NewMemberRaw(key, t.s)
	if err != nil {
		return b, fmt.Errorf("tagctx: baggage member %q: %w", key, err)
	}
	return b.SetMember(m)
}
