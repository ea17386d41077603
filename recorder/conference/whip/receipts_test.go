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
	for i := range 700 {
		a.note(rtpDatagram(111, 1, seq1(i)), at(i).UnixNano())
		a.note(rtpDatagram(96|0x80, 2, uint16(i)), at(i).Add(time.Millisecond).UnixNano()) // marker set
	}
	a.note(rtpDatagram(111, 3, 7), at(0).UnixNano())                  // a third SSRC
	a.note(rtpDatagram(200, 1, 1000), at(0).UnixNano())               // RTCP sender report (PT 200)
	a.note([]byte{0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0}, 1) // STUN
	a.note([]byte{22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1)        // DTLS
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
		got, ok := a.arrival(tc.ssrc, tc.seq)
		if ok != !tc.want.IsZero() || ok && !got.Equal(tc.want) {
			t.Errorf("ssrc %d seq %d: %v %t, want %v", tc.ssrc, tc.seq, got, ok, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		a.note(rtpDatagram(111, 1, 5), base.UnixNano())
		a.arrival(1, 5)
	}); n > 1 { // rtpDatagram's own
		t.Errorf("%.1f allocations per packet noted and looked up", n)
	}
}

func FuzzArrivalsNote(f *testing.F) {
	f.Add(rtpDatagram(111, 1, 2), int64(1))
	f.Add([]byte{0x80}, int64(5))
	f.Fuzz(func(t *testing.T, d []byte, at int64) {
		var a arrivals
		a.note(d, at)
		if len(d) >= 12 {
			a.arrival(binary.BigEndian.Uint32(d[8:12]), binary.BigEndian.Uint16(d[2:4]))
		}
	})
}
