package tagctx

import (
	"errors"
	"fmt"
)

// MaxLen is the longest tag: a DNS label, so a tag fits host names, group
// names and metric labels.
const MaxLen = 63

// ErrInvalidTag is matched (errors.Is) by every error Parse returns.
var ErrInvalidTag = errors.New("invalid tag")

// Tag is a validated lane tag. The zero Tag means untagged (stable). Only
// Parse and MustParse make a non-zero Tag, so an unvalidated string cannot
// reach routing by accident.
type Tag struct {
	s string
}

// String returns the tag, or "" for the zero Tag.
func (t Tag) String() string { return t.s }

// IsZero reports whether t is the untagged (stable) tag.
func (t Tag) IsZero() bool { return t.s == "" }

// ParseError says why a tag was rejected. It matches ErrInvalidTag.
type ParseError struct {
	Input  string // the input, cut to 2*MaxLen bytes so errors stay small
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("tagctx: invalid tag %q: %s", e.Input, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTag) true.
func (e *ParseError) Is(target error) bool { return target == ErrInvalidTag }

func parseError(s, reason string) error {
	if len(s) > 2*MaxLen {
		s = s[:2*MaxLen] + "..."
	}
	return &ParseError{Input: s, Reason: reason}
}

// Parse validates s as a tag: 1 to 63 characters of [a-z0-9-], starting and
// ending with a letter or digit. ASCII upper case is lowercased; anything
// else outside that set (including Unicode look-alikes) is rejected. A valid,
// already lowercase input is returned without allocating.
//
// Its frame is kept small (the errors and the lowercasing are out of line):
// transports parse on goroutines whose stacks their own frames mostly fill,
// rocketmq-client-go's per-message goroutine first (see mq's consume path).
func Parse(s string) (Tag, error) {
	switch {
	case s == "":
		return Tag{}, parseError(s, "empty")
	case len(s) > MaxLen:
		return Tag{}, tooLongError(s)
	}
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '-':
			if i == 0 || i == len(s)-1 {
				return Tag{}, parseError(s, "must start and end with a letter or digit")
			}
		default:
			return Tag{}, badCharError(s, i)
		}
	}
	if !upper {
		return Tag{s}, nil
	}
	return Tag{lowerASCII(s)}, nil
}

//go:noinline
func tooLongError(s string) error {
	return parseError(s, fmt.Sprintf("longer than %d bytes (%d)", MaxLen, len(s)))
}

//go:noinline
func badCharError(s string, i int) error {
	return parseError(s, fmt.Sprintf("character %q at byte %d is not in [a-z0-9-]", rune(s[i]), i))
}

//go:noinline
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// MustParse is Parse for tags known at compile time; it panics on error.
func MustParse(s string) Tag {
	t, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return t
}

// MarshalText implements encoding.TextMarshaler, so a Tag works in JSON,
// YAML, flag.TextVar and env-to-struct config libraries. The zero Tag
// (untagged) marshals to the empty text, which UnmarshalText reads back as
// the zero Tag: an empty field or flag means "stable", as an unset
// TAGLANE_TAG does. In JSON use `json:",omitzero"` to leave it out.
func (t Tag) MarshalText() ([]byte, error) { return []byte(t.s), nil }

// AppendText implements encoding.TextAppender: MarshalText without the
// allocation.
func (t Tag) AppendText(b []byte) ([]byte, error) { return append(b, t.s...), nil }

// UnmarshalText implements encoding.TextUnmarshaler with Parse, except that
// empty text is the zero Tag (see MarshalText). On error *t is unchanged.
func (t *Tag) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*t = Tag{}
		return nil
	}
	if len(text) > MaxLen { // spare the copy of a long input: Parse would refuse it
		return parseError(string(text[:min(len(text), 2*MaxLen+1)]), fmt.Sprintf("longer than %d bytes (%d)", MaxLen, len(text)))
	}
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*t = p
	return nil
}
