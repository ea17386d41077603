package api

import (
	"context"
	"log/slog"

	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/recorder/store"
)

// newEvents opens the event outbox in the recorder's database, with the
// webhooks of every application from the configuration.
func newEvents(ctx context.Context, st *store.Store, cfg *recorder.Config, log *slog.Logger) (*events.Bus, error) {
	return events.New(ctx, st.DB(), events.Options{
		WebhooksFor: func(applicationID string) []events.Webhook {
			a := cfg.Applications[applicationID]
			if a == nil {
				return nil
			}
			hooks := make([]events.Webhook, 0, len(a.Webhooks))
			for _, h := range a.Webhooks {
				hooks = append(hooks, events.Webhook{URL: h.URL, Secret: h.Secret, Events: h.Events})
			}
			return hooks
		},
		Logger: log,
	})
}
