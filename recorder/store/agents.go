package store

import (
	"context"
	"fmt"
)

// Agent is a seed-003 agent as stored: its organization, its integer id and
// the rest of it as JSON owned by package recorder. The agent tracker
// persists here so that GET /api/Agent/GetAll outlives a restart. All the
// SQL of agents is in this file.
type Agent struct {
	OrganizationID string
	AgentID        int64
	Data           []byte // JSON, owned by package recorder
}

// agentSchema uses types SQLite and PostgreSQL both accept but for the JSON
// column (BLOB; BYTEA on PostgreSQL).
const agentSchema = `CREATE TABLE IF NOT EXISTS agents (
	organization_id TEXT NOT NULL,
	agent_id        BIGINT NOT NULL,
	data            BLOB NOT NULL,
	PRIMARY KEY (organization_id, agent_id)
)`

// ensureAgents creates the agents table on first use (a no-op once it exists).
func (s *Store) ensureAgents(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, agentSchema); err != nil {
		return fmt.Errorf("store: create agents: %w", err)
	}
	return nil
}

// PutAgent inserts or replaces the agent (a.OrganizationID, a.AgentID).
func (s *Store) PutAgent(ctx context.Context, a *Agent) error {
	if err := s.ensureAgents(ctx); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO agents (organization_id, agent_id, data) VALUES (?, ?, ?)
		ON CONFLICT (organization_id, agent_id) DO UPDATE SET data = excluded.data`, a.OrganizationID, a.AgentID, a.Data)
	if err != nil {
		return fmt.Errorf("store: put agent %d: %w", a.AgentID, err)
	}
	return nil
}

// DeleteAgent removes an agent; a missing one is no error.
func (s *Store) DeleteAgent(ctx context.Context, organizationID string, agentID int64) error {
	if err := s.ensureAgents(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM agents WHERE organization_id = ? AND agent_id = ?`, organizationID, agentID); err != nil {
		return fmt.Errorf("store: delete agent %d: %w", agentID, err)
	}
	return nil
}

// Agents returns every stored agent, by organization and id.
func (s *Store) Agents(ctx context.Context) ([]*Agent, error) {
	if err := s.ensureAgents(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT organization_id, agent_id, data FROM agents ORDER BY organization_id, agent_id`)
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
