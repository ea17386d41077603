package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/events"
	"github.com/rtcrec/recorder/recorder/store"
)

// newEvents opens the event outbox in the recorder's store (shared by a fleet), with the
// webhooks of every application from the configuration. A webhook without
// an http(s) URL or without a secret is a configuration error.
func newEvents(ctx context.Context, st *store.Store, cfg *config.Config, owner string, log *slog.Logger) (*events.Bus, error) {
	for id, a := range cfg.Applications {
		if a == nil {
			continue
		}
		for i, h := range a.Webhooks {
			u, err := url.Parse(h.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("api: config: applications.%s.webhooks[%d].url %q is not an http(s) URL", id, i, h.URL)
			}
			if h.Secret == "" {
				return nil, fmt.Errorf("api: config: applications.%s.webhooks[%d] needs a secret to sign with", id, i)
			}
		}
	}
	return events.New(ctx, st, events.Options{
		Owner: owner,
		WebhooksFor: func(organizationID, applicationID string) []events.Webhook {
			a := cfg.Applications[applicationID]
			if a == nil || (a.OrganizationID != "" && a.OrganizationID != organizationID) {
				return nil // another organization's application: its webhooks never see this event
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
