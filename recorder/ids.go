package recorder

import (
	"errors"

	"github.com/rtcrec/recorder/recorder/ids"
)

// MaxIDLength bounds every caller-given id that can reach a file name or an
// object key (ids.MaxLength).
const MaxIDLength = ids.MaxLength

// ValidateID checks a caller-given id (conversationId, conferenceId,
// applicationId, recorderId, instanceId, …) before it is used anywhere, by
// the rule of ids.Validate; a violation is a KindInvalid *Error.
func ValidateID(name, id string) error { return invalid(ids.Validate(name, id)) }

// ValidateUserID checks a participant id by the rule of ids.ValidateUser; a
// violation is a KindInvalid *Error.
func ValidateUserID(id string) error { return invalid(ids.ValidateUser(id)) }

// invalid turns the violation of an ids rule into a KindInvalid *Error with
// the same reason and message.
func invalid(err error) error {
	var e *ids.Error
	if errors.As(err, &e) {
		return &Error{Kind: KindInvalid, Reason: e.Reason, Message: e.Message}
	}
	return err
}

// quoteID quotes an id for an error message, shortening it.
func quoteID(id string) string { return ids.Quote(id) }
