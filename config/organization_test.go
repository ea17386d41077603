package config

import "testing"

func TestConfig_Organizations(t *testing.T) {
	cfg := Default()
	if a, b := cfg.CustomerID("org1"), cfg.CustomerID("org1"); a != b || len(a) != 36 || a == cfg.CustomerID("org2") {
		t.Errorf("customer ids %s %s, want one stable UUID per organization", a, b)
	}
	cfg.Organizations = map[string]*Organization{"org1": {CustomerID: "7edf1e1e-0109-4d92-9bad-ab43059a28e3"}}
	if got := cfg.CustomerID("org1"); got != "7edf1e1e-0109-4d92-9bad-ab43059a28e3" {
		t.Errorf("configured customer id: %s", got)
	}
	for _, o := range []*Organization{
		{CustomerID: "not-a-uuid"},
		{Agents: []AgentConfig{{AgentID: 1}, {AgentID: 1}}},
		{Agents: []AgentConfig{{AgentID: 1, AgentPhone: "1"}, {AgentID: 2, AgentPhone: "1"}}},
		{Agents: []AgentConfig{{AgentID: -1}}},
	} {
		cfg.Organizations = map[string]*Organization{"org1": o}
		if err := cfg.validateOrganizations(); err == nil {
			t.Errorf("organization %+v accepted", o)
		}
	}
}
