package discovery

import (
	"errors"
	"sync/atomic"

	"github.com/taglane/taglane/tagctx"
)

// LaneView follows the lane definitions of a registry, for servers: give
// its Parents to rpc.WithParentsFrom, so a hop served by a parent lane is
// proven a fallback, with the chains every client routes by, changed at
// runtime like theirs.
type LaneView struct {
	cur  atomic.Pointer[Lanes]
	stop func()
}

// WatchLanes returns a LaneView of reg's lane definitions over the local
// ones of WithLanes (the same precedence as the resolver's), read from the
// watch of service (registries deliver lane definitions with a service's
// state; the server's own service is the natural choice). Close it to stop
// watching.
func WatchLanes(reg Registry, service string, opts ...Option) (*LaneView, error) {
	if reg == nil {
		return nil, errors.New("discovery: WatchLanes: nil registry")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := o.lanes.Check(); err != nil {
		return nil, err
	}
	v := &LaneView{}
	local := o.lanes
	v.cur.Store(&local)
	stop, err := reg.Watch(service, func(s State) {
		l := s.Lanes.Over(local)
		v.cur.Store(&l)
	})
	if err != nil {
		return nil, err
	}
	v.stop = stop
	return v, nil
}

// Parents returns the parent chain of lane and whether one is defined.
// It takes no lock and does not allocate.
func (v *LaneView) Parents(lane tagctx.Tag) ([]tagctx.Tag, bool) {
	p, ok := v.cur.Load().Parents[lane]
	return p, ok
}

// Lanes returns the definitions in force.
func (v *LaneView) Lanes() Lanes { return *v.cur.Load() }

// Close stops watching.
func (v *LaneView) Close() { v.stop() }
