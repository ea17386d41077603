package whip

import (
	"encoding/binary"
	"testing"
	"time"
)

// rtpDatagram returns an SRTP-like datagram: an RTP header (RFC 3550 §5.1)
// with ssrc and seq, and a payload.
func rtpDatagram(pt byte, ssrc uint32, seq uint16) []byte {
	d := make([]byte, 12+20)
	d[0], d[1] = 0x80, pt
	binary.BigEndian.PutUint16(d[2:], seq)
	binary.BigEndian.PutUint32(d[8:], ssrc)
	return d
}

// TestArrivals_KeepsEachPacketsReceiveTime: the receive time of an RTP
// packet is found by its SSRC and sequence number, to the microsecond,
// while it is among its SSRC's newest arrivalSlots; RTCP, STUN and DTLS are
// not RTP; a third SSRC is not kept; a sequence number that does not match
// its slot (an older or newer packet) is not known.
func TestArrivals_KeepsEachPacketsReceiveTime(t *testing.T) {
	var a arrivals
	base := time.Now().Add(-20 * time.Second).Truncate(time.Microsecond)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * 20 * time.Millisecond) }
	seq1 := func(i int) uint16 { return uint16(65500 + i) } // SSRC 1's wraps at its 36th packet
	drops := func(i int) uint32 { return uint32(i * 1000) } // the socket's count grows by 1000 a packet: it wraps past dropBits
	for i := range 700 {
		a.note(rtpDatagram(111, 1, seq1(i)), at(i).UnixNano(), drops(i))
		a.note(rtpDatagram(96|0x80, 2, uint16(i)), at(i).Add(time.Millisecond).UnixNano(), drops(i)) // marker set
	}
	a.note(rtpDatagram(111, 3, 7), at(0).UnixNano(), 0)                  // a third SSRC
	a.note(rtpDatagram(200, 1, 1000), at(0).UnixNano(), 0)               // RTCP sender report (PT 200)
	a.note([]byte{0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, 1, 0) // STUN
	a.note([]byte{22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 0)        // DTLS
	for _, tc := range []struct {
		ssrc uint32
		seq  uint16
		want time.Time // zero: not known
	}{
		{1, seq1(699), at(699)},
		{1, seq1(188), at(188)},     // after the sequence number's wrap, 10.2 s before the newest
		{1, seq1(187), time.Time{}}, // overwritten by seq1(187+arrivalSlots)
		{2, 699, at(699).Add(time.Millisecond)},
		{2, 699 - arrivalSlots, time.Time{}},
		{2, 700, time.Time{}}, // not yet
		{3, 7, time.Time{}},
		{1, 1000, time.Time{}},
	} {
		got, ok := a.Arrival(tc.ssrc, tc.seq)
		if ok != !tc.want.IsZero() || ok && !got.Equal(tc.want) {
			t.Errorf("ssrc %d seq %d: %v %t, want %v", tc.ssrc, tc.seq, got, ok, tc.want)
		}
	}
	// The drops between two packets, by the counts they came with: modulo
	// 4096 (dropBits), so at least what is found.
	for _, tc := range []struct {
		ssrc         uint32
		first, other uint16
		want         int // -1: not known
	}{
		{2, 600, 600, 0},
		{2, 600, 601, 1000},
		{2, 600, 604, 4000},
		{2, 600, 605, 5000 % 4096}, // the count's wrap
		{1, seq1(650), seq1(652), 2000},
		{2, 600, 700, -1}, // not yet
		{1, seq1(187), seq1(188), -1},
		{3, 7, 7, -1},
	} {
		got, ok := a.DroppedBetween(tc.ssrc, tc.first, tc.other)
		if ok != (tc.want >= 0) || ok && got != tc.want {
			t.Errorf("ssrc %d, %d dropped between seq %d and %d (%t), want %d", tc.ssrc, got, tc.first, tc.other, ok, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		a.note(rtpDatagram(111, 1, 5), base.UnixNano(), 3)
		a.Arrival(1, 5)
		a.DroppedBetween(1, 4, 5)
	}); n > 1 { // rtpDatagram's own
		t.Errorf("%.1f allocations per packet noted and looked up", n)
	}
}

func FuzzArrivalsNote(f *testing.F) {
	f.Add(rtpDatagram(111, 1, 2), int64(1), uint32(0))
	f.Add([]byte{0x80}, int64(5), uint32(7))
	f.Fuzz(func(t *testing.T, d []byte, at int64, drops uint32) {
		var a arrivals
		a.note(d, at, drops)
		if len(d) >= 12 {
			ssrc, seq := binary.BigEndian.Uint32(d[8:12]), binary.BigEndian.Uint16(d[2:4])
			a.Arrival(ssrc, seq)
			if n, ok := a.DroppedBetween(ssrc, seq, seq); ok && n != 0 {
				t.Errorf("%d dropped between a packet and itself", n)
			}
		}
	})
}
