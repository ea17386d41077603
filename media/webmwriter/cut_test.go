package webmwriter

import "testing"

// TestCut: a WebM part ends where the flushed bytes end.
func TestCut(t *testing.T) {
	if got := Cut(make([]byte, 9)); got != 9 {
		t.Errorf("Cut = %d, want 9", got)
	}
}
