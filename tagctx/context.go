package tagctx

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
)

// EnvNodeTag is the environment variable holding the node tag.
const EnvNodeTag = "TAGLANE_TAG"

type ctxKey struct{}

// tagCtx is a context node of its own rather than context.WithValue: one
// allocation per With, and Lookup gets the node back as a pointer, so
// reading the tag boxes nothing.
type tagCtx struct {
	context.Context
	tag Tag
	set bool // false: a Snapshot re-applied "no decision" on top of a decision
}

func (c *tagCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (c *tagCtx) String() string {
	return fmt.Sprintf("%v.WithTag(%q)", c.Context, c.tag.s)
}

// With returns a copy of parent carrying traffic tag t. The zero Tag marks
// the context explicitly untagged: its effective tag is then none, even on a
// tagged node, so stable traffic that reaches a lane instance stays stable.
func With(parent context.Context, t Tag) context.Context {
	return &tagCtx{Context: parent, tag: t, set: true}
}

// WithUntagged marks ctx as carrying stable (untagged) traffic.
func WithUntagged(parent context.Context) context.Context {
	return With(parent, Tag{})
}

// Lookup returns the traffic tag of ctx and whether ctx carries a decision at
// all (a tag or an explicit untagged mark). It does not allocate.
func Lookup(ctx context.Context) (Tag, bool) {
	c, ok := ctx.(*tagCtx) // an entry point's context, before anything is layered on it
	if !ok {
		c, ok = ctx.Value(ctxKey{}).(*tagCtx)
	}
	if !ok || !c.set {
		return Tag{}, false
	}
	return c.tag, true
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
