// Package media is the recorder's audio hot path: everything between an RTP
// packet arriving and a mixed PCM frame handed to a writer.
//
// # Pieces
//
//   - Ring: a lock-free single-producer single-consumer ring of int16 samples
//     whose counters are positions on the recording's timeline; the producer
//     may write anywhere between the decided frontier and the ring's end, in
//     any order.
//   - AudioPipeline: one per audio track, on the track's reader goroutine. It
//     decodes Opus (internal/opus, our fork of pure-Go pion/opus, natively
//     at the mix rate) or G.711 µ-law/A-law, and writes each packet into
//     the track's ring at the position its RTP timestamp gives on the
//     recording's timeline.
//     Inactive Opus packets (SILK VAD flags clear, DTX) play as silence
//     without being decoded, and the decoder is re-warmed on the last two
//     of them before the next active one (opusdec.go: 40 % of the packets
//     of speech with pauses, speech frames bit-exact at 8 kHz, onsets where
//     a full decode has them). At 16 kHz or less the CELT layer of hybrid
//     frames (8 kHz and up, which such a mix cannot hold) is not decoded
//     either: bit-exact at 8 and 16 kHz on the speech fixture, 55 → 25 µs of
//     CPU per packet at 8 kHz with both skips. AudioPipelineConfig.DecodeAll
//     turns both off.
//   - Mixer: one per recording, one goroutine. It writes a frame once every
//     input has decided it or the latency budget has passed, sums in int32,
//     clamps, and hands the frame to a FrameSink (the WAV writer).
//
// # The recording's timeline
//
// A recording has no listener waiting: the mix is built on the recording's
// timeline, not played out on a live call's. The tracks are the truth; the
// mix holds everything they hold, except what pause and blackout remove on
// purpose, at the same instants.
//
//   - Timeline. Position 0 is the recording's start (MixConfig.Start); a
//     position is a sample at the mix rate; the wall clock (MixConfig.Clock)
//     gives the position of now (Mixer.Now, Mixer.PosAt).
//   - Arrival. A packet's arrival is when it reached the machine, if its
//     reader knows (WriteRTPAt: the WHIP endpoint's UDP mux keeps the
//     kernel's receive time of each datagram), otherwise when it is read
//     (WriteRTP). A reader starved of CPU reads seconds behind its socket;
//     its lag is not the sender's clock, and everything below that says
//     arrival means the former where it is known. Whether the mixer has
//     written a packet's place already is judged when it is read.
//   - One clock for all tracks. Every packet is placed by its own RTP
//     timestamp (extended to 64 bits, so wrap-around is seamless) mapped to
//     the recording's clock: by the sender's RTCP sender report (NTP↔RTP)
//     when there is one that fits the arrivals, otherwise by the track's
//     least-late packet. The conference adapters read each receiver's RTCP
//     (conference.Track.SenderReport) and the recorder gives the latest to
//     the pipeline (SenderReport). An anchor goes where the report puts its
//     timestamp on the sender's wall clock, if that fits the packet's
//     arrival (at most 1 s before it: the sender's clock agrees with ours,
//     as an SFU's or an NTP-synced sender's does); a report that comes while
//     an anchor settles moves it there. Never after the arrival of the
//     least-late packet: a report that places it there (up to 100 ms: Pion
//     stamps a report by its sender's last write, which lags on a busy
//     machine) was stamped late, and the arrival places the track; the next
//     report shows by how much the first one followed was late
//     (followReport), so it is not taken for a step back. Without a
//     report the anchor is first the packet's arrival and then, for half a
//     second of arrivals (settling, nothing decided meanwhile), moves back by
//     the most any packet came earlier than the mapping placed it: the
//     least-late packet defines the mapping, not the first one read. So a
//     backlog sent in a burst at connect (GStreamer sends 0.3–0.7 s at once),
//     a reader that read the first packets late, or a sender that was already
//     sending when the recording started is placed where it was captured, by
//     its timestamps, never stretched. For that the mixer stays the join wait
//     (760 ms, at most half the budget) behind wall time, and a new
//     input begins that far before the instant it is added (Mixer.AddInput;
//     or where the mix is written up to, if later). Audio that maps before the
//     input's start (the recording's time zero, or older than the join wait)
//     is left out of the mix and counted (PipelineStats.BeforeStart), never
//     shifted; the track's file keeps it, and its time zero (Origin, the
//     manifest's mediaOffset) may then be negative. The mapping is
//     re-anchored after a new SSRC, a timestamp jump of more than MaxJump (5
//     s), a packet more than a second ahead of its arrival or later than the
//     budget; a later anchor moves back no further than the track's own audio
//     before it ends. After a pause or blackout (Resync, on the first packet
//     the gate lets through) the timestamps still place the packet, as they
//     do in the track's file, if that fits its arrival (not before what was
//     decided, at most 100 ms ahead, at most half the budget late, or up to
//     the budget late when its sender's latest report places it there: a
//     publisher starved of CPU, a stall released in a burst, not timestamps
//     that stood still); otherwise the timeline re-anchors at its arrival.
//     With every track placed where it was captured the first packet after a
//     resume is never ahead of its arrival, so the mix does not jump against
//     the file there.
//     After the anchor a track whose sender sends reports follows them, as
//     the offline mix and the composite place its file (composition.
//     TrackTiming.Steps): the first report keeps the mapping where it is
//     (they place the file's first sample where the live mix did), and at
//     each later one the mapping moves by as much as the reports moved: a
//     move of more than 10 ms (a capture that stalled) is a step once the
//     next report confirms it (within 10 ms), the very steps the offline
//     placement takes (composition.ReportMoved), so the audio after a step
//     is where the offline mix has it; less is the sender's clock drifting,
//     resampled away at its rate (measured over the reports since the first,
//     or the last step) once the offset passed 10 ms. Between a step's
//     first report and the one that confirms it the live mix holds the
//     track's audio from the packets' gap at a capture stall, and moves it
//     by a step forward once confirmed (the hold, in pipeline.go), within
//     the budget; otherwise it places that audio about as before the step
//     (see followReport). A
//     report that places a packet earlier than the arrivals allow is not
//     followed, nor one the next does not confirm: Pion stamps a report by
//     its last write, so a stalled write makes one late by the stall.
//     PipelineStats.BySR counts anchors placed by a report; Origin is where
//     the track's first sample landed, which the recorder records as the
//     track file's time zero (manifest mediaOffset), and the manifest's track
//     timing keeps the RTP timestamp of that sample and the report, so video
//     is placed by the same clock.
//   - Latency budget (MixConfig.Latency, default 5 s). Every packet that
//     arrives within the budget lands at its own place, late or reordered:
//     the pipeline writes it with Ring.Put and moves the ring's decided
//     frontier (Ring.Decide) to the end of the in-sequence run. The mixer
//     writes frame [h, h+F) once every input's frontier passed h+F, or once
//     now is past h+F plus the budget (an input whose reader is behind its
//     socket, with a packet to read that reached the machine within the
//     budget for the frame, is waited for up to readerWait, half a second,
//     longer: InputOptions.Unread; arrival, not reading, counts); then it
//     claims what an input has not decided as silence (a compare-and-swap on the frontier, so every
//     position is decided exactly once). Only a packet for a position
//     already written is dropped, and counted (PipelineStats.Late,
//     Ring.Dropped; Mixer.Expired counts frames written because the budget
//     passed). An input that never sent a packet, and one that was removed,
//     do not hold the mix back; nor does one whose track's gate drops its
//     packets on purpose (a blackout, a pause with silence), up to where the
//     gated span ends (MixInput.Gate, GateEnds): the mix on disk does not lag
//     the budget while a participant is blacked out, and the other tracks'
//     rings do not fill up meanwhile. The mix on disk thus lags real time by at
//     most the budget (less while every input delivers in order; half a
//     second more while a reader is behind its socket), and
//     Mixer.Finish, at stop, writes everything that arrived.
//   - Reordering. The ring places packets in any order; for Opus, whose
//     decoder needs its packets in sequence, the pipeline also holds up to 8
//     packets after a missing one, for at most 200 ms, before it decodes
//     on; a missing packet that comes later is still decoded (out of order)
//     and placed.
//   - Drift. A track whose sender sends reports follows them (above). For
//     one that does not (or whose reports stopped for 15 s, or do not fit
//     its arrivals): per 1 s window of arrival time the pipeline takes the least
//     lateness of a packet (arrival minus placed position): network delay
//     only adds to it, so its trend is the sender's clock against ours.
//     After 3 s the pipeline resamples (linear interpolation, per packet) at
//     the slope of that trend since the first window, plus the offset from
//     the reference caught up over 10 s, within MaxSkew (5 %). The reference
//     is the first window's least lateness, but for a track placed by arrival
//     at most 0 (on time: its settled anchor): when the packets read while it
//     settled all came late (a reader or sender that stayed behind for longer
//     than that), the later, on-time ones show the mapping late, and it is
//     pulled back to them. It starts
//     once the offset passed 10 ms and stops within 0.02 % and 5 ms, so
//     jitter alone never makes it resample. So a skewed sender is
//     neither cut nor padded with silence, and the mix lasts the wall-clock
//     time of the recording.
//   - Loss. A single lost Opus packet whose successor carries in-band FEC
//     (SILK's LBRR frames: the lost packet coded again at a lower rate, which
//     browsers send, useinbandfec=1) is decoded from it, before the
//     successor itself, so the decoder runs through the lost packet as
//     libopus's does (internal/opus's DecodeFECToInt16, opusDecoder.DecodeFEC;
//     PipelineStats.Recovered): on speech with 10 % loss, 12.8 dB SNR on the
//     recovered frames against a mix without loss, and 21 dB on the frame
//     after, where repeating the last packet gives -3.7 dB and 2.6 dB
//     (TestOpusDecoder_FECRecoversALostPacket). Otherwise a gap of up to
//     three missing packets (sequence numbers missing, so not DTX) is
//     concealed by repeating the last decoded packet, full for one packet
//     and fading out over two (the decoder has no packet loss concealment of
//     its own); a missing packet that arrives within the budget replaces
//     either. It costs one copy of the last packet (at most 120 ms at the
//     mix rate, which the FEC audio reuses) and a copy per concealed packet.
//   - Pause and blackout. The recorder's gate drops a track's packets before
//     its file and its pipeline (recorder/pause.go), so the mix holds what
//     the track files hold, and the cut is at the same instant in both. It
//     keeps or drops a packet by where its audio begins on the timeline
//     (AudioPipeline.PlaceOf), not by when it was read, so a reader or a
//     sender that fell behind does not move the cut.
//     When the gate closes the pipeline places the packets it held for
//     reordering (AudioPipeline.Pause), so all audio before the cut is in
//     the ring. With pause.Skip the mixer also leaves the paused span out of
//     its output (Mixer.Cut, Mixer.Uncut, sample-exact; Mixer.OutputAt maps
//     a timeline position to mix.wav), seamlessly: the span begins where the
//     audio received before the pause ends (settled at Uncut) and each
//     track resumes where its own audio before it ended
//     (AudioPipeline.ResyncAt: at the span's end, or, for a track whose
//     audio ended earlier, its first samples just before the span), as the
//     track file joins the packets around the pause. MixInput.MuteFrom and UnmuteFrom silence one
//     input from a timeline position on: a position in the past that the
//     mixer has not written yet (within the budget) silences the audio
//     already received for it — a blackout decided after the fact. A
//     position already written is moved to the first one that is not, and
//     the result says where the mute begins.
//
// Counters: Ring.Dropped (samples for positions already decided, or beyond
// the ring), Ring.Missing (positions claimed as silence with nothing
// written), Mixer.Expired, and PipelineStats (lost, concealed, duplicate and
// late packets, decode errors, re-anchors). All are atomic and may be read
// from any goroutine. PipelineStats.Lost counts each sequence number the
// pipeline gave up on exactly once, wherever it gives up: the mixer wrote
// past it, seqWindow (256) packets came after it, a new source or a
// discontinuity, Resync (the packets the gate dropped during a pause are not
// lost) and Close (the holes before the newest packet; packets after the
// last one received are unknowable). A forward jump of the sequence up to
// 3000 is a loss (RFC 3550 A.1). Late counts packets that arrived after their
// place was written; one given up on and arriving later is in both.
//
// Memory per track at 8 kHz with the default 5 s budget
// (TestMixInput_MemoryInUse logs it): the ring starts at one second
// (16,000 bytes) and grows, doubling, to the budget plus a second (ringSlack
// in mixer.go: packets placed ahead, a mixer goroutine running late; 96,000
// bytes) only when its track, or another the mixer waits for, lags
// (NewGrowingRing), and shrinks back to a second once the lag is over; its
// padded struct 800; the pipeline struct 4,304 (of which the sequence window
// 3,104); the concealment copy (60 ms, 960) and, for Opus, the reorder
// window (8 × 512 bytes, 4,096, from the first packet held) and the decoder
// (about 4.4 KB new, 6 KB once it decodes a browser's speech). Working
// memory that only a call needs is lent for the call (internal/lend), not
// held: the pipeline's decode buffer (the longest packet: 120 ms of Opus,
// 1,920 bytes; 1,500 bytes of G.711, 3,000) and resample buffer (the decode
// buffer plus 25 %, for MaxSkew up to 20 %), and the decoder's. In all
// (TestMixInput_MemoryInUse): an Opus track in step 31.7 KB; 113.6 KB while
// the mixer waits the whole budget for another track (the ring's growth);
// 31.7 KB again after. An Opus track whose reader can be woken (the
// recorder's, conference.DeadlineReader) defers decoding instead
// (deferred.go: EnableDefer): its ring keeps its second while the mixer
// waits, and the packets beyond wait undecoded in a queue of 256 slots and
// 25 KB of payload (allocated while it defers): 67.2 KB at that peak. A
// G.711 track defers too (its payload is half its decoded size at 8 kHz;
// decoded on arrival, its ring holding the budget takes 104.4 KB, over
// issue 10's 100 KB): 22.5 KB in step, 88.0 KB while the mixer waits the
// whole budget, in packets of 10 or 20 ms (a queue of 500 slots and
// 41.5 KB for 5 s: deferred.go).
//
// The hot path allocates nothing per packet or per frame and takes no lock:
// the mixer's input and cut lists sit behind atomic.Pointers and are replaced
// copy-on-write when inputs come and go.
package media
