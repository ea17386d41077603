package rtptime

import (
	"testing"
	"time"
)

func TestTimeline_Place(t *testing.T) {
	type pkt struct {
		ssrc, ts, dur uint32
		gap           uint32
		ok            bool
	}
	tests := []struct {
		name    string
		pkts    []pkt
		wantPos int64
	}{
		{"contiguous", []pkt{{1, 1000, 160, 0, true}, {1, 1160, 160, 0, true}, {1, 1320, 160, 0, true}}, 480},
		{"gap kept", []pkt{{1, 0, 160, 0, true}, {1, 480, 160, 320, true}}, 640},
		{"duplicate dropped", []pkt{{1, 0, 160, 0, true}, {1, 0, 160, 0, false}, {1, 160, 160, 0, true}}, 320},
		{"late dropped", []pkt{{1, 0, 160, 0, true}, {1, 320, 160, 160, true}, {1, 160, 160, 0, false}}, 480},
		{"wrap", []pkt{{1, 0xFFFFFF60, 160, 0, true}, {1, 0, 160, 0, true}, {1, 320, 160, 160, true}}, 640},
		{"forward jump reanchors", []pkt{{1, 0, 160, 0, true}, {1, 1 << 30, 160, 0, true}, {1, 1<<30 + 160, 160, 0, true}}, 480},
		{"backward jump reanchors", []pkt{{1, 1 << 30, 160, 0, true}, {1, 5, 160, 0, true}, {1, 165, 160, 0, true}}, 480},
		{"new ssrc reanchors", []pkt{{1, 0, 160, 0, true}, {2, 99999, 160, 0, true}, {2, 100159, 160, 0, true}}, 480},
		{"small backward reset reanchors after a run of late packets", func() []pkt {
			p := []pkt{{1, 4000, 160, 0, true}}
			for i := range MaxLateRun {
				p = append(p, pkt{1, uint32(160 * i), 160, 0, false})
			}
			return append(p, pkt{1, 160 * MaxLateRun, 160, 0, true}, pkt{1, 160*MaxLateRun + 160, 160, 0, true})
		}(), 480},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := Timeline{MaxGap: 8000}
			for i, p := range tt.pkts {
				gap, ok := tl.Place(p.ssrc, p.ts, p.dur)
				if gap != p.gap || ok != p.ok {
					t.Errorf("packet %d: Place = (%d, %v), want (%d, %v)", i, gap, ok, p.gap, p.ok)
				}
			}
			if got := tl.Position(); got != tt.wantPos {
				t.Errorf("Position = %d, want %d", got, tt.wantPos)
			}
		})
	}
}

// FuzzTimeline checks that the position never goes back and only grows by
// what Place reported.
func FuzzTimeline(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Fuzz(func(t *testing.T, data []byte) {
		tl := Timeline{MaxGap: 48000}
		for len(data) >= 7 {
			ssrc := uint32(data[0] & 1)
			ts := uint32(data[1])<<24 | uint32(data[2])<<16 | uint32(data[3])<<8 | uint32(data[4])
			dur := uint32(data[5])<<8 | uint32(data[6])
			data = data[7:]
			before := tl.Position()
			gap, ok := tl.Place(ssrc, ts, dur)
			want := before
			if ok {
				want += int64(gap) + int64(dur)
			}
			if gap > tl.MaxGap || tl.Position() != want {
				t.Fatalf("gap %d, position %d -> %d (ok %v, dur %d)", gap, before, tl.Position(), ok, dur)
			}
		}
	})
}

// TestTimeline_WallClock shows a pause longer than MaxGap keeping its length
// by the wall clock, across a timestamp jump and an SSRC change, while a
// jump without a pause continues directly; and a pause whose timestamps ran
// on, within MaxGap of the wall clock, keeping its length by them (the
// packet before it written 0.8 s late: by the wall clock alone the one
// after it would be placed 0.8 s early).
func TestTimeline_WallClock(t *testing.T) {
	now := time.Unix(1000, 0)
	tl := Timeline{MaxGap: 8000, Rate: 8000, Now: func() time.Time { return now }}
	type step struct {
		wait     time.Duration // wall-clock time before the packet
		ssrc, ts uint32
		gap      uint32
	}
	for i, s := range []step{
		{0, 1, 0, 0},
		{20 * time.Millisecond, 1, 160, 0},
		{20 * time.Millisecond, 1, 1 << 30, 0},                         // jump, no pause: continues directly
		{20*time.Millisecond + 5*time.Second, 1, 1<<30 + 1<<29, 40000}, // 5 s pause > MaxGap, timestamps jumped: kept
		{20*time.Millisecond + 3*time.Second, 2, 77, 24000},            // new SSRC after 3 s
		{20 * time.Millisecond, 2, 237, 0},
		{20*time.Millisecond + 4200*time.Millisecond, 2, 397 + 40000, 40000}, // timestamps ran on 5 s, 4.2 s between the writes: kept by them
		{20 * time.Millisecond, 2, 40557, 0},
	} {
		now = now.Add(s.wait)
		gap, ok := tl.Place(s.ssrc, s.ts, 160)
		if !ok || gap != s.gap {
			t.Errorf("packet %d: gap %d ok %v, want %d", i, gap, ok, s.gap)
		}
	}
}

// TestTimeline_PosOf maps timestamps of the current anchor to positions,
// across a gap and a wrap, clamped to [0, Position].
func TestTimeline_PosOf(t *testing.T) {
	var tl Timeline
	if tl.PosOf(5) != 0 {
		t.Error("PosOf before any packet")
	}
	tl.MaxGap = 8000
	tl.Place(1, 0xFFFFFF00, 160)
	tl.Place(1, 0xE0, 160) // a gap of 320 across the wrap: ends at 640
	for ts, want := range map[uint32]int64{0xFFFFFF00: 0, 0xFFFFFFA0: 160, 0xE0: 480, 0x180: 640, 0x1000: 640, 0xFFFF0000: 0} {
		if got := tl.PosOf(ts); got != want {
			t.Errorf("PosOf(%#x) = %d, want %d", ts, got, want)
		}
	}
}
