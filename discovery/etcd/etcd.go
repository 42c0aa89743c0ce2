// Package etcd is a discovery.Registry on etcd: instances register under
// a lease kept alive by the process, and clients watch a service's keys.
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
//	reg, err := etcd.New(cli, etcd.WithTTL(10*time.Second))
//	r, err := reg.Register(ctx, discovery.Instance{Service: "orders", Addr: podIP + ":50051", Tag: tagctx.Node()})
//	defer r.Close(ctx) // graceful stop: gone for every client at once
//
//	b, err := discovery.NewResolver(reg)
//	lanes, err := rpc.New()
//	conn, err := grpc.NewClient("taglane:///orders", lanes.DialOptions(grpc.WithResolvers(b), creds)...)
//
// # Keys
//
// The layout is etcd's own naming layout (go.etcd.io/etcd/client/v3/naming/endpoints):
// an instance is the key "<service>/<addr>" (under WithPrefix's prefix)
// holding endpoints.Endpoint as JSON, {"Addr":"10.0.0.7:50051","Metadata":{...}},
// attached to the registering process's lease. The node tag is the
// Metadata member "x-tag" (MetadataTagKey); the instance's own metadata
// are the other string members. So a service that registers with etcd's
// endpoints.Manager joins the lanes by adding "x-tag" to its Metadata, and
// etcd's naming resolver still reads every key this package writes.
// (That resolver, as of v3.7.3, drops Metadata, so it cannot see tags:
// wrap it with discovery.Wrap and TagLookup, which reads them from the
// same keys, or use this package's registry with discovery.NewResolver.)
//
// Lane definitions are one key, "taglane.lanes" under the prefix, holding
// the JSON discovery.ParseLanes reads. It has no '/', so it never falls
// under a service's "<service>/" prefix.
//
// # Failures
//
// Register returns once etcd has answered the lease's first renewal, so a
// registered instance is being kept alive (see Register for why the
// written key is not enough). A graceful Registration.Close revokes the
// lease: the instance is gone at once. A process that dies stops renewing: etcd removes its keys when
// the lease TTL has passed. While etcd is unreachable, watchers keep the
// last state they had (no update comes) and registrations keep trying;
// when it is back, watches resume where they were (or re-read everything
// after a compaction) and a registration whose lease expired meanwhile
// registers again under a new lease. A value that is not a valid endpoint
// (bad JSON, address or tag) is left out and reported (WithErrorHandler),
// never served as a stable instance.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"google.golang.org/grpc/resolver"

	"github.com/taglane/taglane/discovery"
	"github.com/taglane/taglane/tagctx"
)

// MetadataTagKey is the member of an endpoint's Metadata that holds its
// node tag.
const MetadataTagKey = "x-tag"

// LanesKey is the key of the lane definitions, under the prefix.
const LanesKey = "taglane.lanes"

// Defaults and limits.
const (
	DefaultTTL = 10 * time.Second
	// MaxValue bounds an endpoint value the watcher decodes.
	MaxValue = 16 << 10
	// retryMin and retryMax bound the pause between attempts to re-read
	// or re-register while etcd is unreachable.
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// Registry is the etcd registry. It does not own the client.
type Registry struct {
	c      *clientv3.Client
	prefix string
	ttl    int64 // seconds
	report func(error)
}

var _ discovery.Registry = (*Registry)(nil)

// Option configures New. A nil Option is ignored. Building an Option
// never panics: a bad argument is kept, and New returns it as an error
// naming the option ("etcd: WithX(...): ...").
type Option interface {
	apply(*settings)
}

// settings is what the options set, resolved once by New.
type settings struct {
	prefix string
	ttl    time.Duration
	report func(error)
	err    error // the first bad option's
}

type optionFunc func(*settings)

func (f optionFunc) apply(s *settings) { f(s) }

type badOption struct{ err error }

func (b badOption) apply(s *settings) {
	if s.err == nil {
		s.err = b.err
	}
}

// WithPrefix puts every key under prefix (default none: the keys of etcd's
// naming, "<service>/<addr>", where the naming target is the service).
func WithPrefix(p string) Option { return optionFunc(func(s *settings) { s.prefix = p }) }

// WithTTL sets the lease TTL of registrations (default 10s, rounded up to
// whole seconds; zero or negative is an error): how long a crashed
// instance stays listed.
func WithTTL(d time.Duration) Option {
	if d <= 0 {
		return badOption{fmt.Errorf("etcd: WithTTL(%v): want at least 1s", d)}
	}
	return optionFunc(func(s *settings) { s.ttl = d })
}

// WithErrorHandler receives what the registry leaves out or retries: a
// value that is not an endpoint, a lost lease, a failed watch. nil keeps
// the default, which drops them.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(s *settings) {
		if f != nil {
			s.report = f
		}
	})
}

// New returns a registry on client c. An invalid option is returned as an
// error naming it.
func New(c *clientv3.Client, opts ...Option) (*Registry, error) {
	if c == nil {
		return nil, errors.New("etcd: New: nil client")
	}
	s := settings{ttl: DefaultTTL, report: func(error) {}}
	for _, o := range opts {
		if o != nil {
			o.apply(&s)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	return &Registry{c: c, prefix: s.prefix, ttl: int64((s.ttl + time.Second - 1) / time.Second), report: s.report}, nil
}

func (r *Registry) key(service, addr string) string { return r.prefix + service + "/" + addr }

// encode is the endpoints.Endpoint JSON of inst.
func encode(inst discovery.Instance) ([]byte, error) {
	md := make(map[string]any, len(inst.Metadata)+1)
	for k, v := range inst.Metadata {
		md[k] = v
	}
	if !inst.Tag.IsZero() {
		md[MetadataTagKey] = inst.Tag.String()
	} else {
		delete(md, MetadataTagKey) // a stable instance: no stale tag from the caller's metadata
	}
	return json.Marshal(endpoints.Endpoint{Addr: inst.Addr, Metadata: md})
}

// ParseEndpoint decodes the value of an endpoint key of service: the
// endpoints.Endpoint JSON with the node tag in Metadata["x-tag"].
func ParseEndpoint(service string, value []byte) (discovery.Instance, error) {
	if len(value) > MaxValue {
		return discovery.Instance{}, fmt.Errorf("etcd: endpoint of %q: %d bytes, limit %d", service, len(value), MaxValue)
	}
	var ep struct {
		Addr     string
		Metadata map[string]any
	}
	if err := json.Unmarshal(value, &ep); err != nil {
		return discovery.Instance{}, fmt.Errorf("etcd: endpoint of %q: %s: %w", service, quote(value), err)
	}
	inst := discovery.Instance{Service: service, Addr: ep.Addr}
	for k, v := range ep.Metadata {
		if k == MetadataTagKey {
			s, ok := v.(string)
			if !ok {
				return discovery.Instance{}, fmt.Errorf("etcd: endpoint %q of %q: tag of type %T", quote([]byte(ep.Addr)), service, v)
			}
			t, err := tagctx.Parse(s)
			if err != nil {
				return discovery.Instance{}, fmt.Errorf("etcd: endpoint %s of %q: %w", quote([]byte(ep.Addr)), service, err)
			}
			inst.Tag = t
			continue
		}
		if inst.Metadata == nil {
			inst.Metadata = make(map[string]string, len(ep.Metadata))
		}
		if s, ok := v.(string); ok {
			inst.Metadata[k] = s
		} else if b, err := json.Marshal(v); err == nil {
			inst.Metadata[k] = string(b) // kept, as its JSON
		}
	}
	if err := inst.Check(); err != nil {
		return discovery.Instance{}, fmt.Errorf("etcd: %w", err)
	}
	return inst, nil
}

func quote(b []byte) string {
	const limit = 64
	if len(b) > limit {
		return fmt.Sprintf("%q...", b[:limit])
	}
	return fmt.Sprintf("%q", b)
}

// Register puts inst under a new lease and keeps the lease alive until
// Close (which revokes it) or until the client is closed (which lets it
// expire, as a crash would).
//
// It returns once etcd has answered the first renewal, not when the key
// is written: clientv3 opens the renewal stream in the background, and
// until it is open nothing keeps the lease alive. An etcd that is shutting
// down gracefully (it takes about 5s) keeps serving the streams it has
// and its lease expiry, but accepts no new stream: a registration whose
// stream was not open yet would expire and vanish for every watcher then.
// If ctx ends first, the lease is revoked and Register fails. The cost:
// clientv3 sends the first renewal of a client's first lease at once, of
// its later leases at its next tick (every 500ms), so Register takes up
// to half a second longer.
func (r *Registry) Register(ctx context.Context, inst discovery.Instance) (discovery.Registration, error) {
	if err := inst.Check(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	val, err := encode(inst)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	reg := &registration{r: r, key: r.key(inst.Service, inst.Addr), val: string(val), done: make(chan struct{})}
	lease, err := reg.put(ctx)
	if err != nil {
		return nil, err
	}
	reg.ctx, reg.cancel = context.WithCancel(context.Background())
	ch, err := reg.renewed(ctx, lease)
	if err != nil {
		reg.cancel()
		r.revoke(ctx, lease)
		return nil, err
	}
	go reg.keep(ch)
	return reg, nil
}

// renewed starts renewing lease and waits for etcd's first answer.
func (g *registration) renewed(ctx context.Context, lease clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	ch, err := g.r.c.KeepAlive(g.ctx, lease)
	if err != nil {
		return nil, fmt.Errorf("etcd: register %q: renew lease: %w", g.key, err)
	}
	select {
	case _, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("etcd: register %q: lease lost before its first renewal", g.key)
		}
		return ch, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("etcd: register %q: no renewal of the lease yet: %w", g.key, ctx.Err())
	}
}

// revoke revokes lease, best effort: bounded by the lease's own TTL,
// since it expires by then anyway, and with ctx's values but not its end
// (it cleans up after a failure, often ctx's).
func (r *Registry) revoke(ctx context.Context, lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(r.ttl)*time.Second)
	defer cancel()
	r.c.Revoke(ctx, lease)
}

type registration struct {
	r        *Registry
	key, val string
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	mu    sync.Mutex
	lease clientv3.LeaseID
	once  sync.Once
}

// put grants a lease and writes the key under it.
func (g *registration) put(ctx context.Context) (clientv3.LeaseID, error) {
	l, err := g.r.c.Grant(ctx, g.r.ttl)
	if err != nil {
		return 0, fmt.Errorf("etcd: register %q: grant lease: %w", g.key, err)
	}
	if _, err := g.r.c.Put(ctx, g.key, g.val, clientv3.WithLease(l.ID)); err != nil {
		g.r.revoke(ctx, l.ID)
		return 0, fmt.Errorf("etcd: register %q: put: %w", g.key, err)
	}
	g.mu.Lock()
	g.lease = l.ID
	g.mu.Unlock()
	return l.ID, nil
}

// keep follows the renewals of the lease (ch); when the lease is lost
// (etcd was unreachable for longer than the TTL), it registers again
// under a new one.
func (g *registration) keep(ch <-chan *clientv3.LeaseKeepAliveResponse) {
	defer close(g.done)
	pause := retryMin
	for {
		for range ch {
			pause = retryMin
		}
		if g.ctx.Err() != nil || g.r.c.Ctx().Err() != nil {
			return // closed, or the client was: a crash, for etcd
		}
		g.r.report(fmt.Errorf("etcd: lease of %q lost; registering again", g.key))
		for {
			if !sleep(g.ctx, pause) {
				return
			}
			pause = min(2*pause, retryMax)
			lease, err := g.put(g.ctx)
			if err == nil {
				if ch, err = g.r.c.KeepAlive(g.ctx, lease); err == nil {
					break
				}
			}
			if g.ctx.Err() != nil || g.r.c.Ctx().Err() != nil {
				return
			}
			g.r.report(err)
		}
	}
}

// sleep waits d or until ctx is done, and reports which.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close stops renewing and revokes the lease: the key is gone at once.
func (g *registration) Close(ctx context.Context) error {
	var err error
	g.once.Do(func() {
		g.cancel()
		<-g.done
		g.mu.Lock()
		lease := g.lease
		g.mu.Unlock()
		if _, rerr := g.r.c.Revoke(ctx, lease); rerr != nil {
			err = fmt.Errorf("etcd: deregister %q: revoke: %w (the key goes when the lease expires)", g.key, rerr)
		}
	})
	return err
}

// SetLanes stores the lane definitions every watcher applies.
func (r *Registry) SetLanes(ctx context.Context, l discovery.Lanes) error {
	if err := l.Check(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("etcd: lanes: %w", err)
	}
	if _, err := r.c.Put(ctx, r.prefix+LanesKey, string(b)); err != nil {
		return fmt.Errorf("etcd: set lanes: %w", err)
	}
	return nil
}

// Watch implements discovery.Registry: a read of the service's keys and
// the lanes key, then a watch from the revision read.
func (r *Registry) Watch(service string, update func(discovery.State)) (func(), error) {
	if err := discovery.CheckService(service); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{r: r, service: service, prefix: r.prefix + service + "/", update: update}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

type watch struct {
	r       *Registry
	service string
	prefix  string
	update  func(discovery.State)

	insts map[string]discovery.Instance // key -> instance
	lanes discovery.Lanes
}

func (w *watch) run(ctx context.Context) {
	pause := retryMin
	for ctx.Err() == nil {
		rev, err := w.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.r.report(fmt.Errorf("etcd: watch %q: %w; keeping the last state", w.service, err))
			}
			if !sleep(ctx, pause) {
				return
			}
			pause = min(2*pause, retryMax)
			continue
		}
		pause = retryMin
		w.deliver()
		err = w.follow(ctx, rev)
		if ctx.Err() == nil {
			w.r.report(fmt.Errorf("etcd: watch %q: %w; reading again", w.service, err))
		}
	}
}

// load reads the service's keys and the lane definitions at one revision.
func (w *watch) load(ctx context.Context) (int64, error) {
	lanesKey := w.r.prefix + LanesKey
	resp, err := w.r.c.Txn(ctx).Then(
		clientv3.OpGet(w.prefix, clientv3.WithPrefix()),
		clientv3.OpGet(lanesKey),
	).Commit()
	if err != nil {
		return 0, err
	}
	w.insts = make(map[string]discovery.Instance)
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		w.put(string(kv.Key), kv.Value)
	}
	w.lanes = discovery.Lanes{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		w.setLanes(kv.Value)
	}
	return resp.Header.Revision, nil
}

func (w *watch) put(key string, value []byte) {
	inst, err := ParseEndpoint(w.service, value)
	if err != nil {
		delete(w.insts, key) // an old good value no longer holds
		w.r.report(fmt.Errorf("etcd: key %s left out: %w", quote([]byte(key)), err))
		return
	}
	w.insts[key] = inst
}

func (w *watch) setLanes(value []byte) {
	l, err := discovery.ParseLanes(value)
	if err != nil {
		// Keep the definitions in force rather than drop every chain.
		w.r.report(fmt.Errorf("etcd: lanes key ignored: %w", err))
		return
	}
	w.lanes = l
}

// follow applies the watch events after rev until the watch ends.
func (w *watch) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lanesKey := w.r.prefix + LanesKey
	svc := w.r.c.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	lanes := w.r.c.Watch(wctx, lanesKey, clientv3.WithRev(rev+1))
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-svc:
		case resp, ok = <-lanes:
		}
		if !ok {
			return errors.New("watch channel closed")
		}
		if err := resp.Err(); err != nil {
			return err // compacted or canceled: read everything again
		}
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case key == lanesKey && ev.Type == clientv3.EventTypeDelete:
				w.lanes = discovery.Lanes{}
			case key == lanesKey:
				w.setLanes(ev.Kv.Value)
			case ev.Type == clientv3.EventTypeDelete:
				delete(w.insts, key)
			default:
				w.put(key, ev.Kv.Value)
			}
		}
		if len(resp.Events) > 0 {
			w.deliver()
		}
	}
}

func (w *watch) deliver() {
	s := discovery.State{Lanes: w.lanes, Instances: make([]discovery.Instance, 0, len(w.insts))}
	// One instance per address: two keys naming one address (a stale
	// registration beside a new one) are one instance, the first by key.
	seen := make(map[string]bool, len(w.insts))
	for _, k := range sortedKeys(w.insts) {
		inst := w.insts[k]
		if seen[inst.Addr] {
			continue
		}
		seen[inst.Addr] = true
		inst.Metadata = maps.Clone(inst.Metadata)
		s.Instances = append(s.Instances, inst)
	}
	w.update(s)
}

func sortedKeys(m map[string]discovery.Instance) []string {
	return slices.Sorted(maps.Keys(m))
}

// TagLookup returns a discovery.TagFunc for wrapping etcd's own naming
// resolver (go.etcd.io/etcd/client/v3/naming/resolver), which drops the
// endpoints' Metadata: it reads the tag of an endpoint from the keys of
// service, found by address. The keys are read again when an address is
// not among those last read or the last read is older than a second, so
// an endpoint the resolver just reported is found: its key was written
// before the resolver saw it. An address with no key is an error (the
// endpoint is left out), not a stable instance.
func TagLookup(c *clientv3.Client, service string, opts ...Option) (discovery.TagFunc, error) {
	r, err := New(c, opts...)
	if err != nil {
		return nil, err
	}
	if err := discovery.CheckService(service); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	l := &lookup{r: r, service: service}
	return l.tag, nil
}

type lookup struct {
	r       *Registry
	service string

	mu   sync.Mutex
	at   time.Time
	tags map[string]tagctx.Tag // addr -> tag
}

func (l *lookup) tag(ep resolver.Endpoint) (tagctx.Tag, error) {
	if len(ep.Addresses) == 0 {
		return tagctx.Tag{}, errors.New("etcd: endpoint without an address")
	}
	addr := ep.Addresses[0].Addr
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.tags[addr]; ok && time.Since(l.at) < time.Second {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := l.r.c.Get(ctx, l.r.prefix+l.service+"/", clientv3.WithPrefix())
	if err != nil {
		return tagctx.Tag{}, fmt.Errorf("etcd: tag of %s: %w", quote([]byte(addr)), err)
	}
	l.tags, l.at = make(map[string]tagctx.Tag, len(resp.Kvs)), time.Now()
	for _, kv := range resp.Kvs {
		if inst, err := ParseEndpoint(l.service, kv.Value); err == nil {
			l.tags[inst.Addr] = inst.Tag
		}
	}
	t, ok := l.tags[addr]
	if !ok {
		return tagctx.Tag{}, fmt.Errorf("etcd: tag of %s: no valid key of %q has this address", quote([]byte(addr)), l.service)
	}
	return t, nil
}
