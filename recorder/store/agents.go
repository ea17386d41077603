package store

import (
	"context"
	"fmt"
)

// Agent is a seed-003 agent as stored: its organization, its integer id and
// the rest of it as JSON owned by package recorder. The agent tracker
// persists here so that GET /api/Agent/GetAll outlives a restart. The table
// is migration 4 (migrate.go); all the queries of agents are in this file.
type Agent struct {
	OrganizationID string
	AgentID        int64
	Data           []byte // JSON, owned by package recorder
}

// PutAgent inserts or replaces the agent (a.OrganizationID, a.AgentID).
func (s *Store) PutAgent(ctx context.Context, a *Agent) error {
	_, err := s.exec(ctx, `INSERT INTO agents (organization_id, agent_id, data) VALUES (?, ?, ?)
		ON CONFLICT (organization_id, agent_id) DO UPDATE SET data = excluded.data`, a.OrganizationID, a.AgentID, a.Data)
	if err != nil {
		return fmt.Errorf("store: put agent %d: %w", a.AgentID, err)
	}
	return nil
}

// DeleteAgent removes an agent; a missing one is no error.
func (s *Store) DeleteAgent(ctx context.Context, organizationID string, agentID int64) error {
	if _, err := s.exec(ctx, `DELETE FROM agents WHERE organization_id = ? AND agent_id = ?`, organizationID, agentID); err != nil {
		return fmt.Errorf("store: delete agent %d: %w", agentID, err)
	}
	return nil
}

// Agents returns every stored agent, by organization and id.
func (s *Store) Agents(ctx context.Context) ([]*Agent, error) {
	rows, err := s.query(ctx, `SELECT organization_id, agent_id, data FROM agents ORDER BY organization_id, agent_id`)
	if err != nil {
		return nil, fmt.Errorf("store: agents: %w", err)
	}
	defer rows.Close()
	var out []*Agent
	for rows.Next() {
		var a Agent
		if err := rows.Scan(&a.OrganizationID, &a.AgentID, &a.Data); err != nil {
			return nil, fmt.Errorf("store: agents: %w", err)
		}
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: agents: %w", err)
	}
	return out, nil
}
