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
// not per recording). The load is the larger of what the recordings take and
// the streams connected to the WHIP endpoint (which cost their receive path
// whether or not a recording takes them). A recording takes one stream per
// track it records, and one before its first track arrives (a dial-out
// recording subscribes after its start returns: counting it at once keeps
// the next placement from piling onto this instance). A WHIP offer is
// refused when the load is at capacity; a start when what the recordings
// take is (a start that records streams already connected adds their
// recording, not their receive).
//
// In a fleet the same load and capacity go into every heartbeat, and
// placement (cluster.Node.Place) sends a dial-out start to the instance with
// the least load per capacity: one notion for placement and admission.
// cluster.capacity, which counted recordings, is read as capacity.streams
// with a notice (config.Config.Migrate).

// Load returns the streams this instance carries now (see above) and its
// capacity (0: no limit).
func (m *Manager) Load() (load, capacity int) {
	m.mu.Lock()
	load = m.recordingLoad()
	m.mu.Unlock()
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

// recordingLoad returns the streams the recordings take: the tracks being
// recorded, plus one for each running recording that records none yet. m.mu
// is held.
func (m *Manager) recordingLoad() int {
	m.met.mu.Lock()
	with := make(map[*Session]bool, len(m.active))
	for ts := range m.met.live {
		with[ts.s] = true
	}
	load := len(m.met.live)
	m.met.mu.Unlock()
	for _, s := range m.active {
		if !with[s] && !s.finishing() {
			load++
		}
	}
	return load
}

// finishing reports whether the session stops: it takes no more streams.
func (s *Session) finishing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// fullStreams is the error of a start refused because this instance carries
// its capacity of streams.
func fullStreams() *Error {
	e := fullError("this recorder")
	e.Message = "this recorder carries its capacity of streams; retry later or on another instance"
	return e
}
