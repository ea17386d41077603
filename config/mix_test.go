package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMixSettings_LatencyJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`{"sampleRate":8000}`, 0, ""},
		{`{"latency":"5s"}`, 5 * time.Second, ""},
		{`{"latency":"2.5"}`, 2500 * time.Millisecond, ""},
		{`{"latency":1500000000}`, 1500 * time.Millisecond, ""},
		{`{"latency":null}`, 0, ""},
		{`{"latency":"soon"}`, 0, `"soon" is not a duration`},
		{`{"latency":true}`, 0, "want a duration"},
	}
	for _, tt := range tests {
		var m MixSettings
		err := json.Unmarshal([]byte(tt.in), &m)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || m.Latency != tt.want {
			t.Errorf("%s: %v, %v; want %v", tt.in, m.Latency, err, tt.want)
		}
	}
	// A stored recording reads back what it wrote.
	b, _ := json.Marshal(MixSettings{SampleRate: 16000, Channels: 2, Latency: 3 * time.Second})
	var back MixSettings
	if err := json.Unmarshal(b, &back); err != nil || back != (MixSettings{SampleRate: 16000, Channels: 2, Latency: 3 * time.Second}) {
		t.Errorf("round trip %s: %+v, %v", b, back, err)
	}
	for _, bad := range []MixSettings{{SampleRate: 8000, Channels: 1, Latency: 50 * time.Millisecond}, {SampleRate: 8000, Channels: 1, Latency: 2 * time.Minute}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("latency %v accepted", bad.Latency)
		}
	}
}

func FuzzMixSettingsJSON(f *testing.F) {
	f.Add(`{"sampleRate":8000,"channels":1,"latency":"5s"}`)
	f.Add(`{"latency":12}`)
	f.Add(`{"latency":"1e300"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var m MixSettings
		if json.Unmarshal([]byte(in), &m) != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back MixSettings
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Fatalf("%s → %s → %+v, %v; want %+v", in, b, back, err, m)
		}
	})
}
