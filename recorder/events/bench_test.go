package events

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkPublish measures one persisted event (an SQLite transaction in WAL
// mode, in the store's outbox) fanned out to n live subscribers of its organization.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{0, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			bus, _ := newBus(b, Options{SubscriberBuffer: 1 << 20})
			for range n {
				s, err := bus.subscribe(context.Background(), "org1")
				if err != nil {
					b.Fatal(err)
				}
				go func() { // a reader that keeps up
					for {
						select {
						case <-s.ch:
						case <-s.gone:
							return
						}
					}
				}()
			}
			e := ev(StateUpdated, "org1", "app1", `{"state":"ACTIVE","conversationId":"c1","instanceId":"5f0c6a4e-3c1b-4c57-9a55-0c8ab39f6f11"}`)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bus.Publish(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
