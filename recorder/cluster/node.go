// Package cluster makes the recorders that share one PostgreSQL store a fleet
// (DESIGN.md "Persistence"): each instance registers itself with its
// recorderId, internal and public URLs, capacity and current load, and sends
// a heartbeat every few seconds; commands on a recording another instance
// runs are forwarded to it (forward.go) and answered as if local.
//
// Liveness compares heartbeats, written with each instance's own clock,
// with the reader's clock: the fleet's clocks must agree (NTP) to well
// within DeadAfter.
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/rtcrec/recorder/recorder/store"
)

// Options configure a Node. Zero fields take the defaults given per field.
type Options struct {
	Store       *store.Store // required
	RecorderID  string       // required: this instance
	InternalURL string       // required: base URL the other instances reach it at
	PublicURL   string       // base URL clients reach it at (default InternalURL)
	// Capacity is the streams it takes at most (capacity.streams; 0: no
	// limit), the unit of recorder.Manager.Load.
	Capacity int
	// Load returns the streams the instance carries now
	// (recorder.Manager.Load); Draining whether it is shutting down. Nil: 0
	// and false.
	Load     func() int
	Draining func() bool
	// Heartbeat is the interval of heartbeats (default 2 s); an instance
	// whose last heartbeat is older than DeadAfter (default 3 heartbeats) is
	// dead.
	Heartbeat, DeadAfter time.Duration
	Logger               *slog.Logger
	Now                  func() time.Time // for tests
}

// Node is this instance's membership of the fleet. Its methods are safe for
// concurrent use.
type Node struct {
	opts    Options
	started time.Time
	secret  []byte // shared by the fleet: signs forwarded commands
	client  *http.Client

	// renewed are the kinds of quota leases held while this instance lives:
	// each heartbeat renews them (quota.go).
	renewMu sync.Mutex
	renewed []string

	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	stopOnce sync.Once
}

// secretSetting is the settings row holding the fleet's shared secret. The
// database is the fleet's root of trust: whoever can write it controls the
// fleet anyway.
const secretSetting = "cluster.secret"

// New registers the instance (a first heartbeat) and reads or creates the
// fleet's shared secret. Start begins the heartbeats.
func New(ctx context.Context, o Options) (*Node, error) {
	if o.Store == nil || o.RecorderID == "" || o.InternalURL == "" {
		return nil, errors.New("cluster: Options need Store, RecorderID and InternalURL")
	}
	if o.PublicURL == "" {
		o.PublicURL = o.InternalURL
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 2 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 3 * o.Heartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// No client timeout: a forwarded stop returns once the owner's uploads
	// are verified; the caller's context bounds it.
	n := &Node{opts: o, started: o.Now(), stop: make(chan struct{}), client: &http.Client{}}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	s, err := o.Store.Setting(ctx, secretSetting, hex.EncodeToString(fresh))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.secret, err = hex.DecodeString(s); err != nil || len(n.secret) < 16 {
		return nil, fmt.Errorf("cluster: the stored %s is not a hex key", secretSetting)
	}
	if err := n.beat(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// SetLoad sets the functions that report the instance's load and draining
// state in each heartbeat; call it before Start.
func (n *Node) SetLoad(load func() int, draining func() bool) {
	n.opts.Load, n.opts.Draining = load, draining
}

// RecorderID returns this instance's recorderId.
func (n *Node) RecorderID() string { return n.opts.RecorderID }

// Start sends a heartbeat every Options.Heartbeat until Close.
func (n *Node) Start() {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), n.opts.Heartbeat)
			if err := n.beat(ctx); err != nil {
				n.opts.Logger.Warn("cluster: heartbeat failed", "err", err)
			}
			cancel()
		}
	}()
}

// Self returns this instance as it reports itself now.
func (n *Node) Self() *store.Instance {
	in := &store.Instance{
		RecorderID: n.opts.RecorderID, InternalURL: n.opts.InternalURL, PublicURL: n.opts.PublicURL,
		Capacity: n.opts.Capacity, Started: n.started, Heartbeat: n.opts.Now(),
	}
	if n.opts.Load != nil {
		in.Active = n.opts.Load()
	}
	if n.opts.Draining != nil {
		in.Draining = n.opts.Draining()
	}
	return in
}

// beat writes one heartbeat, and renews this instance's quota leases.
func (n *Node) beat(ctx context.Context) error {
	if err := n.opts.Store.PutInstance(ctx, n.Self()); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	n.renewMu.Lock()
	kinds := slices.Clone(n.renewed)
	n.renewMu.Unlock()
	if err := n.opts.Store.RenewLeases(ctx, n.opts.RecorderID, kinds, n.opts.Now().Add(n.opts.DeadAfter)); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

// Alive reports whether in's last heartbeat is recent enough.
func (n *Node) Alive(in *store.Instance) bool {
	return n.opts.Now().Sub(in.Heartbeat) < n.opts.DeadAfter
}

// Members returns the live instances of the fleet, this one included, by recorderId.
func (n *Node) Members(ctx context.Context) ([]*store.Instance, error) {
	all, err := n.opts.Store.Instances(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: members: %w", err)
	}
	live := all[:0]
	for _, in := range all {
		if n.Alive(in) {
			live = append(live, in)
		}
	}
	return live, nil
}

// Stop stops the heartbeats and leaves the instance's row as it is: the
// fleet declares it dead after DeadAfter (what a crash looks like). It is
// idempotent, and Close after Stop still removes the row.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		close(n.stop)
		n.wg.Wait()
	})
}

// Close stops the heartbeats and removes the instance from the fleet (a
// graceful leave: nobody waits for it to be declared dead). It is idempotent.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.once.Do(func() {
		n.Stop()
		err = n.opts.Store.DeleteInstance(ctx, n.opts.RecorderID)
	})
	return err
}

// Place lists the live instances that take a new recording, least loaded
// first (recorder.Remote): not draining, carrying fewer streams than their
// capacity (or without one). Load is the share of capacity in use, an
// instance without a capacity counting as one of unbounded size (so among
// such instances the fewest streams go first); this instance counts with its
// load now, the others as of their last heartbeat. Ties go to this instance
// (no hop), then by recorderId.
func (n *Node) Place(ctx context.Context) ([]string, error) {
	members, err := n.Members(ctx)
	if err != nil {
		return nil, err
	}
	self := n.Self()
	var open []*store.Instance
	for _, in := range members {
		if in.RecorderID == self.RecorderID {
			in = self
		}
		if !in.Draining && (in.Capacity <= 0 || in.Active < in.Capacity) {
			open = append(open, in)
		}
	}
	slices.SortStableFunc(open, func(a, b *store.Instance) int {
		// a.Active/a.Capacity vs b.Active/b.Capacity, in integers.
		if c := cmp.Compare(int64(a.Active)*bound(b.Capacity), int64(b.Active)*bound(a.Capacity)); c != 0 {
			return c
		}
		if (a.RecorderID == self.RecorderID) != (b.RecorderID == self.RecorderID) {
			if a.RecorderID == self.RecorderID {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.RecorderID, b.RecorderID)
	})
	ids := make([]string, len(open))
	for i, in := range open {
		ids[i] = in.RecorderID
	}
	return ids, nil
}

// unbounded stands for "no capacity" in Place's comparison of shares: larger
// than any capacity configured, small enough that load × it fits an int64.
const unbounded = 1 << 31

func bound(capacity int) int64 {
	if capacity <= 0 {
		return unbounded
	}
	return int64(capacity)
}

// LoadChanged writes a heartbeat now (recorder.Remote), so that placements
// on every instance see this one's new load.
func (n *Node) LoadChanged(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.opts.Heartbeat)
	defer cancel()
	if err := n.beat(ctx); err != nil {
		n.opts.Logger.Warn("cluster: heartbeat after a load change failed", "err", err)
	}
}
