package discovery

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
)

// Memory is an in-process Registry, for tests and for programs that run
// all their instances in one process. It has no leases: an instance stays
// until its Registration is closed.
type Memory struct {
	mu       sync.Mutex
	services map[string]map[string]Instance // service -> addr -> instance
	lanes    Lanes
	watchers map[*watcher]struct{}
}

var _ Registry = (*Memory)(nil)

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory {
	return &Memory{services: make(map[string]map[string]Instance), watchers: make(map[*watcher]struct{})}
}

type memRegistration struct {
	m    *Memory
	inst Instance
	once sync.Once
}

// Register publishes inst. An address registers once per service: a second
// registration of it is an error, so two processes cannot silently share
// (and deregister) one entry.
func (m *Memory) Register(_ context.Context, inst Instance) (Registration, error) {
	if err := inst.Check(); err != nil {
		return nil, err
	}
	inst = cloneInstance(inst)
	m.mu.Lock()
	defer m.mu.Unlock()
	byAddr := m.services[inst.Service]
	if byAddr == nil {
		byAddr = make(map[string]Instance)
		m.services[inst.Service] = byAddr
	}
	if _, dup := byAddr[inst.Addr]; dup {
		return nil, fmt.Errorf("discovery: %s of %q is already registered", quote(inst.Addr), inst.Service)
	}
	byAddr[inst.Addr] = inst
	m.notifyLocked(inst.Service)
	return &memRegistration{m: m, inst: inst}, nil
}

func (r *memRegistration) Close(context.Context) error {
	r.once.Do(func() {
		m := r.m
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.services[r.inst.Service], r.inst.Addr)
		m.notifyLocked(r.inst.Service)
	})
	return nil
}

// SetLanes replaces the lane definitions of every service.
func (m *Memory) SetLanes(_ context.Context, l Lanes) error {
	if err := l.Check(); err != nil {
		return err
	}
	l = l.Over(Lanes{}) // a copy: the caller may reuse its map
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lanes = l
	for w := range m.watchers {
		w.notify()
	}
	return nil
}

// Watch implements Registry.
func (m *Memory) Watch(service string, update func(State)) (func(), error) {
	if err := CheckService(service); err != nil {
		return nil, err
	}
	w := newWatcher(service, func() State { return m.state(service) }, update)
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	w.notify()
	return func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
		w.stop()
	}, nil
}

func (m *Memory) state(service string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := State{Lanes: m.lanes}
	for _, inst := range m.services[service] {
		s.Instances = append(s.Instances, cloneInstance(inst))
	}
	sortInstances(s.Instances)
	return s
}

func sortInstances(insts []Instance) {
	slices.SortFunc(insts, func(a, b Instance) int { return cmp.Compare(a.Addr, b.Addr) })
}

func (m *Memory) notifyLocked(service string) {
	for w := range m.watchers {
		if w.service == service {
			w.notify()
		}
	}
}

// watcher delivers the latest state of a service to one callback, from its
// own goroutine: registry changes never wait for a slow callback, and a
// burst of changes becomes one update.
type watcher struct {
	service string
	read    func() State
	update  func(State)
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newWatcher(service string, read func() State, update func(State)) *watcher {
	w := &watcher{
		service: service, read: read, update: update,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	go w.run()
	return w
}

func (w *watcher) notify() {
	select {
	case w.kick <- struct{}{}:
	default: // an update is already due; it will read the latest state
	}
}

func (w *watcher) run() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case <-w.kick:
		}
		select {
		case <-w.quit:
			return
		default:
		}
		w.update(w.read())
	}
}

// stop ends the watcher and waits for a running update to return.
func (w *watcher) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}
