package api

import (
	"strings"
	"testing"
	"time"
)

func TestPublishTokens_RoundTrip(t *testing.T) {
	p := NewPublishTokens("secret", time.Hour)
	now := time.Unix(1_800_000_000, 0)
	p.now = func() time.Time { return now }
	tok, c, err := p.Mint(PublishClaims{OrganizationID: "o", ConferenceID: "c", UserID: "alice@example.com", StreamTypes: []string{"mic"}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c.StreamTypes[0] != "MIC" || c.Expires != now.Add(time.Minute).Unix() {
		t.Errorf("claims %+v", c)
	}
	if _, err := p.Check(tok); err != nil {
		t.Errorf("fresh token: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := p.Check(tok); err != ErrInvalidToken {
		t.Errorf("at expiry: %v, want ErrInvalidToken", err)
	}
	now = now.Add(-time.Minute)
	// Every single-character change of the token is refused.
	for i := range len(tok) {
		for _, c := range []byte{'A', 'x', '.', '_'} {
			if tok[i] == c {
				continue
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			if _, err := p.Check(bad); err == nil {
				t.Fatalf("altered at %d (%q): accepted", i, bad)
			}
		}
	}
	// alg none and other headers are refused even with a matching body.
	parts := strings.Split(tok, ".")
	for _, h := range []string{"eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9"} {
		if _, err := p.Check(h + "." + parts[1] + "." + parts[2]); err == nil {
			t.Errorf("header %s accepted", h)
		}
	}
	for _, c := range []PublishClaims{
		{ConferenceID: "c", UserID: "u", StreamTypes: []string{"MIC"}},
		{OrganizationID: "o", UserID: "u", StreamTypes: []string{"MIC"}},
		{OrganizationID: "o", ConferenceID: "c", StreamTypes: []string{"MIC"}},
		{OrganizationID: "o", ConferenceID: "c", UserID: "u"},
		{OrganizationID: "o", ConferenceID: "c", UserID: "u", StreamTypes: []string{"UNKNOWN"}},
		{OrganizationID: "o", ConferenceID: "../c", UserID: "u", StreamTypes: []string{"MIC"}},
	} {
		if _, _, err := p.Mint(c, time.Minute); err == nil {
			t.Errorf("minted %+v", c)
		}
	}
	if _, _, err := p.Mint(PublishClaims{OrganizationID: "o", ConferenceID: "c", UserID: "u", StreamTypes: []string{"MIC"}}, 2*time.Hour); err == nil {
		t.Error("minted past the longest validity")
	}
}

func FuzzPublishTokens_Check(f *testing.F) {
	p := NewPublishTokens("secret", time.Hour)
	tok, _, _ := p.Mint(PublishClaims{OrganizationID: "o", ConferenceID: "c", UserID: "u", StreamTypes: []string{"MIC"}}, time.Minute)
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add(jwtHeader + ".e30.")
	f.Fuzz(func(t *testing.T, s string) {
		// Only a token this key signed checks: the fuzzer cannot forge one
		// (each fuzzing process mints its own seed token).
		c, err := p.Check(s)
		if err == nil && (c.OrganizationID != "o" || c.ConferenceID != "c" || c.UserID != "u") {
			t.Fatalf("accepted %q: %+v", s, c)
		}
	})
}
