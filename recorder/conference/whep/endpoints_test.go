package whep

import (
	"reflect"
	"testing"
)

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template string
		streams  []string
		conf     string
		want     []endpoint
		wantErr  bool
	}{
		{"one per conference", "https://sfu.example/whep/{conferenceId}", nil, "room 1",
			[]endpoint{{url: "https://sfu.example/whep/room%201", userID: "room 1", stream: "room 1"}}, false},
		{"organization too", "https://sfu.example/{organizationId}/{conferenceId}", nil, "c",
			[]endpoint{{url: "https://sfu.example/org%2F1/c", userID: "c", stream: "c"}}, false},
		{"streams", "http://cdn.example/{conferenceId}/{streamId}/whep", []string{"alice", "b/ob"}, "r",
			[]endpoint{
				{url: "http://cdn.example/r/alice/whep", userID: "alice", stream: "alice"},
				{url: "http://cdn.example/r/b%2Fob/whep", userID: "b/ob", stream: "b/ob"},
			}, false},
		{"path escaping stops traversal", "http://x.example/c/{conferenceId}/whep", nil, "../admin",
			[]endpoint{{url: "http://x.example/c/..%2Fadmin/whep", userID: "../admin", stream: "../admin"}}, false},
		{"streams missing", "http://x.example/{conferenceId}/{streamId}", nil, "r", nil, true},
		{"no template", "", nil, "r", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{URLTemplate: tc.template, Streams: tc.streams})
			got, err := a.endpoints("org/1", tc.conf)
			if (err != nil) != tc.wantErr {
				t.Fatalf("endpoints: %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("endpoints\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
