package recorder

// Capacity: how many streams this instance records at once without
// degrading any of them. The load harness (make bench-load, BENCHMARKS.md)
// measures it: the N at which the recorder's core saturates or a stream
// loses packets, with a margin. Past it a new recording and a new WHIP
// publisher are refused with 503 no_capacity and Retry-After (a client, or
// the fleet's placement, tries again or elsewhere), and the streams already
// recorded keep their quality.
//
// The unit is the stream: one received track (CPU and memory go per stream,
// not per recording). The load is the larger of the tracks being recorded
// and the streams connected to the WHIP endpoint (which cost their receive
// path whether or not a recording takes them). A WHIP offer is refused when
// the load is at capacity; a start when the tracks recorded are (a start that
// takes streams already connected adds their recording, not their receive).

// Load returns the streams this instance carries now (see above) and its
// capacity (0: no limit).
func (m *Manager) Load() (load, capacity int) {
	load = m.recordedStreams()
	if m.streamLoad != nil {
		load = max(load, m.streamLoad())
	}
	return load, m.cfg.Capacity.Streams
}

// Full reports whether the instance is at its capacity: new recordings and
// new streams are refused.
func (m *Manager) Full() bool {
	load, capacity := m.Load()
	return capacity > 0 && load >= capacity
}

// recordedStreams returns the tracks being recorded now.
func (m *Manager) recordedStreams() int {
	m.met.mu.Lock()
	defer m.met.mu.Unlock()
	return len(m.met.live)
}

// fullStreams is the error of a start refused because this instance carries
// its capacity of streams.
func fullStreams() *Error {
	e := fullError("this recorder")
	e.Message = "this recorder carries its capacity of streams; retry later or on another instance"
	return e
}
