package whep

import (
	"reflect"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestParseLinkICEServers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   []webrtc.ICEServer
	}{
		{"none", nil, nil},
		{"stun", []string{`<stun:stun.example.net>; rel="ice-server"`},
			[]webrtc.ICEServer{{URLs: []string{"stun:stun.example.net"}}}},
		{"turn with credentials", []string{
			`<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="p;a,s\"s"; credential-type="password"`},
			[]webrtc.ICEServer{{URLs: []string{"turn:turn.example.net?transport=udp"}, Username: "user", Credential: `p;a,s"s`}}},
		{"two in one value", []string{`<stun:a.example>; rel=ice-server, <turns:b.example:5349?transport=tcp>; rel="ice-server"; username=u; credential=c`},
			[]webrtc.ICEServer{{URLs: []string{"stun:a.example"}}, {URLs: []string{"turns:b.example:5349?transport=tcp"}, Username: "u", Credential: "c"}}},
		{"two values, other rels skipped", []string{`</x>; rel="next"`, `<stun:c.example>; REL="preload ice-server"`},
			[]webrtc.ICEServer{{URLs: []string{"stun:c.example"}}}},
		{"not a STUN or TURN URI", []string{`<https://evil.example>; rel="ice-server"`}, nil},
		{"malformed", []string{`stun:x; rel=ice-server`, `<stun:y; rel=ice-server`, `<stun:z>; rel="ice-server`, `<stun:w> rel=ice-server`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseLinkICEServers(tc.values); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseLinkICEServers(%q)\n got %+v\nwant %+v", tc.values, got, tc.want)
			}
		})
	}
}

func FuzzParseLinkICEServers(f *testing.F) {
	f.Add(`<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="pass"`)
	f.Add(`<stun:a>; rel=ice-server, <stun:b>; rel="ice-server"`)
	f.Add(`<`)
	f.Add(`<x>;"`)
	f.Fuzz(func(t *testing.T, v string) {
		for _, s := range ParseLinkICEServers([]string{v}) {
			if len(s.URLs) != 1 || s.URLs[0] == "" {
				t.Fatalf("server without URL from %q", v)
			}
		}
	})
}
