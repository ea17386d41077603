package framer

import (
	"errors"
	"testing"

	"github.com/pion/rtp"
)

// fakeCodec: payload[0] is 'S' on a frame's first packet, the rest is frame
// data; a frame whose data starts with 'K' is a keyframe; 'E' is malformed.
type fakeCodec struct{}

func (fakeCodec) Depacketize(frame, payload []byte) ([]byte, bool, error) {
	if len(payload) == 0 || payload[0] == 'E' {
		return frame, false, errors.New("malformed")
	}
	return append(frame, payload[1:]...), payload[0] == 'S', nil
}

func (fakeCodec) Keyframe(frame []byte) bool { return len(frame) > 0 && frame[0] == 'K' }

type pkt struct {
	seq    uint16
	ts     uint32
	marker bool
	data   string
}

func TestFramer_Push(t *testing.T) {
	tests := []struct {
		name     string
		pkts     []pkt
		want     []string // frames returned, in order
		requests uint64
	}{
		{"whole frames", []pkt{{1, 0, false, "SKa"}, {2, 0, true, "-b"}, {3, 3000, true, "Sc"}}, []string{"Kab", "c"}, 1},
		{"waits for a keyframe", []pkt{{1, 0, true, "Sa"}, {2, 3000, true, "SKb"}, {3, 6000, true, "Sc"}}, []string{"Kb", "c"}, 1},
		{"loss mid-frame drops it and waits", []pkt{{1, 0, true, "SK"}, {2, 3000, false, "Sa"}, {4, 3000, true, "-c"}, {5, 6000, true, "Sd"}, {6, 9000, true, "SKe"}}, []string{"K", "Ke"}, 2},
		{"lost marker", []pkt{{1, 0, true, "SK"}, {2, 3000, false, "Sa"}, {4, 6000, true, "SKb"}}, []string{"K", "Kb"}, 2},
		{"lost start", []pkt{{1, 0, true, "SK"}, {3, 3000, true, "-a"}, {4, 6000, true, "SKb"}}, []string{"K", "Kb"}, 2},
		{"duplicate ignored", []pkt{{1, 0, false, "SKa"}, {1, 0, false, "SKa"}, {2, 0, true, "-b"}}, []string{"Kab"}, 1},
		{"sequence wrap", []pkt{{65535, 0, false, "SKa"}, {0, 0, true, "-b"}, {1, 3000, true, "Sc"}}, []string{"Kab", "c"}, 1},
		{"malformed packet", []pkt{{1, 0, true, "SK"}, {2, 3000, false, "Sa"}, {3, 3000, true, "E"}, {4, 6000, true, "SKb"}}, []string{"K", "Kb"}, 1},
		{"repeats the request each second", []pkt{{1, 0, true, "Sa"}, {2, 45000, true, "Sb"}, {3, 90000, true, "Sc"}, {4, 180000, true, "Sd"}}, nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests uint64
			f := Framer{Codec: fakeCodec{}, ClockRate: 90000, OnKeyframeRequest: func() { requests++ }}
			var got []string
			for _, p := range tt.pkts {
				fr, ok := f.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker, SSRC: 5}, Payload: []byte(p.data)})
				if ok {
					got = append(got, string(fr.Data))
					if fr.Keyframe != (fr.Data[0] == 'K') || fr.SSRC != 5 {
						t.Errorf("frame %q: keyframe %v SSRC %d", fr.Data, fr.Keyframe, fr.SSRC)
					}
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("frames %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("frames %q, want %q", got, tt.want)
				}
			}
			if requests != tt.requests || f.Stats.KeyframeRequests != tt.requests {
				t.Errorf("keyframe requests %d (stats %d), want %d", requests, f.Stats.KeyframeRequests, tt.requests)
			}
		})
	}
}

func TestFramer_SSRCChangeWaitsForKeyframe(t *testing.T) {
	f := Framer{Codec: fakeCodec{}, ClockRate: 90000}
	push := func(ssrc uint32, seq uint16, data string) bool {
		_, ok := f.Push(&rtp.Packet{Header: rtp.Header{SSRC: ssrc, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: []byte(data)})
		return ok
	}
	if !push(1, 1, "SK") || !push(1, 2, "Sa") {
		t.Fatal("first stream not written")
	}
	if push(2, 500, "Sb") {
		t.Error("delta frame of a new SSRC written before its keyframe")
	}
	if !push(2, 501, "SK") {
		t.Error("keyframe of the new SSRC not written")
	}
}

func TestFramer_ZeroAllocs(t *testing.T) {
	f := Framer{Codec: fakeCodec{}, ClockRate: 90000}
	p := &rtp.Packet{Header: rtp.Header{Marker: true}, Payload: []byte("SK0123456789")}
	if n := testing.AllocsPerRun(100, func() {
		p.SequenceNumber++
		p.Timestamp += 3000
		f.Push(p)
	}); n != 0 {
		t.Errorf("Push allocates %.1f times per packet", n)
	}
}

// FuzzFramer pushes arbitrary packets: no panic, and the first frame
// returned is a keyframe.
func FuzzFramer(f *testing.F) {
	f.Add([]byte{1, 0, 1, 'S', 'K', 2, 1, 1, 'S', 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := Framer{Codec: fakeCodec{}, ClockRate: 90000}
		var seq uint16
		for len(data) >= 3 {
			seq += uint16(data[0] % 4)
			n := int(data[2] % 8)
			data = data[3:]
			n = min(n, len(data))
			out, ok := fr.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(data0(data)) * 3000, Marker: n%2 == 0}, Payload: data[:n]})
			if ok && fr.Stats.Frames == 1 && !out.Keyframe {
				t.Fatalf("first frame %q is not a keyframe", out.Data)
			}
			data = data[n:]
		}
	})
}

func data0(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0] % 3
}

// TestFramer_Time checks frame times: zero at the first packet even when
// its frame is dropped, gaps kept, a jump beyond MaxGap continued.
func TestFramer_Time(t *testing.T) {
	f := Framer{Codec: fakeCodec{}, ClockRate: 90000, MaxGap: 90000}
	var got []int64
	for i, ts := range []uint32{1000, 4000, 7000, 16000, 16000 + 500000, 16000 + 503000} {
		data := "Sa"
		if i == 1 {
			data = "SK"
		}
		if fr, ok := f.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: ts, Marker: true}, Payload: []byte(data)}); ok {
			got = append(got, fr.Time)
		}
	}
	want := []int64{3000, 6000, 15000, 15000, 18000}
	if len(got) != len(want) {
		t.Fatalf("times %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("times %v, want %v", got, want)
			break
		}
	}
}
