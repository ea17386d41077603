package pause

import "testing"

func TestParseBehavior(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Behavior
		ok   bool
	}{{"", Silence, true}, {"silence", Silence, true}, {"SKIP", Skip, true}, {"drop", Silence, false}} {
		got, err := ParseBehavior(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseBehavior(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && tt.in != "" {
			if back, _ := ParseBehavior(got.String()); back != got {
				t.Errorf("String round trip of %v", got)
			}
		}
	}
}
