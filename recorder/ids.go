package recorder

import "fmt"

// MaxIDLength bounds every caller-given id that can reach a file name or an
// object key.
const MaxIDLength = 128

// ValidateID checks a caller-given id (conversationId, conferenceId,
// applicationId, recorderId, instanceId, …) before it is used anywhere: 1 to
// MaxIDLength bytes of ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit. So no id can hold a path separator, be "." or "..", start
// like a flag, or carry characters that need escaping in a URL or object key.
func ValidateID(name, id string) error {
	if id == "" {
		return errorf(KindInvalid, "missing_field", "%s is required", name)
	}
	if len(id) > MaxIDLength {
		return errorf(KindInvalid, "invalid_id", "%s is %d bytes, more than %d", name, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return errorf(KindInvalid, "invalid_id", "%s %s: character %d is not allowed (letters, digits, and . _ - after the first)", name, quoteID(id), i)
		}
	}
	return nil
}

// ValidateUserID checks a participant id: it is shown in the API and the
// manifest but never used in a file name, so it may hold any printable
// character (e-mail addresses, display names), up to 256 bytes.
func ValidateUserID(id string) error {
	if len(id) > 256 {
		return errorf(KindInvalid, "invalid_id", "userId is %d bytes, more than 256", len(id))
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return errorf(KindInvalid, "invalid_id", "userId holds a control or invalid character")
		}
	}
	return nil
}

// quoteID quotes an id for an error message, shortening it.
func quoteID(id string) string {
	if len(id) > 40 {
		id = id[:40] + "…"
	}
	return fmt.Sprintf("%q", id)
}
