package tagctx

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrUntrusted is matched (errors.Is) by every refusal Trust.Check returns,
// so an observer can tell a refused tag from an invalid one (ErrInvalidTag)
// or input over the limits (ErrLimit).
var ErrUntrusted = errors.New("not trusted")

// ErrMisdirected is matched (errors.Is) by Observation.Rejected when a
// strict entry point refused a call it should not serve: traffic of
// another lane, or stable traffic on a lane instance. Such a call is
// served by no lane, so its Route is the zero Route, not RouteMisroute.
var ErrMisdirected = errors.New("misdirected")

// Misdirected returns the reason a strict entry point of node refuses
// traffic, matching ErrMisdirected; prefix names the package.
func Misdirected(prefix string, traffic, node Tag) error {
	switch {
	case traffic.IsZero():
		return fmt.Errorf("%s: %w: strict lane instance %q refuses stable traffic", prefix, ErrMisdirected, node.s)
	case node.IsZero():
		return fmt.Errorf("%s: %w: strict stable instance refuses traffic of lane %q", prefix, ErrMisdirected, traffic.s)
	}
	return fmt.Errorf("%s: %w: strict instance of lane %q refuses traffic of lane %q", prefix, ErrMisdirected, node.s, traffic.s)
}

// Trust decides whether an entry point believes the tag a caller sent. The
// zero Trust accepts every valid tag, right for test environments; a
// production edge uses TrustNone so outside callers cannot pick a lane.
type Trust struct {
	kind trustKind
	tags []Tag
	nets []netip.Prefix
}

type trustKind uint8

const (
	trustAll trustKind = iota
	trustNone
	trustTags
	trustNets
)

// TrustAll accepts every valid tag (the default).
func TrustAll() Trust { return Trust{} }

// TrustNone strips every inbound tag: traffic entering here is stable.
func TrustNone() Trust { return Trust{kind: trustNone} }

// TrustTags accepts only the listed tags.
func TrustTags(tags ...Tag) Trust {
	return Trust{kind: trustTags, tags: slices.Clone(tags)}
}

// TrustNetworks accepts tags only from peers inside one of nets. IPv4
// peers match IPv4 prefixes and IPv4-mapped IPv6 prefixes alike.
func TrustNetworks(nets ...netip.Prefix) Trust {
	return Trust{kind: trustNets, nets: slices.Clone(nets)}
}

// Err reports a policy that cannot mean what its caller wrote: a
// TrustNetworks prefix that is not valid (the zero netip.Prefix, which
// contains no address, so every tag would be refused without a word) or a
// TrustTags tag that is the zero Tag (no traffic carries it). httpmw.New
// and rpc.New return it; a policy built from configuration can be checked
// with it at once.
func (t Trust) Err() error {
	for i, n := range t.nets {
		if !n.IsValid() {
			return fmt.Errorf("tagctx: TrustNetworks: prefix %d (%v) is not a valid prefix", i+1, n)
		}
	}
	for i, tag := range t.tags {
		if tag.IsZero() {
			return fmt.Errorf("tagctx: TrustTags: tag %d is the zero Tag", i+1)
		}
	}
	return nil
}

// Strips reports whether t accepts no tag at all, so an entry point can
// skip extraction and remove the tag headers.
func (t Trust) Strips() bool { return t.kind == trustNone }

// AcceptsAll reports whether t is TrustAll. Any other policy makes an
// entry point's decision final for every request, "untagged because no tag
// was sent" included, so a later hop cannot take a lane from anything the
// caller controlled.
func (t Trust) AcceptsAll() bool { return t.kind == trustAll }

// Check returns nil if tag from peer is to be believed, else the reason.
// peer may be invalid when unknown; network trust then refuses.
func (t Trust) Check(tag Tag, peer netip.Addr) error {
	switch t.kind {
	case trustAll:
		return nil
	case trustNone:
		return fmt.Errorf("tagctx: tag %q %w: this entry point strips inbound tags", tag.s, ErrUntrusted)
	case trustTags:
		if slices.Contains(t.tags, tag) {
			return nil
		}
		return fmt.Errorf("tagctx: tag %q %w: not in the trusted list", tag.s, ErrUntrusted)
	}
	// netip never matches an IPv4 address against an IPv6 prefix, so an
	// IPv4 peer is tried in both spellings: plain for 10.0.0.0/8, mapped
	// for ::ffff:10.0.0.0/104.
	peer = peer.Unmap()
	var mapped netip.Addr
	if peer.Is4() {
		mapped = netip.AddrFrom16(peer.As16())
	}
	for _, n := range t.nets {
		if n.Contains(peer) || mapped.IsValid() && n.Contains(mapped) {
			return nil
		}
	}
	return fmt.Errorf("tagctx: tag %q %w: peer %q is outside the trusted networks", tag.s, ErrUntrusted, peer)
}
