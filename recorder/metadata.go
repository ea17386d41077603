package recorder

import "context"

// Metadata bounds (seed 003's CallMetadata is a string map).
const (
	MaxMetadataEntries = 64
	MaxMetadataKey     = 128
	MaxMetadataValue   = 4096
)

// validMetadata checks the bounds of a metadata map.
func validMetadata(md map[string]string) error {
	if len(md) > MaxMetadataEntries {
		return errorf(KindInvalid, "invalid_field", "metadata: at most %d entries", MaxMetadataEntries)
	}
	for k, v := range md {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			return errorf(KindInvalid, "invalid_field", "metadata: keys of 1 to %d bytes and values up to %d bytes", MaxMetadataKey, MaxMetadataValue)
		}
	}
	return nil
}

// UpdateMetadata merges md into the metadata of an ACTIVE recording (seed
// 003's UpdateForAgent): keys in md replace existing ones, an empty value
// removes a key. The merged map is bounded like a start request's; it goes
// into manifest.json and the metadata of every uploaded object. A recording
// that is not ACTIVE is a conflict.
func (m *Manager) UpdateMetadata(ctx context.Context, organizationID, conversationID, recorderID, instanceID string, md map[string]string) (*Recording, error) {
	if err := validMetadata(md); err != nil {
		return nil, err
	}
	if r, ok, err := m.forward(ctx, &Command{Op: OpMetadata, OrganizationID: organizationID, ConversationID: conversationID,
		RecorderID: recorderID, InstanceID: instanceID, Metadata: md}); ok {
		return r, err
	}
	if _, err := m.Get(ctx, organizationID, conversationID, recorderID, instanceID); err != nil {
		return nil, err
	}
	s := m.session(instanceID)
	if s == nil {
		return nil, errorf(KindConflict, "not_active", "recording %s is not active", instanceID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.rec.State != StateActive {
		return nil, errorf(KindConflict, "not_active", "recording %s is not active", instanceID)
	}
	merged := map[string]string{}
	for k, v := range s.rec.Metadata {
		merged[k] = v
	}
	for k, v := range md {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	if err := validMetadata(merged); err != nil {
		return nil, err
	}
	if err := s.commitLocked(ctx, func(r *Recording) { r.Metadata = merged }); err != nil {
		return nil, err
	}
	return s.rec.clone(), nil
}
