package ids

import (
	"errors"
	"strings"
	"testing"
)

// TestRules_ReasonsAndMessages: each rule's violation carries its reason and
// a message that names the field, and reads "recorder: …" like the engine's
// errors (the configuration's messages quote it).
func TestRules_ReasonsAndMessages(t *testing.T) {
	for _, tc := range []struct {
		err          error
		reason, text string
	}{
		{Validate("conversationId", ""), "missing_field", "recorder: conversationId is required"},
		{Validate("conversationId", "../x"), "invalid_id", `recorder: conversationId "../x": character 0 is not allowed`},
		{Validate("recorderId", strings.Repeat("a", MaxLength+1)), "invalid_id", "recorder: recorderId is 129 bytes"},
		{ValidateUser("a\x00b"), "invalid_id", "recorder: userId holds a control"},
		{ValidateAgent(0, "", "", ""), "invalid_field", "recorder: AgentId must be a positive integer"},
		{ValidateAgent(1, "12/34", "", ""), "invalid_field", "recorder: AgentPhone is up to 64"},
		{ValidateAgent(1, "", "", "a/b"), "invalid_id", "recorder: applicationId"},
		{ValidateAgent(1, "", "", "", "x\ny"), "invalid_field", "recorder: agent text fields"},
	} {
		var e *Error
		if !errors.As(tc.err, &e) || e.Reason != tc.reason || !strings.HasPrefix(tc.err.Error(), tc.text) {
			t.Errorf("%v: want reason %s and a message starting %q", tc.err, tc.reason, tc.text)
		}
	}
	for _, err := range []error{Validate("id", "a.b-c_d"), ValidateUser("Ann <ann@example.com>"), ValidateAgent(7, "+30 (210) 555-1234", "u", "app1", "name")} {
		if err != nil {
			t.Errorf("valid input refused: %v", err)
		}
	}
}
