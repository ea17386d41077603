package lend

import (
	"sync"
	"testing"
)

// TestPool_LendsEachValueToOneCallerAtATime: 8 goroutines borrow, write
// their own mark through the value, check it is still theirs, and give it
// back, 10000 times each; a value lent twice at once shows as another's
// mark (and, under -race, as a race).
func TestPool_LendsEachValueToOneCallerAtATime(t *testing.T) {
	var p Pool[[64]int]
	var wg sync.WaitGroup
	for g := 1; g <= 8; g++ {
		wg.Go(func() {
			for range 10000 {
				v, ticket := p.Get()
				for i := range v {
					v[i] = g
				}
				for i := range v {
					if v[i] != g {
						t.Errorf("goroutine %d: value holds %d: lent to two at once", g, v[i])
						return
					}
				}
				p.Put(ticket)
			}
		})
	}
	wg.Wait()
}

// TestPool_ReusesValues: once the values are made, Get and Put allocate
// nothing, and a value comes back with what its last borrower left in it.
func TestPool_ReusesValues(t *testing.T) {
	var p Pool[[]byte]
	v, ticket := p.Get()
	*v = append(*v, 1, 2, 3)
	p.Put(ticket)
	if allocs := testing.AllocsPerRun(1000, func() {
		v, ticket := p.Get()
		if len(*v) != 3 {
			t.Fatalf("value holds %v, want what the last borrower left", *v)
		}
		p.Put(ticket)
	}); allocs != 0 {
		t.Errorf("%.1f allocations per Get and Put", allocs)
	}
}

// TestPool_LendsBeyondItsSlots: with every slot taken, Get still gives a
// value of its own, which Put forgets.
func TestPool_LendsBeyondItsSlots(t *testing.T) {
	var p Pool[int]
	seen := map[*int]bool{}
	tickets := make([]int, 0, slots+1)
	for range slots + 1 {
		v, ticket := p.Get()
		if seen[v] {
			t.Fatal("a value lent twice")
		}
		seen[v] = true
		tickets = append(tickets, ticket)
	}
	if tickets[slots] != -1 {
		t.Errorf("ticket %d beyond the slots, want -1", tickets[slots])
	}
	for _, ticket := range tickets {
		p.Put(ticket)
	}
	if _, ticket := p.Get(); ticket != 0 {
		t.Errorf("ticket %d after all came back, want the first slot", ticket)
	}
}
