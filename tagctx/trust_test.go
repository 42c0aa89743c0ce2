package tagctx

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestTrust(t *testing.T) {
	a := MustParse("a")
	inside, outside := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name    string
		trust   Trust
		tag     Tag
		peer    netip.Addr
		wantErr string
	}{
		{name: "zero value accepts", trust: Trust{}, tag: a},
		{name: "all", trust: TrustAll(), tag: a, peer: outside},
		{name: "none", trust: TrustNone(), tag: a, wantErr: `"a" not trusted: this entry point strips inbound tags`},
		{name: "listed tag", trust: TrustTags(a), tag: a},
		{name: "unlisted tag", trust: TrustTags(a), tag: MustParse("b"), wantErr: `"b" not trusted: not in the trusted list`},
		{name: "trusted network", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")), tag: a, peer: inside},
		{name: "v4-mapped v6 peer", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")), tag: a, peer: netip.AddrFrom16(inside.As16())},
		{name: "untrusted network", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")), tag: a, peer: outside, wantErr: `peer "192.0.2.1" is outside the trusted networks`},
		{name: "v4 peer, v4-mapped prefix", trust: TrustNetworks(netip.MustParsePrefix("::ffff:10.0.0.0/104")), tag: a, peer: inside},
		{name: "v4-mapped peer, v4-mapped prefix", trust: TrustNetworks(netip.MustParsePrefix("::ffff:10.0.0.0/104")), tag: a, peer: netip.AddrFrom16(inside.As16())},
		{name: "v4 peer outside v4-mapped prefix", trust: TrustNetworks(netip.MustParsePrefix("::ffff:10.0.0.0/104")), tag: a, peer: outside, wantErr: "outside the trusted networks"},
		{name: "unknown peer refused", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8")), tag: a, wantErr: "outside the trusted networks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.trust.Check(tt.tag, tt.peer)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check = %v, want %q", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUntrusted) {
				t.Errorf("errors.Is(%v, ErrUntrusted) = false", err)
			}
		})
	}
	if !TrustNone().Strips() || TrustAll().Strips() {
		t.Error("Strips wrong")
	}
}

func TestTrustTagsCopiesInput(t *testing.T) {
	tags := []Tag{MustParse("a")}
	tr := TrustTags(tags...)
	tags[0] = MustParse("b")
	if tr.Check(MustParse("a"), netip.Addr{}) != nil {
		t.Fatal("Trust must not share the caller's slice")
	}
}

func TestTrustErr(t *testing.T) {
	tests := []struct {
		name    string
		trust   Trust
		wantErr string
	}{
		{name: "all", trust: TrustAll()},
		{name: "none", trust: TrustNone()},
		{name: "tags", trust: TrustTags(MustParse("a"))},
		{name: "no tags", trust: TrustTags()},
		{name: "networks", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"))},
		{name: "zero prefix", trust: TrustNetworks(netip.MustParsePrefix("10.0.0.0/8"), netip.Prefix{}), wantErr: "tagctx: TrustNetworks: prefix 2 (invalid Prefix) is not a valid prefix"},
		{name: "zero tag", trust: TrustTags(MustParse("a"), Tag{}), wantErr: "tagctx: TrustTags: tag 2 is the zero Tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.trust.Err()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("Err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
