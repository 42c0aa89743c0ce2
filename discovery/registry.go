package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/taglane/taglane/rpc"
	"github.com/taglane/taglane/tagctx"
)

// Limits on what a registry accepts, so a bad registration fails at once
// with a reason instead of producing keys or addresses nobody can use.
const (
	MaxServiceLen  = 253 // a DNS name: service names often are host names
	MaxAddrLen     = 261 // a DNS name, ':' and a port
	MaxMetadata    = 64  // metadata entries of one instance
	MaxMetadataLen = 1024
	quoteLimit     = 64 // bytes of a bad value quoted in an error
)

// ErrInvalid is wrapped by every error about an invalid instance, service
// or lane definition.
var ErrInvalid = errors.New("invalid")

// Instance is one running instance of a service: where it listens and the
// node tag it was started with (the zero Tag: a stable instance).
type Instance struct {
	Service  string
	Addr     string // host:port
	Tag      tagctx.Tag
	Metadata map[string]string // free-form, carried to watchers
}

// Lanes are lane definitions that every client of a registry applies: a
// lane's parent chain and the fallback policy. See the package doc for
// their precedence over a client's own.
type Lanes struct {
	// Fallback is the policy when a lane's chain has no instance; empty
	// means "not set here".
	Fallback rpc.Fallback
	// Parents maps a lane to the lanes that may serve its traffic before
	// the fallback applies, in order (the whole chain: not transitive).
	Parents map[tagctx.Tag][]tagctx.Tag
}

// State is what a watcher sees of a service: its instances and the lane
// definitions of the registry. Instances are ordered by address.
type State struct {
	Instances []Instance
	Lanes     Lanes
}

// Registry registers instances and lane definitions, and watches services.
// Implementations: NewMemory here, and the etcd registry in the module
// github.com/taglane/taglane/discovery/etcd.
type Registry interface {
	// Register publishes inst until the Registration is closed (graceful
	// stop: the instance is gone for every watcher at once) or the
	// registry stops hearing from this process (crash: gone after the
	// registry's lease TTL, when it has one).
	Register(ctx context.Context, inst Instance) (Registration, error)
	// Watch calls update with the complete state of service, now and after
	// every change, one call at a time, until stop is called; stop waits
	// for a running update to return. Updates may be coalesced: the last
	// one is always the current state. While the registry is unreachable,
	// no update comes: watchers keep the last known state.
	Watch(service string, update func(State)) (stop func(), err error)
	// SetLanes replaces the registry's lane definitions; every watcher of
	// every service gets them with its next update.
	SetLanes(ctx context.Context, l Lanes) error
}

// Registration is one registered instance.
type Registration interface {
	// Close deregisters the instance at once.
	Close(ctx context.Context) error
}

func quote(s string) string {
	if len(s) > quoteLimit {
		s = s[:quoteLimit] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// CheckService reports whether name can be a service name: 1 to
// MaxServiceLen bytes of printable ASCII without '/' or space, since
// registries use it in keys and clients in URLs and targets.
func CheckService(name string) error {
	if name == "" || len(name) > MaxServiceLen {
		return fmt.Errorf("discovery: service %s: want 1 to %d bytes: %w", quote(name), MaxServiceLen, ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("discovery: service %s: character %q at %d: %w", quote(name), c, i, ErrInvalid)
		}
	}
	return nil
}

// Check validates inst: service name, a host:port address, metadata
// within limits.
func (inst Instance) Check() error {
	if err := CheckService(inst.Service); err != nil {
		return err
	}
	if len(inst.Addr) > MaxAddrLen {
		return fmt.Errorf("discovery: instance of %q: address %s: longer than %d bytes: %w", inst.Service, quote(inst.Addr), MaxAddrLen, ErrInvalid)
	}
	host, port, err := net.SplitHostPort(inst.Addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(inst.Addr, "/ \t\r\n") {
		return fmt.Errorf("discovery: instance of %q: address %s: want host:port: %w", inst.Service, quote(inst.Addr), ErrInvalid)
	}
	if len(inst.Metadata) > MaxMetadata {
		return fmt.Errorf("discovery: instance %s of %q: %d metadata entries, limit %d: %w", quote(inst.Addr), inst.Service, len(inst.Metadata), MaxMetadata, ErrInvalid)
	}
	for k, v := range inst.Metadata {
		if len(k)+len(v) > MaxMetadataLen {
			return fmt.Errorf("discovery: instance %s of %q: metadata %s: over %d bytes: %w", quote(inst.Addr), inst.Service, quote(k), MaxMetadataLen, ErrInvalid)
		}
	}
	return nil
}

// Check validates l: a known fallback policy, no chain naming stable or
// repeating a lane.
func (l Lanes) Check() error {
	switch l.Fallback {
	case "", rpc.FallbackStable, rpc.FallbackFail:
	default:
		return fmt.Errorf("discovery: lanes: fallback %s: want %q or %q: %w", quote(string(l.Fallback)), rpc.FallbackStable, rpc.FallbackFail, ErrInvalid)
	}
	for lane, chain := range l.Parents {
		if lane.IsZero() {
			return fmt.Errorf("discovery: lanes: parents of stable: %w", ErrInvalid)
		}
		for i, p := range chain {
			if p.IsZero() || p == lane || slices.Contains(chain[:i], p) {
				return fmt.Errorf("discovery: lanes: parents of %q: %q is stable or repeats a lane of the chain: %w", lane, p, ErrInvalid)
			}
		}
	}
	return nil
}

// Over returns the lane definitions in force when l comes from the
// registry and local from a client's options: the registry's fallback when
// it sets one, and for each lane the registry's chain when it defines one,
// else the local one.
func (l Lanes) Over(local Lanes) Lanes {
	out := Lanes{Fallback: local.Fallback}
	if l.Fallback != "" {
		out.Fallback = l.Fallback
	}
	if len(l.Parents)+len(local.Parents) > 0 {
		out.Parents = maps.Clone(local.Parents)
		if out.Parents == nil {
			out.Parents = make(map[tagctx.Tag][]tagctx.Tag, len(l.Parents))
		}
		maps.Copy(out.Parents, l.Parents)
	}
	return out
}

// rpcOptions expresses l as the rpc options of the same meaning.
func (l Lanes) rpcOptions() []rpc.Option {
	var opts []rpc.Option
	if l.Fallback != "" {
		opts = append(opts, rpc.WithFallback(l.Fallback))
	}
	for lane, chain := range l.Parents {
		opts = append(opts, rpc.WithParents(lane, chain...))
	}
	return opts
}

// serviceConfig is the service config selecting the lane balancer with l.
func (l Lanes) serviceConfig() string { return rpc.ServiceConfig(l.rpcOptions()...) }

func cloneInstance(inst Instance) Instance {
	inst.Metadata = maps.Clone(inst.Metadata)
	return inst
}
