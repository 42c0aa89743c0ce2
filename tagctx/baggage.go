package tagctx

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
)

// Limits on what an entry point reads, checked before any parsing so a
// hostile header costs a length check, not a parse. They apply to the
// values that bear the tag: when a tag header is present it decides, and
// baggage, however large, is not read at all.
const (
	// MaxHeaderBytes caps the total bytes of the tag header's values.
	MaxHeaderBytes = 8 << 10
	// MaxBaggageBytes caps the total bytes of the baggage headers (joined
	// with commas): the W3C baggage limit, which OpenTelemetry enforces by
	// ignoring larger baggage altogether.
	MaxBaggageBytes = 8192
	// MaxBaggageMembers caps the list members read from baggage: the most
	// the W3C baggage specification has ever asked a reader to accept, so
	// no baggage a conforming writer sends loses its tag here.
	MaxBaggageMembers = 180
	// MaxWrittenMembers caps the members of a baggage value this package
	// writes: OpenTelemetry, the strictest conforming reader, reads 64 and
	// ignores the rest, so a tag written as the 65th would be lost.
	MaxWrittenMembers = 64
	// MaxQuoted is how much of a rejected value an error message, an
	// observer or a response quotes; the rest is elided.
	MaxQuoted = 64
)

// Default wire keys.
const (
	DefaultHeader     = "X-Tag"
	DefaultBaggageKey = "x-tag"
	BaggageHeader     = "baggage"
)

// ErrLimit is matched by errors for input over MaxHeaderBytes,
// MaxBaggageBytes or MaxBaggageMembers, and by the report of baggage
// members dropped to fit MaxWrittenMembers or MaxBaggageBytes.
var ErrLimit = errors.New("tagctx: tag-bearing headers over limit")

// Quote returns s quoted as %q does, cut to MaxQuoted bytes with an
// ellipsis, so a message about hostile input stays small.
func Quote(s string) string {
	if len(s) > MaxQuoted {
		return strconv.Quote(s[:MaxQuoted]) + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// Extract finds the traffic tag in the values of a tag header and of W3C
// baggage headers (member baggageKey), checking limits first. The tag
// header wins over baggage, which is then not read. found reports whether
// a tag was present at all; err says why a present tag, or input over the
// limits, was not accepted, in which case the traffic must be treated as
// untagged. It does not allocate for valid lowercase input.
//
// A tag header present with only empty values is the explicit untagged
// mark an earlier hop writes (see Propagator): found is true, the Tag is
// zero and err is nil. It decides like any tag header, so neither baggage
// nor anything else can re-tag the request; a caller sending it can only
// make its own request untagged.
func Extract(tagValues, baggageValues []string, baggageKey string) (t Tag, found bool, err error) {
	if len(tagValues) > 0 {
		total := 0
		for _, v := range tagValues {
			total += len(v)
		}
		if total > MaxHeaderBytes {
			return Tag{}, true, fmt.Errorf("%w: tag header %d bytes, limit %d", ErrLimit, total, MaxHeaderBytes)
		}
		for _, v := range tagValues[1:] {
			if v != tagValues[0] {
				return Tag{}, true, fmt.Errorf("tagctx: conflicting tag header values %s and %s: %w", Quote(tagValues[0]), Quote(v), ErrInvalidTag)
			}
		}
		if tagValues[0] == "" {
			return Tag{}, true, nil
		}
		t, err := Parse(tagValues[0])
		return t, true, err
	}
	return fromBaggage(baggageValues, baggageKey)
}

// CheckBaggage checks the baggage header values against MaxBaggageBytes
// and MaxBaggageMembers without parsing them. Over the limits, a
// conforming reader ignores the whole baggage, and so does this package.
func CheckBaggage(values []string) error {
	total := len(values) - 1 // the commas joining them
	for _, v := range values {
		total += len(v)
	}
	if total > MaxBaggageBytes {
		return fmt.Errorf("%w: baggage %d bytes, limit %d", ErrLimit, total, MaxBaggageBytes)
	}
	members := 0
	for _, v := range values {
		members += strings.Count(v, ",") + 1
	}
	if members > MaxBaggageMembers {
		return fmt.Errorf("%w: %d baggage members, limit %d", ErrLimit, members, MaxBaggageMembers)
	}
	return nil
}

// HasMember reports whether the baggage header values have a list member
// named key, as OpenTelemetry's baggage.Parse would read it (key trimmed of
// Unicode white space). Over the limits it returns an error matching
// ErrLimit and reads nothing: a conforming reader ignores such baggage,
// and the caller should drop it. Within the limits it does not allocate.
func HasMember(values []string, key string) (bool, error) {
	if len(values) == 0 {
		return false, nil
	}
	if err := CheckBaggage(values); err != nil {
		return false, err
	}
	for _, v := range values {
		if hasMember(v, key) {
			return true, nil
		}
	}
	return false, nil
}

func fromBaggage(values []string, key string) (Tag, bool, error) {
	if len(values) == 0 {
		return Tag{}, false, nil
	}
	if err := CheckBaggage(values); err != nil {
		return Tag{}, false, err
	}
	var (
		val   string
		found bool
	)
	for _, v := range values {
		for v != "" {
			var m string
			m, v, _ = strings.Cut(v, ",")
			k, rest, ok := strings.Cut(m, "=")
			if !ok || trimSpace(k) != key {
				continue
			}
			rest, _, _ = strings.Cut(rest, ";")
			rest = trimSpace(rest)
			// OpenTelemetry keeps the last of duplicate members, the W3C
			// text the first: when they differ, neither is believed.
			if found && rest != val {
				return Tag{}, true, fmt.Errorf("tagctx: baggage member %q twice, %s and %s: %w", key, Quote(val), Quote(rest), ErrInvalidTag)
			}
			val, found = rest, true
		}
	}
	if !found {
		return Tag{}, false, nil
	}
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

// trimSpace trims what OpenTelemetry's baggage parser trims (Unicode white
// space, strings.TrimSpace), so a key such as "x-tag\u00a0" that OTel
// reads as x-tag is x-tag here too. ASCII input takes the fast path.
func trimSpace(s string) string {
	return strings.TrimSpace(s)
}

// MergeBaggage returns the baggage header value header with member key set
// to t, keeping every other member in order. The zero Tag removes the
// member, so a hop that decided "stable" does not forward a lane tag it
// received in baggage.
//
// The result is always baggage a conforming reader accepts whole, so the
// tag is never the member it drops: header over MaxBaggageBytes (ignored
// by such a reader anyway) is replaced, and when adding the member would
// pass MaxWrittenMembers or MaxBaggageBytes, the other members at the end
// are dropped until it fits. What is dropped is reported to otel.Handle
// with an error matching ErrLimit.
func MergeBaggage(header, key string, t Tag) string {
	if len(header) > MaxBaggageBytes {
		reportDropped(len(header), -1)
		if t.IsZero() {
			return ""
		}
		return member(key, t)
	}
	if !hasMember(header, key) {
		switch {
		case t.IsZero():
			return header
		case header == "":
			return member(key, t)
		case len(header)+1+len(key)+1+len(t.s) <= MaxBaggageBytes &&
			strings.Count(header, ",")+2 <= MaxWrittenMembers:
			return header + "," + member(key, t)
		}
	}
	return rebuild(header, key, t)
}

// MergeBaggageValues is MergeBaggage for the values of several baggage
// headers (one list to W3C). The byte limit is checked before they are
// joined, so hostile input costs no copy.
func MergeBaggageValues(values []string, key string, t Tag) string {
	switch len(values) {
	case 0:
		return MergeBaggage("", key, t)
	case 1:
		return MergeBaggage(values[0], key, t)
	}
	total := len(values) - 1
	for _, v := range values {
		total += len(v)
	}
	if total > MaxBaggageBytes {
		reportDropped(total, -1)
		if t.IsZero() {
			return ""
		}
		return member(key, t)
	}
	return MergeBaggage(strings.Join(values, ","), key, t)
}

// rebuild is MergeBaggage's slow path: the member is already there, or
// adding it needs room.
func rebuild(header, key string, t Tag) string {
	budget, slots := MaxBaggageBytes, MaxWrittenMembers
	if !t.IsZero() {
		budget -= len(key) + 1 + len(t.s) + 1
		slots--
	}
	var b strings.Builder
	b.Grow(len(header) + len(key) + len(t.s) + 2)
	dropped := 0
	for rest := header; rest != ""; {
		var m string
		m, rest, _ = strings.Cut(rest, ",")
		m = trimSpace(m)
		if k, _, _ := strings.Cut(m, "="); m == "" || trimSpace(k) == key {
			continue
		}
		if slots == 0 || b.Len()+len(m)+1 > budget {
			dropped++
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m)
		slots--
	}
	if dropped > 0 {
		reportDropped(len(header), dropped)
	}
	if !t.IsZero() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(member(key, t))
	}
	return b.String()
}

// reportDropped tells otel.Handle that baggage was cut to fit the limits;
// n < 0 means all of it. Hostile input can make every request drop
// baggage, so at most one report a second goes out, counting the ones
// held back since the last.
func reportDropped(size, n int) {
	now := time.Now().UnixNano()
	last := lastDropReport.Load()
	if now-last < int64(time.Second) || !lastDropReport.CompareAndSwap(last, now) {
		heldDropReports.Add(1)
		return
	}
	held := heldDropReports.Swap(0)
	if n < 0 {
		otel.Handle(fmt.Errorf("%w: dropped baggage of %d bytes (limit %d) before writing the tag member (and %d more drops since the last report)", ErrLimit, size, MaxBaggageBytes, held))
		return
	}
	otel.Handle(fmt.Errorf("%w: dropped %d baggage members to keep the tag member within %d members and %d bytes (and %d more drops since the last report)", ErrLimit, n, MaxWrittenMembers, MaxBaggageBytes, held))
}

var lastDropReport, heldDropReports atomic.Int64

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

// hasMember reports whether baggage value header has a list member named
// key. The substring test first keeps the common miss free of parsing.
func hasMember(header, key string) bool {
	if !strings.Contains(header, key) {
		return false
	}
	for header != "" {
		var m string
		m, header, _ = strings.Cut(header, ",")
		if k, _, ok := strings.Cut(m, "="); ok && trimSpace(k) == key {
			return true
		}
	}
	return false
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
