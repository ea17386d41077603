package config

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/rtcrec/recorder/recorder/ids"
)

// Organization is the configuration of one organization (Config.Organizations)
// for the seeds that name tenants and people: seed 001's customer_id and seed
// 003's agents.
type Organization struct {
	// CustomerID is the organization's seed-001 customer_id (a UUID);
	// default: CustomerID(organizationId), a name-based UUID.
	CustomerID string `yaml:"customerId"`
	// Agents are the organization's seed-003 agents known before any of
	// them publishes.
	Agents []AgentConfig `yaml:"agents"`
}

// AgentConfig declares one seed-003 agent in the configuration.
type AgentConfig struct {
	AgentID        int64  `yaml:"agentId"`
	AgentPhone     string `yaml:"agentPhone"`
	UserID         string `yaml:"userId"` // the participant id it publishes under; default: "agent-{agentId}"
	BusinessUnit   int64  `yaml:"businessUnit"`
	SystemUsername string `yaml:"systemUsername"`
	CrmUsername    string `yaml:"crmUsername"`
	Username       string `yaml:"username"`
	DeviceID       string `yaml:"deviceId"`
	DeviceAlias    string `yaml:"deviceAlias"`
	ApplicationID  string `yaml:"applicationId"` // the application its recordings use; default: see the API
}

// customerNamespace is the namespace of the name-based customer and owner UUIDs.
var customerNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/rtcrec/recorder/organization"))

// CustomerID returns seed 001's customer_id of organizationID: the configured
// one, or a name-based (SHA-1, RFC 9562 version 5) UUID of the organization
// id, stable across restarts and recorders.
func (c *Config) CustomerID(organizationID string) string {
	if o := c.Organizations[organizationID]; o != nil && o.CustomerID != "" {
		return o.CustomerID
	}
	return uuid.NewSHA1(customerNamespace, []byte(organizationID)).String()
}

// NameUUID returns a name-based UUID of name within organizationID (seed
// 001's owner_id of an agent that has no UUID of its own).
func NameUUID(organizationID, name string) string {
	return uuid.NewSHA1(uuid.NewSHA1(customerNamespace, []byte(organizationID)), []byte(name)).String()
}

func (c *Config) validateOrganizations() error {
	for org, o := range c.Organizations {
		if err := ids.Validate("organizationId", org); err != nil {
			return fmt.Errorf("recorder: config: organizations: %w", err)
		}
		if o == nil {
			continue
		}
		if o.CustomerID != "" {
			if _, err := uuid.Parse(o.CustomerID); err != nil {
				return fmt.Errorf("recorder: config: organizations.%s.customerId %q is not a UUID", org, o.CustomerID)
			}
		}
		ids, phones := map[int64]bool{}, map[string]bool{}
		for i, a := range o.Agents {
			if err := a.Validate(); err != nil {
				return fmt.Errorf("recorder: config: organizations.%s.agents[%d]: %w", org, i, err)
			}
			if ids[a.AgentID] || a.AgentPhone != "" && phones[a.AgentPhone] {
				return fmt.Errorf("recorder: config: organizations.%s.agents[%d]: agentId %d or agentPhone %q declared twice", org, i, a.AgentID, a.AgentPhone)
			}
			ids[a.AgentID], phones[a.AgentPhone] = true, true
		}
	}
	return nil
}

// Validate checks the agent's fields by the rules of ids.ValidateAgent.
func (a *AgentConfig) Validate() error {
	return ids.ValidateAgent(a.AgentID, a.AgentPhone, a.UserID, a.ApplicationID,
		a.SystemUsername, a.CrmUsername, a.Username, a.DeviceID, a.DeviceAlias)
}
