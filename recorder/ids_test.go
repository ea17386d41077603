package recorder

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"conv1", true},
		{"a.b_c-d", true},
		{"6e6d5224-1919-48fa-a982-66cef9fa4c08", true},
		{strings.Repeat("a", MaxIDLength), true},
		{"", false},
		{strings.Repeat("a", MaxIDLength+1), false},
		{"..", false},
		{".", false},
		{"../etc", false},
		{"a/b", false},
		{"a\\b", false},
		{"-rf", false},
		{".hidden", false},
		{"a b", false},
		{"a%2Fb", false},
		{"a\x00b", false},
		{"é", false},
	}
	for _, tt := range tests {
		err := ValidateID("conversationId", tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && KindOf(err) != KindInvalid {
			t.Errorf("ValidateID(%q): kind %v, want Invalid", tt.id, KindOf(err))
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"conv1", "../x", "a/b", "..", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID("id", id) != nil {
			return
		}
		if strings.ContainsAny(id, "/\\%?#\x00 ") || id == "." || id == ".." || strings.HasPrefix(id, ".") || len(id) > MaxIDLength {
			t.Fatalf("ValidateID accepted %q", id)
		}
	})
}
