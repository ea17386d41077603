package whip

import "testing"

// The REMB asks the whole target up to three quarters of the capacity, then
// less in proportion, down to a quarter of it at (and past) capacity.
func TestVideoBitrateAt_LowerUnderLoad(t *testing.T) {
	const target = 2_500_000
	for _, c := range []struct {
		load, capacity int
		want           uint64
	}{
		{0, 0, target}, {5000, 0, target}, // no capacity: always the target
		{0, 100, target}, {75, 100, target},
		{80, 100, 2_000_000}, {90, 100, 1_000_000},
		{95, 100, 625_000}, {100, 100, 625_000}, {130, 100, 625_000},
	} {
		if got := VideoBitrateAt(target, c.load, c.capacity); got != c.want {
			t.Errorf("load %d of %d: %d bit/s, want %d", c.load, c.capacity, got, c.want)
		}
	}
}
