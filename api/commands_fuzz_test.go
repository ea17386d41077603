package api

import (
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/recorder"
)

func TestTargetConversation(t *testing.T) {
	tests := []struct {
		target, conv string
		ok           bool
	}{
		{"sess.chan.conv1", "conv1", true},
		{"sess.group.chan.conv-2", "conv-2", true},
		{"a.b", "", false},
		{"a.b.c.d.e", "", false},
		{"a..c", "", false},
		{".b.c", "", false},
		{"a.b.", "", false},
		{"a.b.-c", "", false},
		{"a.b.c/d", "", false},
		{"a.b. c", "", false},
		{"", "", false},
		{"a.b." + strings.Repeat("x", recorder.MaxIDLength+1), "", false},
	}
	for _, tt := range tests {
		conv, ok := targetConversation(tt.target)
		if ok != tt.ok || (ok && conv != tt.conv) {
			t.Errorf("targetConversation(%q) = %q, %v; want %q, %v", tt.target, conv, ok, tt.conv, tt.ok)
		}
	}
}

// FuzzTargetConversation: whatever the target, an accepted conversationId is
// a valid id and the last segment.
func FuzzTargetConversation(f *testing.F) {
	for _, s := range []string{"a.b.c", "a.b.c.d", "a..c", "x.y.../..", "s.c.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		conv, ok := targetConversation(target)
		if !ok {
			return
		}
		if recorder.ValidateID("conversationId", conv) != nil || !strings.HasSuffix(target, "."+conv) {
			t.Fatalf("accepted %q from %q", conv, target)
		}
	})
}

// FuzzBlackoutTimes: the time rules never panic, and an accepted start and
// stop are ordered.
func FuzzBlackoutTimes(f *testing.F) {
	f.Add("2030-01-01T10:00:00Z", "2030-01-01T11:00:00+02:00", int64(5), true)
	f.Add("", "", int64(-1), false)
	f.Add("2030-01-01T10:00:00.1234567+01:00", "", int64(0), false)
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, start, stop string, offset int64, stopping bool) {
		b := BlackoutCommand{StartTime: start, StopTime: stop}
		if offset >= 0 {
			b.TimeOffset = &offset
		}
		s, e, err := b.times(received, stopping)
		if err != nil {
			return
		}
		if !s.IsZero() && !e.IsZero() && !e.After(s) {
			t.Fatalf("accepted start %v after stop %v", s, e)
		}
		// A start without a time or an offset is left to the Manager (its
		// now); every other command has its time.
		if stopping && e.IsZero() || !stopping && s.IsZero() && (start != "" || offset >= 0 && stop == "") {
			t.Fatalf("no time for the command (stopping=%v): %v %v", stopping, s, e)
		}
		if !stopping && start == "" && offset < 0 && !s.IsZero() {
			t.Fatalf("a start without a time or an offset got %v, want the Manager's now", s)
		}
	})
}
