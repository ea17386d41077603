package api

import (
	"net/http"
	"slices"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
)

// What an API key may know about itself (GET /api/keys/self) and the
// applications it may see (GET /api/applications): the console shows only
// the buttons a key's scopes allow and offers applications from a list.
// Neither route ever carries the key or a storage credential.

// KeyInfo describes the caller's API key: its organization, its scopes (all
// four for a key configured without scopes) and the applications it may
// use ("*": every application of its organization).
type KeyInfo struct {
	OrganizationID string   `json:"organizationId"`
	Scopes         []string `json:"scopes"`
	Applications   []string `json:"applications"`
}

// ApplicationInfo is one application a key may use, with its conference
// adapter and storage profile; no credential.
type ApplicationInfo struct {
	ApplicationID string              `json:"applicationId"`
	Conference    string              `json:"conference"`
	Storage       ApplicationStorage  `json:"storage"`
	BackupStorage *ApplicationStorage `json:"backupStorage,omitempty"`
}

// ApplicationStorage names a storage profile: the provider and where in it
// (bucket or container, SFTP host, LOCAL directory) and the key prefix.
type ApplicationStorage struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	Prefix   string `json:"prefix,omitempty"`
}

// ApplicationList is the reply of GET /api/applications. AnyApplication is
// true for a key that may use any applicationId of its organization
// ("*"): applications that are not configured run on the defaults (WHIP,
// LOCAL storage) and are not listed.
type ApplicationList struct {
	Applications   []ApplicationInfo `json:"applications"`
	AnyApplication bool              `json:"anyApplication"`
}

var allScopes = []string{config.ScopeAdmin, config.ScopeControl, config.ScopeRead, config.ScopePublish}

func (s *Server) keySelf(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	info := KeyInfo{OrganizationID: k.OrganizationID, Scopes: []string{}, Applications: []string{}}
	for _, sc := range allScopes {
		if k.HasScope(sc) {
			info.Scopes = append(info.Scopes, sc)
		}
	}
	info.Applications = append(info.Applications, k.Applications...)
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) applications(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	cfg := s.m.Config()
	out := ApplicationList{Applications: []ApplicationInfo{}, AnyApplication: slices.Contains(k.Applications, "*")}
	var ids []string
	for id := range cfg.Applications {
		ids = append(ids, id)
	}
	for _, id := range k.Applications {
		if id != "*" && cfg.Applications[id] == nil && recorder.ValidateID("applicationId", id) == nil {
			ids = append(ids, id) // named by the key, on the defaults
		}
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if !cfg.Allows(k, id) {
			continue
		}
		a := cfg.Application(id)
		ai := ApplicationInfo{ApplicationID: id, Conference: a.Conference.Kind, Storage: storageName(cfg.Profile(id))}
		if ai.Conference == "" {
			ai.Conference = "whip"
		}
		if a.BackupStorage != nil {
			b := storageName(a.BackupStorage)
			ai.BackupStorage = &b
		}
		out.Applications = append(out.Applications, ai)
	}
	writeJSON(w, http.StatusOK, out)
}

// storageName names a profile without its credentials.
func storageName(p *config.StorageProfile) ApplicationStorage {
	name := p.Bucket
	switch p.Provider {
	case config.ProviderAzure:
		name = p.Container
	case config.ProviderSFTP:
		name = p.Host + ":" + p.Dir
	case config.ProviderLocal:
		name = p.Dir
	}
	return ApplicationStorage{Provider: p.Provider, Name: name, Prefix: p.Prefix}
}
