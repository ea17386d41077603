package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rtcrec/recorder/recorder"
)

// channel is the PostgreSQL notification channel of fleet-wide commands
// (blackouts): a NOTIFY reaches every listening instance within
// milliseconds, and nothing is polled.
const channel = "recorder_fleet"

// notice is one broadcast command and its sender.
type notice struct {
	From string            `json:"from"`
	Cmd  *recorder.Command `json:"cmd"`
}

// Broadcast sends cmd to every other instance (recorder.Remote). The
// database carries it, so an instance that is not reachable over HTTP gets
// it all the same; one that is not connected at that moment does not, and
// finds the stored blackouts when it (re)connects.
func (n *Node) Broadcast(ctx context.Context, cmd *recorder.Command) error {
	b, err := json.Marshal(notice{From: n.opts.RecorderID, Cmd: cmd})
	if err != nil {
		return err
	}
	if len(b) > 7900 {
		return fmt.Errorf("cluster: broadcast %s: %d bytes is over the notification limit", cmd.Op, len(b))
	}
	return n.opts.Store.Notify(ctx, channel, string(b))
}

// Listen runs the commands other instances broadcast on m, from one
// goroutine, in the order they were sent, until Close; it returns once the
// first LISTEN is in force (or after 10 s). A dropped connection is
// re-established after a second.
func (n *Node) Listen(m *recorder.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once bool
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		<-n.stop
		cancel()
	}()
	go func() {
		defer n.wg.Done()
		for ctx.Err() == nil {
			err := n.opts.Store.Listen(ctx, channel, func() {
				if !once {
					once = true
					close(ready)
				}
			}, func(payload string) { n.handle(ctx, m, payload) })
			if ctx.Err() != nil {
				return
			}
			n.opts.Logger.Warn("cluster: listening for fleet commands failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		n.opts.Logger.Warn("cluster: not yet listening for fleet commands")
	}
}

func (n *Node) handle(ctx context.Context, m *recorder.Manager, payload string) {
	var nt notice
	if err := json.Unmarshal([]byte(payload), &nt); err != nil || nt.Cmd == nil {
		n.opts.Logger.Warn("cluster: a fleet command is not valid", "err", err)
		return
	}
	if nt.From == n.opts.RecorderID {
		return
	}
	if _, err := m.Run(ctx, nt.Cmd); err != nil {
		var e *recorder.Error
		if errors.As(err, &e) && e.Kind == recorder.KindNotFound {
			return // a stop for a blackout this instance never had
		}
		n.opts.Logger.Warn("cluster: a fleet command failed", "op", nt.Cmd.Op, "from", nt.From, "err", err)
	}
}
