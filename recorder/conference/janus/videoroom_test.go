package janus

import (
	"encoding/json"
	"testing"
)

func TestRoomID(t *testing.T) {
	for _, tc := range []struct{ in, json, str string }{
		{"1234", `1234`, "1234"},
		{"room-a", `"room-a"`, "room-a"},
		{"12a", `"12a"`, "12a"},
		{`q"uote`, `"q\"uote"`, `q"uote`},
		{"18446744073709551615", `18446744073709551615`, "18446744073709551615"},
		{"18446744073709551616", `"18446744073709551616"`, "18446744073709551616"}, // beyond uint64
	} {
		id := RoomID(tc.in)
		b, err := json.Marshal(map[string]ID{"room": id})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"room":` + tc.json + `}`; string(b) != want {
			t.Errorf("RoomID(%q) marshals as %s, want %s", tc.in, b, want)
		}
		if id.String() != tc.str {
			t.Errorf("RoomID(%q).String() = %q, want %q", tc.in, id.String(), tc.str)
		}
	}
}

func TestParseEvents(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		n       int
		wantErr bool
	}{
		{"keepalive", `{"janus":"keepalive"}`, 1, false},
		{"array", `[{"janus":"event","sender":1,"plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"event","leaving":7}}},{"janus":"webrtcup","sender":2}]`, 2, false},
		{"empty array", `[]`, 0, false},
		{"error", `{"janus":"error","error":{"code":458,"reason":"No such session 1"}}`, 0, true},
		{"garbage", `<html>`, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := parseEvents([]byte(tc.in))
			if (err != nil) != tc.wantErr || len(ms) != tc.n {
				t.Fatalf("parseEvents(%s) = %d messages, %v", tc.in, len(ms), err)
			}
		})
	}
}

func TestRoomEvents(t *testing.T) {
	msg := func(data string) *Message {
		return &Message{Janus: "event", PluginData: &PluginData{Plugin: Plugin, Data: json.RawMessage(data)}}
	}
	ev := parseRoomEvent(msg(`{"videoroom":"event","room":1,"publishers":[{"id":5,"display":"ann","streams":[{"type":"audio","mindex":0,"mid":"0","codec":"opus","description":"MIC"},{"type":"video","mindex":1,"mid":"1","codec":"vp8","disabled":true}]}]}`))
	if ev == nil || len(ev.Publishers) != 1 || ev.Publishers[0].ID.String() != "5" || len(ev.Publishers[0].Streams) != 2 ||
		ev.Publishers[0].Streams[0].Description != "MIC" || !ev.Publishers[0].Streams[1].Disabled {
		t.Fatalf("publishers event: %+v", ev)
	}
	for _, tc := range []struct {
		data string
		want ID
	}{
		{`{"videoroom":"event","leaving":42}`, "42"},
		{`{"videoroom":"event","leaving":"ok"}`, ""}, // our own leave
		{`{"videoroom":"event","leaving":"abc"}`, `"abc"`},
		{`{"videoroom":"event"}`, ""},
	} {
		if got := participant(parseRoomEvent(msg(tc.data)).Leaving); got != tc.want {
			t.Errorf("participant(%s) = %q, want %q", tc.data, got, tc.want)
		}
	}
	if err := msg(`{"videoroom":"event","error_code":426,"error":"No such room (9)"}`).pluginError(); err == nil {
		t.Error("no plugin error for error_code 426")
	} else if pe := err.(*PluginError); pe.Code != codeNoSuchRoom {
		t.Errorf("plugin error %v", pe)
	}
	if parseRoomEvent(&Message{Janus: "event", PluginData: &PluginData{Plugin: "janus.plugin.echotest", Data: json.RawMessage(`{}`)}}) != nil {
		t.Error("an event of another plugin parsed as a VideoRoom event")
	}
}

// FuzzParseEvents feeds long-poll replies (server-controlled input) through
// the event parser and the VideoRoom event decoder.
func FuzzParseEvents(f *testing.F) {
	f.Add(`[{"janus":"event","sender":1,"transaction":"x","plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"updated","streams":[{"mid":"0","feed_id":"a","type":"audio"}]}},"jsep":{"type":"offer","sdp":"v=0"}}]`)
	f.Add(`{"janus":"event","plugindata":{"plugin":"janus.plugin.videoroom","data":{"videoroom":"event","unpublished":12,"kicked":"ok"}}}`)
	f.Add(`{"janus":"error","error":{"code":458}}`)
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := parseEvents([]byte(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m == nil {
				continue
			}
			if ev := parseRoomEvent(m); ev != nil {
				_ = participant(ev.Leaving)
				_ = participant(ev.Unpublished)
				for _, p := range ev.Publishers {
					_ = p.ID.String()
				}
				for _, s := range ev.Streams {
					_ = s.FeedID.String()
				}
			}
			_ = m.pluginError()
		}
	})
}
