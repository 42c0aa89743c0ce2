package mq

import (
	"fmt"
	"strings"

	"github.com/taglane/taglane/tagctx"
)

// laneSep separates a lane group's tag from its base group. A tag never
// contains it, so "<tag>_<base>" splits unambiguously at the first one.
const laneSep = "_"

func validGroupChars(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '%', c == '|', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// checkGroup applies RocketMQ 4.9.4's Validators.checkGroup: not blank,
// ^[%|a-zA-Z0-9_-]+$, at most MaxGroupLen characters.
func checkGroup(what, g string) error {
	switch {
	case g == "":
		return fmt.Errorf("mq: %s is empty", what)
	case len(g) > MaxGroupLen:
		return fmt.Errorf("mq: %s %q is %d characters, longer than RocketMQ's %d", what, g, len(g), MaxGroupLen)
	case !validGroupChars(g):
		return fmt.Errorf("mq: %s %q: want characters of [%%|a-zA-Z0-9_-]", what, g)
	}
	return nil
}

// StableGroup returns the stable consumer group of base: prefix + base.
func StableGroup(prefix, base string) (string, error) {
	if err := checkGroup("base group", base); err != nil {
		return "", err
	}
	g := prefix + base
	if err := checkGroup("stable group", g); err != nil {
		return "", err
	}
	return g, nil
}

// LaneGroup returns the consumer group of lane tag for base: "<tag>_<base>".
func LaneGroup(tag tagctx.Tag, base string) (string, error) {
	if tag.IsZero() {
		return "", fmt.Errorf("mq: lane group of base %q needs a tag", base)
	}
	if err := checkGroup("base group", base); err != nil {
		return "", err
	}
	g := tag.String() + laneSep + base
	if err := checkGroup("lane group", g); err != nil {
		return "", err
	}
	return g, nil
}

// laneOf reports whether group is a lane group of base and returns its tag.
func laneOf(group, base string) (tagctx.Tag, bool) {
	t, rest, ok := strings.Cut(group, laneSep)
	if !ok || rest != base {
		return tagctx.Tag{}, false
	}
	tag, err := tagctx.Parse(t)
	if err != nil || tag.String() != t {
		return tagctx.Tag{}, false
	}
	return tag, true
}
