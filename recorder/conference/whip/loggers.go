package whip

import (
	"sync"

	"github.com/pion/logging"
)

// sharedLoggers is the Pion logger factory of a setting engine: one logger per
// scope ("ice", "dtls", "pc", …) for every PeerConnection, where Pion's
// default factory makes a new one (five log.Loggers and their prefixes) for
// each scope of each connection: about 3 KB per connection that lives as
// long as it does, and more garbage at every connect. Pion's loggers are
// safe for concurrent use; the levels come from the PION_LOG_* environment
// variables, as with Pion's default.
type sharedLoggers struct {
	mu      sync.Mutex
	factory logging.LoggerFactory
	scopes  map[string]logging.LeveledLogger
}

func newSharedLoggers() *sharedLoggers {
	return &sharedLoggers{factory: logging.NewDefaultLoggerFactory(), scopes: map[string]logging.LeveledLogger{}}
}

// NewLogger returns the scope's logger, made at its first use.
func (s *sharedLoggers) NewLogger(scope string) logging.LeveledLogger {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.scopes[scope]
	if !ok {
		l = s.factory.NewLogger(scope)
		s.scopes[scope] = l
	}
	return l
}
