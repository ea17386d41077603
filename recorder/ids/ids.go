// Package ids holds the rules for caller-given ids and fields that may reach
// a file name, an object key, a log line or a URL: recording ids, user ids
// and agent fields. It is a leaf: the engine (recorder, which wraps a
// violation into its KindInvalid error) and the configuration (config)
// both check with it.
package ids

import (
	"fmt"
	"strings"
)

// MaxLength bounds every caller-given id that can reach a file name or an
// object key.
const MaxLength = 128

// MaxAgentPhone bounds an agent's phone number and other text fields.
const MaxAgentPhone = 64

// Error is an id or field that breaks its rule. Reason is a machine word
// ("missing_field", "invalid_id", "invalid_field"); Message says what is
// wrong.
type Error struct {
	Reason  string
	Message string
}

// Error returns "recorder: message", as the engine's errors read.
func (e *Error) Error() string { return "recorder: " + e.Message }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Validate checks a caller-given id (conversationId, conferenceId,
// applicationId, recorderId, instanceId, …) before it is used anywhere: 1 to
// MaxLength bytes of ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit. So no id can hold a path separator, be "." or "..", start
// like a flag, or carry characters that need escaping in a URL or object key.
// name is the field's name in the message.
func Validate(name, id string) error {
	if id == "" {
		return errorf("missing_field", "%s is required", name)
	}
	if len(id) > MaxLength {
		return errorf("invalid_id", "%s is %d bytes, more than %d", name, len(id), MaxLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return errorf("invalid_id", "%s %s: character %d is not allowed (letters, digits, and . _ - after the first)", name, Quote(id), i)
		}
	}
	return nil
}

// ValidateUser checks a participant id: it is shown in the API and the
// manifest but never used in a file name, so it may hold any printable
// character (e-mail addresses, display names), up to 256 bytes.
func ValidateUser(id string) error {
	if len(id) > 256 {
		return errorf("invalid_id", "userId is %d bytes, more than 256", len(id))
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return errorf("invalid_id", "userId holds a control or invalid character")
		}
	}
	return nil
}

// ValidateAgent checks a seed-003 agent's fields: a positive id, a phone
// (ValidatePhone), a user id and an application id when given, and its other
// text fields up to 256 printable characters.
func ValidateAgent(id int64, phone, user, app string, text ...string) error {
	if id <= 0 {
		return errorf("invalid_field", "AgentId must be a positive integer")
	}
	if err := ValidatePhone(phone); err != nil {
		return err
	}
	if user != "" {
		if err := ValidateUser(user); err != nil {
			return err
		}
	}
	if app != "" {
		if err := Validate("applicationId", app); err != nil {
			return err
		}
	}
	for _, t := range text {
		if len(t) > 256 || strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errorf("invalid_field", "agent text fields are up to 256 printable characters")
		}
	}
	return nil
}

// ValidatePhone checks an agent phone: empty, or up to MaxAgentPhone of
// digits, letters and + - . * # ( ) and spaces.
func ValidatePhone(p string) error {
	if len(p) > MaxAgentPhone || strings.ContainsFunc(p, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("+-.*#() ", r))
	}) {
		return errorf("invalid_field", "AgentPhone is up to %d digits, letters and + - . * # ( ) or spaces", MaxAgentPhone)
	}
	return nil
}

// Quote quotes an id for an error message, shortening it.
func Quote(id string) string {
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	return fmt.Sprintf("%q", id)
}
