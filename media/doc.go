// Package media is the recorder's audio hot path: everything between an RTP
// packet arriving and a mixed PCM frame handed to a writer.
//
// # Pieces
//
//   - Ring: a lock-free single-producer single-consumer ring of int16 samples
//     whose counters are positions on a track's timeline.
//   - AudioPipeline: one per audio track, on the track's reader goroutine. It
//     puts RTP packets back in sequence order (a small reorder window), decodes
//     Opus (pure-Go github.com/pion/opus, natively at the mix rate) or G.711
//     µ-law/A-law, and writes each frame into the track's ring at the position
//     its RTP timestamp gives.
//   - Mixer: one per recording, one goroutine. Every tick it plays one frame
//     from every input ring, sums in int32, clamps, and hands the frame to a
//     FrameSink (the WAV writer).
//
// # Timeline
//
// A track's duration must equal wall-clock time whatever the network does:
// lost packets, DTX (no packets during silence), reordering, jitter. Silence
// must therefore be inserted exactly once for every interval nothing arrived
// for. The design:
//
//   - The ring's counters are absolute positions, in samples, on the track's
//     timeline. tail is the end of the decided timeline; head is the mixer's
//     playout position.
//   - The pipeline computes each frame's position from its RTP timestamp
//     (extended to 64 bits, so 32-bit wrap-around is seamless) and writes it
//     there with Ring.WriteAt. A gap since the previous frame is written as
//     silence, as far as the mixer has not yet played it.
//   - The mixer plays every started input at wall-clock pace with Ring.Play,
//     one frame per tick. When an input has less than a frame buffered, Play
//     claims the missing positions as silence by advancing tail itself
//     (compare-and-swap), so each position is decided exactly once: as data
//     written in time, or as silence played. Data that arrives for positions
//     already played is dropped and counted (PipelineStats.Late, and
//     Ring.Dropped for samples); it can never push the rest of the track
//     late.
//   - A new input starts playing once a cushion (60 ms by default) is
//     buffered, so jitter up to the cushion costs nothing. The pipeline
//     anchors the first packet at the playout position plus the cushion, and
//     re-anchors the same way instead of inserting minutes of silence or
//     dropping everything as late: after a new SSRC, a timestamp jump larger
//     than MaxJump (5 s) either way, a jump that would land beyond the ring
//     (2 s), and a run of packets that arrive slightly late (a sender clock
//     slower than ours) or late at all for a second.
//   - Before decoding, a reorder window (8 packets) puts packets back in
//     sequence order: a packet after a missing one is held until the missing
//     one arrives or until it is about to be played (half a cushion ahead of
//     the playout position). Sequence numbers and timestamps are compared in
//     serial-number arithmetic, so both wrap around seamlessly.
//
// The track's start in the mix is the arrival of its first packet; from then
// on its position in the mix is its RTP time. What is counted: Ring.Dropped
// (samples that came too late or did not fit), Ring.Missing (positions
// played as silence), and PipelineStats (lost, duplicate, late packets,
// decode errors, re-anchors).
//
// Known limits: a packet held for a missing one is released only when
// another packet arrives, so a loss just before the sender falls silent
// (DTX) costs the held packets too; a sender clock faster than ours fills
// the ring until the mixer trims a frame whenever more than half the ring is
// buffered (MixInput.Trimmed: a 20 ms cut every 200 s at +100 ppm, after the
// first 1 s of drift, about 3 hours); Opus has no packet loss concealment
// (pion/opus has none), lost packets are silence.
//
// The hot path allocates nothing per packet or per frame and takes no lock:
// the mixer's input list sits behind an atomic.Pointer and is replaced
// copy-on-write when inputs come and go.
package media
