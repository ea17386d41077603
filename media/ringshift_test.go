package media

import (
	"slices"
	"testing"
)

// TestRing_ShiftForward: what the producer wrote from a position on moves
// forward, silence where it was, the ring growing (across its wrap) to hold
// it; nothing moves once the consumer claimed a position at or after it.
func TestRing_ShiftForward(t *testing.T) {
	r := NewGrowingRing(8, 32)
	r.WriteAt(0, []int16{1, 2, 3, 4})
	r.Read(make([]int16, 4))
	r.Put(4, []int16{5, 6, 7, 8, 9, 10}) // undecided: 4..9, across the wrap
	if !r.ShiftForward(6, 5) {
		t.Fatal("ShiftForward(6, 5) = false, want true")
	}
	if r.End() != 15 || r.Cap() != 16 {
		t.Fatalf("end %d, cap %d; want 15 and 16 (grown)", r.End(), r.Cap())
	}
	r.Decide(15)
	out := make([]int16, 11)
	if n := r.Play(out); n != 11 || !slices.Equal(out, []int16{5, 6, 0, 0, 0, 0, 0, 7, 8, 9, 10}) {
		t.Fatalf("Play = %d %v", n, out)
	}

	r.Put(20, []int16{1, 2})
	r.Play(make([]int16, 6)) // claims 15..20
	if r.ShiftForward(20, 3) {
		t.Error("ShiftForward below the frontier = true, want false")
	}
	if r.ShiftForward(30, 4) != true || r.End() != 22 {
		t.Errorf("ShiftForward past the end: end %d, want 22 (nothing moved)", r.End())
	}
	small := NewRing(8)
	small.Put(0, []int16{1, 2, 3, 4, 5, 6})
	if small.ShiftForward(2, 4) {
		t.Error("ShiftForward beyond a full ring's capacity = true, want false")
	}
}
