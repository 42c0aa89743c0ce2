package tagctx

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// EnvNodeTag is the environment variable holding the node tag.
const EnvNodeTag = "TAGLANE_TAG"

type ctxKey struct{}

// String names the key in a context's String.
func (ctxKey) String() string { return "tagctx" }

// decision is what a context carries under ctxKey: a tag, the explicit
// untagged mark, or (set false) "no decision", which a Snapshot re-applies
// on top of a decision. It is immutable, so one decision per distinct tag
// is shared by every context carrying it.
//
// It is stored with context.WithValue rather than as a context type of its
// own: Value on a stdlib value context walks the whole chain in one loop,
// while a context type of taglane's at the bottom of ten values costs an
// extra interface call at the end of the walk, and that call made From
// about 10% slower than a plain context.Value (and than metainfo, which
// stores a pointer with WithValue). Sharing the decision keeps With at the
// one allocation (the value context) that its own context type cost.
type decision struct {
	tag Tag
	set bool
}

func (d *decision) String() string {
	if !d.set {
		return "WithoutTagDecision"
	}
	return fmt.Sprintf("WithTag(%q)", d.tag.s)
}

var (
	untaggedDecision = &decision{set: true}
	noDecision       = &decision{}
)

// decisionSlots sizes the table of shared decisions: direct-mapped, so
// finding a tag's decision is a short hash, one atomic load and a compare,
// and a flood of distinct tags from outside cannot grow memory: it only
// evicts, which costs allocations, never a wrong answer.
const decisionSlots = 256

var decisions [decisionSlots]atomic.Pointer[decision]

// decisionFor returns the shared decision carrying t.
func decisionFor(t Tag) *decision {
	if t.IsZero() {
		return untaggedDecision
	}
	slot := &decisions[decisionSlot(t.s)]
	if d := slot.Load(); d != nil && d.tag.s == t.s {
		return d
	}
	// A tag parsed from a header is a substring of it: the table keeps a
	// copy, so it does not pin a large header for the life of the process.
	d := &decision{tag: Tag{strings.Clone(t.s)}, set: true}
	slot.Store(d)
	return d
}

// decisionSlot hashes a tag's length and its first and last eight bytes
// (every byte of a tag of up to 16).
func decisionSlot(s string) uint {
	x := uint64(len(s))
	if len(s) >= 8 {
		x ^= le64(s)*0xff51afd7ed558ccd ^ le64(s[len(s)-8:])*0xc4ceb9fe1a85ec53
	} else {
		for i := 0; i < len(s); i++ {
			x = x<<8 | uint64(s[i])
		}
	}
	return uint((x * 0x9e3779b97f4a7c15) >> (64 - 8)) // decisionSlots == 1<<8
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// With returns a copy of parent carrying traffic tag t. The zero Tag marks
// the context explicitly untagged: its effective tag is then none, even on a
// tagged node, so stable traffic that reaches a lane instance stays stable.
func With(parent context.Context, t Tag) context.Context {
	return context.WithValue(parent, ctxKey{}, decisionFor(t))
}

// WithUntagged marks ctx as carrying stable (untagged) traffic.
func WithUntagged(parent context.Context) context.Context {
	return context.WithValue(parent, ctxKey{}, untaggedDecision)
}

// withoutDecision returns parent with no tag decision, even when parent
// had one, so the node tag applies again.
func withoutDecision(parent context.Context) context.Context {
	return context.WithValue(parent, ctxKey{}, noDecision)
}

// Lookup returns the traffic tag of ctx and whether ctx carries a decision at
// all (a tag or an explicit untagged mark). It does not allocate.
func Lookup(ctx context.Context) (Tag, bool) {
	d, ok := ctx.Value(ctxKey{}).(*decision)
	if !ok || !d.set {
		return Tag{}, false
	}
	return d.tag, true
}

// From returns the traffic tag of ctx, or the zero Tag.
func From(ctx context.Context) Tag {
	t, _ := Lookup(ctx)
	return t
}

// Effective returns the tag outgoing calls and messages made with ctx carry:
// the context's decision if it has one, else the node tag.
func Effective(ctx context.Context) Tag {
	if t, ok := Lookup(ctx); ok {
		return t
	}
	return Node()
}

var node atomic.Pointer[Tag]

func init() {
	t, err := NodeFromEnv()
	if err != nil {
		envErr = err // node.go: NodeErr, and Node stops the process
		return
	}
	SetNode(t)
}

// NodeFromEnv parses the node tag from TAGLANE_TAG. Unset or empty means a
// stable node. The package reads it once at start-up; see NodeErr for what
// an invalid value does.
func NodeFromEnv() (Tag, error) {
	v := os.Getenv(EnvNodeTag)
	if v == "" {
		return Tag{}, nil
	}
	t, err := Parse(v)
	if err != nil {
		return Tag{}, fmt.Errorf("tagctx: %s: %w", EnvNodeTag, err)
	}
	return t, nil
}

// Node returns this process's node tag; the zero Tag on a stable node. If
// TAGLANE_TAG is invalid and SetNode was not called, Node stops the
// process (see NodeErr).
func Node() Tag {
	if p := node.Load(); p != nil {
		return *p
	}
	return nodeUnset()
}

// SetNode sets the node tag, for processes that learn it other than from
// TAGLANE_TAG (flags, config). Set it before serving traffic.
func SetNode(t Tag) {
	node.Store(&t)
}
