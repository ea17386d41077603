package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	pionreport "github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/internal/synth"
	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/media/mediatest"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// Issue 10, one clock for all tracks: every track is placed on the
// recording's timeline where its sender captured it, however its first
// packets reach the recorder.

// beepPackets returns one second of 20 ms Opus packets (libopus, by ffmpeg)
// of a 200 ms beep at freq Hz followed by 800 ms of silence: looped, a beep
// begins every 50 packets.
func beepPackets(t *testing.T, freq float64) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("beep-%g.ogg", freq))
	expr := fmt.Sprintf(`aevalsrc=if(lt(mod(t\,1)\,0.2)\,0.5*sin(2*PI*%g*t)\,0):s=48000:d=2`, freq)
	if out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", expr,
		"-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-page_duration", "20000", path).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	pkts, err := synth.ReadOggPackets(path)
	if err != nil || len(pkts) < 50 {
		t.Fatalf("%d packets: %v", len(pkts), err)
	}
	return pkts[:50]
}

// publishOnSchedule publishes an Opus track as user in conf through an
// impairing relay (imp; nil: none), sending packets[i%len] at t0 + i·period
// on the wall clock: the sender's capture clock, shared by every publisher
// of the test. Each packet holds 20 ms of audio, so a period above 20 ms is
// a sender clock running slow. It begins at the first slot after it
// connected (a zero t0: at once, with packets[0]); a late tick is made up at
// once, so the sender keeps its (possibly skewed) rate under load.
func publishOnSchedule(t *testing.T, ctx context.Context, s *server, key, conf, user string, packets [][]byte, t0 time.Time, period time.Duration, imp impairment) (stop func()) {
	t.Helper()
	stop, _ = publishThrough(t, ctx, s, key, conf, user, packets, t0, period, &relayTransport{t: t, imp: imp})
	return stop
}

// publishThrough is publishOnSchedule through the relays rt makes. It also
// returns the capture time of the first packet it sends: the first slot
// after it connected, which on a loaded machine may be well after t0.
func publishThrough(t *testing.T, ctx context.Context, s *server, key, conf, user string, packets [][]byte, t0 time.Time, period time.Duration, rt *relayTransport) (stop func(), firstSent time.Time) {
	t.Helper()
	return publishAs(t, ctx, s, key, conf, user, opusCodec, packets, t0, period, rt)
}

// opusCodec and pcmuCodec are what a test publisher sends (publishAs).
var (
	opusCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	pcmuCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
)

// publishAs is publishThrough with packets of codec (20 ms each).
func publishAs(t *testing.T, ctx context.Context, s *server, key, conf, user string, codec webrtc.RTPCodecCapability, packets [][]byte, t0 time.Time, period time.Duration, rt *relayTransport) (stop func(), firstSent time.Time) {
	t.Helper()
	wapi, captured := publisherAPI(t)
	if rt.writeLag != nil {
		wapi = loopbackAPI(t, nil) // Pion's reports, stamped by its writes
	}
	track, err := webrtc.NewTrackLocalStaticSample(codec, "audio", user)
	if err != nil {
		t.Fatal(err)
	}
	c := &whip.Client{API: wapi, Token: key, HTTPClient: &http.Client{Transport: rt}}
	pub, err := c.Publish(ctx, whip.Endpoint(s.url, conf, user, "MIC"), track)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	var sent atomic.Int64             // packets the sender wrote
	var writing atomic.Bool           // the sender is in WriteSample
	var sendErr atomic.Pointer[error] // why the sender stopped, if it failed
	t.Cleanup(func() {                // before pub's Close
		if t.Failed() {
			stopped := "sending"
			if e := sendErr.Load(); e != nil {
				stopped = fmt.Sprintf("stopped: %v", *e)
			}
			t.Logf("%s's publisher: sender wrote %d packets (%s, in WriteSample now: %v); %s\n%s", user, sent.Load(), stopped, writing.Load(), publisherPath(pub.PC), rt)
		}
	})
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	first := 0
	if t0.IsZero() {
		t0 = time.Now()
	} else {
		first = max(int(time.Since(t0)/period)+1, 0)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	var late []time.Duration // per packet: written after its capture time by (the goroutine's, then stop's)
	go func() {
		defer close(done)
		for i := first; ; i++ {
			at := t0.Add(time.Duration(i) * period)
			due := at
			if rt.writeLag != nil {
				due = at.Add(rt.writeLag(at))
			}
			if d := time.Until(due); d > 0 {
				select {
				case <-quit:
					return
				case <-time.After(d):
				}
			}
			select {
			case <-quit:
				return
			default:
			}
			late = append(late, time.Since(at))
			captured(at)
			writing.Store(true)
			err := track.WriteSample(media.Sample{Data: packets[i%len(packets)], Duration: 20 * time.Millisecond})
			writing.Store(false)
			if err != nil {
				sendErr.Store(&err)
				return
			}
			rt.noteWrote(time.Now())
			sent.Add(1)
		}
	}()
	return func() {
		close(quit)
		<-done
		pub.Close(ctx)
		if len(late) > 0 {
			slices.Sort(late)
			q := func(f float64) time.Duration { return late[int(f*float64(len(late)-1))].Round(100 * time.Microsecond) }
			t.Logf("%s's sender wrote %d packets after their capture time by: median %v, 90th percentile %v, max %v", user, len(late), q(0.5), q(0.9), q(1))
		}
	}, t0.Add(time.Duration(first) * period)
}

// publisherPath tells the state of a publisher's connection, and its ICE
// candidate pairs with their candidates: which pair carries its media, and
// whether one bypasses the test's relay.
func publisherPath(pc *webrtc.PeerConnection) string {
	dtls := pc.SCTP().Transport()
	var b strings.Builder
	fmt.Fprintf(&b, "ICE %s, DTLS %s, connection %s", pc.ICEConnectionState(), dtls.State(), pc.ConnectionState())
	if p, err := dtls.ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
		fmt.Fprintf(&b, "; selected pair %s", p)
	}
	stats := pc.GetStats()
	candidate := func(id string) string {
		if c, ok := stats[id].(webrtc.ICECandidateStats); ok {
			return fmt.Sprintf("%s %s:%d", c.CandidateType, c.IP, c.Port)
		}
		return id
	}
	var pairs []string
	for _, s := range stats {
		if p, ok := s.(webrtc.ICECandidatePairStats); ok {
			pairs = append(pairs, fmt.Sprintf("\n  pair %s -> %s: %s, nominated %v, checks sent %d, answered %d, received %d; %d packets sent, %d received",
				candidate(p.LocalCandidateID), candidate(p.RemoteCandidateID), p.State, p.Nominated,
				p.RequestsSent, p.ResponsesReceived, p.RequestsReceived, p.PacketsSent, p.PacketsReceived))
		}
	}
	slices.Sort(pairs)
	b.WriteString(strings.Join(pairs, ""))
	return b.String()
}

// publisherAPI returns the Pion API of a test publisher on loopback (IPv4)
// whose RTCP sender reports map its timestamps to when it captured the audio,
// as a browser's do (they follow its capture clock): the publisher calls
// captured with each packet's capture time before it writes it. Pion's own
// reports stamp the last packet's timestamp with the time it was written:
// a publisher that writes late on a loaded machine (tens of ms) would report
// its audio late by as much, and the recorder, which places a track where
// its sender's reports say, would place it there.
func publisherAPI(t *testing.T) (api *webrtc.API, captured func(time.Time)) {
	t.Helper()
	var at atomic.Int64 // unix ns of the last packet's capture; 0: none yet
	now := func() time.Time {
		if ns := at.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
		return time.Now()
	}
	return loopbackAPI(t, nil, pionreport.SenderNow(now)), func(c time.Time) { at.Store(c.UnixNano()) }
}

// loopbackAPI returns the Pion API of a test publisher on loopback (IPv4)
// with NACK and Pion's RTCP sender reports (with opts), the RTCP they
// write going through below first, if set.
func loopbackAPI(t *testing.T, below interceptor.Factory, opts ...pionreport.SenderOption) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	ir := &interceptor.Registry{}
	if below != nil {
		ir.Add(below) // bound first: the report interceptor writes through it
	}
	reports, err := pionreport.NewSenderInterceptor(opts...)
	if err == nil {
		if err = me.RegisterDefaultCodecs(); err == nil {
			err = webrtc.ConfigureNack(me, ir)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	ir.Add(reports)
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// toneOnsets returns where the tone at freq begins in pcm (8 kHz), in 10 ms
// blocks where it is above -30 dBFS and 10 dB above the tone at other (the
// edges of the other participant's beeps leak into every filter), a gap of
// up to 30 ms inside a beep bridged.
func toneOnsets(pcm []int16, freq, other float64) []time.Duration {
	var on []bool
	for i := 0; i+80 <= len(pcm); i += 80 {
		l := mediatest.ToneLevel(pcm[i:i+80], 8000, freq)
		on = append(on, l > -30 && l > mediatest.ToneLevel(pcm[i:i+80], 8000, other)+10)
	}
	var out []time.Duration
	for i := range on {
		if on[i] && (i == 0 || !slices.Contains(on[max(i-3, 0):i], true)) {
			out = append(out, time.Duration(i)*10*time.Millisecond)
		}
	}
	return out
}

// TestServe_TwoParticipantsKeepTheirOffset records two real Pion publishers
// that beep on one capture clock, 300 ms apart: "a" publishes before the
// recording starts; "b" joins 1.5 s into it, and its first 400 ms reach the
// recorder at once (a relay holds them: the backlog a sender like GStreamer
// sends at connect, or a connection that stalls while it starts), so the
// recorder adds b's track only when that burst comes. In the mix every beep
// of b begins 300 ms after a's (within 20 ms: the offset by the senders'
// clock), and each track's beeps are where its file (placed at its
// mediaOffset) has them, within 20 ms.
func TestServe_TwoParticipantsKeepTheirOffset(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	// 600 and 1000 Hz: whole cycles in a 10 ms block, so neither leaks into
	// the other's Goertzel filter.
	const fa, fb, apart = 600.0, 1000.0, 300 * time.Millisecond
	pa, pb := beepPackets(t, fa), beepPackets(t, fb)
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const conf = "offset"
	t0 := time.Now().Add(200 * time.Millisecond)
	stopA := publishOnSchedule(t, ctx, s, key, conf, "a", pa, t0, 20*time.Millisecond, nil)
	var ev api.RecordingDataEvent
	if st := call(t, "POST", s.url+"/api/recordings/start", key, api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf}, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	burst := func(_ int, e time.Duration) (time.Duration, bool, bool) {
		if e < 400*time.Millisecond {
			return 400*time.Millisecond - e, false, false
		}
		return 0, false, false
	}
	stopB := publishOnSchedule(t, ctx, s, key, conf, "b", pb, t0.Add(apart), 20*time.Millisecond, burst)
	time.Sleep(5 * time.Second)
	stopRecording(t, s, key, conf, ev)
	stopA()
	stopB()
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	defer func() {
		if t.Failed() {
			for _, l := range s.stderr.Lines("mix pipeline", "first packet") {
				t.Log(l)
			}
		}
	}()
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	mix := wavSamples(t, mixData)
	mixEnd := time.Duration(len(mix)) * time.Second / 8000
	// A beep within 30 ms of the start of its track's file was cut off by
	// it (its onset is the file's start, not the beep's): left out.
	startOf := func(user string) time.Duration {
		i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool { return tr.UserID == user && strings.HasSuffix(tr.File, ".ogg") })
		if i < 0 {
			t.Fatalf("no Opus track of %s in the manifest: %+v", user, man.Tracks)
		}
		return time.Duration(fileZero(t, man.Tracks[i]) * float64(time.Second))
	}
	whole := func(on []time.Duration, user string) []time.Duration {
		z := startOf(user)
		return slices.DeleteFunc(on, func(o time.Duration) bool { return o < z+30*time.Millisecond })
	}
	ma, mb := whole(toneOnsets(mix, fa, fb), "a"), whole(toneOnsets(mix, fb, fa), "b")
	t.Logf("mix: a's beeps begin at %v, b's at %v (a's capture clock: beep k at %v + k s)", ma, mb, t0.Sub(man.Started).Round(time.Millisecond))
	if len(ma) < 6 || len(mb) < 4 {
		t.Fatalf("%d beeps of a and %d of b in the mix, want 6 and 4 or more", len(ma), len(mb))
	}
	// Each beep where its sender captured it: participant a's k-th beep at
	// t0 + k s on the capture clock (b's 300 ms later), plus the encoder's
	// delay (libopus pre-skip, 312 samples at 48 kHz: 6.5 ms), within
	// 20 ms (the onsets are in 10 ms blocks).
	for _, tc := range []struct {
		user  string
		first time.Duration
		mix   []time.Duration
	}{{"a", t0.Sub(man.Started), ma}, {"b", t0.Add(apart).Sub(man.Started), mb}} {
		for _, o := range tc.mix {
			if o < 100*time.Millisecond {
				continue // a beep cut off by the recording's time zero
			}
			k := (o - tc.first + 500*time.Millisecond).Truncate(time.Second)
			if d := o - (tc.first + k + 6500*time.Microsecond); d.Abs() > 20*time.Millisecond {
				t.Errorf("%s's beep at %v in the mix, captured at %v: %v off", tc.user, o, tc.first+k, d)
			}
		}
	}
	for _, b := range mb {
		i := slices.IndexFunc(ma, func(a time.Duration) bool { return b-a >= 0 && b-a < time.Second })
		if i < 0 {
			t.Errorf("b's beep at %v: no beep of a in the second before it", b)
			continue
		}
		if d := b - ma[i] - apart; d.Abs() > 20*time.Millisecond {
			t.Errorf("b's beep at %v, a's at %v: %v apart, want %v (within 20 ms)", b, ma[i], b-ma[i], apart)
		}
	}
	// The mix lacks none of the 20 ms windows where a track file has its
	// tone (issue 10's measure).
	for _, tc := range []struct {
		user        string
		freq, other float64
	}{{"a", fa, fb}, {"b", fb, fa}} {
		with, lacks := windowsMixLacks(t, objects, man, tc.user, tc.freq, tc.other)
		t.Logf("%s: the track has its tone in %d windows of 20 ms, the mix lacks %d", tc.user, with, lacks)
		if with < 40 || lacks > 0 { // 5 beeps of b at least, 8–10 windows each
			t.Errorf("%s: the mix lacks %d of the %d windows where the track has its tone", tc.user, lacks, with)
		}
	}
	// Each track file, placed at its mediaOffset, has its beeps where the
	// mix has them.
	for _, tc := range []struct {
		user        string
		freq, other float64
		mix         []time.Duration
	}{{"a", fa, fb, ma}, {"b", fb, fa, mb}} {
		i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool {
			return tr.UserID == tc.user && strings.HasSuffix(tr.File, ".ogg")
		})
		if i < 0 {
			t.Fatalf("no Opus track of %s in the manifest: %+v", tc.user, man.Tracks)
		}
		tr := man.Tracks[i]
		zero := time.Duration(fileZero(t, tr) * float64(time.Second))
		// From 100 ms on: a beep the recording's time zero cut off begins
		// there in the mix, before it in the file. Up to 30 ms before the
		// mix's end, in both: a beep the stop cut off there is too short in the mix
		// for an onset (10 ms blocks), and the file may hold more of it
		// (what reached the machine before the stop: 15-20 ms before the
		// mix's end, 'N beeps in the file, N-1 in the mix' in 4 of 110
		// runs under load).
		var file, mix []time.Duration
		for _, o := range toneOnsets(mediatest.Decode(t, objects[tr.File], 8000), tc.freq, tc.other) {
			if o+zero >= 100*time.Millisecond && o >= 30*time.Millisecond && o+zero < mixEnd-30*time.Millisecond {
				file = append(file, o+zero)
			}
		}
		for _, o := range tc.mix {
			if o >= 100*time.Millisecond && o < mixEnd-30*time.Millisecond {
				mix = append(mix, o)
			}
		}
		t.Logf("%s's file (mediaOffset %v): beeps at %v", tc.user, zero.Round(time.Millisecond), file)
		if len(file) != len(mix) {
			t.Errorf("%s: %d beeps in the file, %d in the mix", tc.user, len(file), len(mix))
			continue
		}
		for k := range file {
			if d := mix[k] - file[k]; d.Abs() > 20*time.Millisecond {
				t.Errorf("%s's beep %d: at %v in the mix, %v in the file (%v apart)", tc.user, k, mix[k], file[k], d)
			}
		}
	}
}

// mixAgreesWithTrack checks that the beeps (a tone at freq) of a recording's
// audio track, in its file placed at its mediaOffset and moved by its
// timing's steps (composition.TrackTiming.Steps: where the live mix moved
// it, as the offline mix and the composite place it), begin in the
// mix where they begin in the file so placed, within 20 ms, before and after
// any pause (the recording's pause behavior is silence: mix positions are
// the timeline's), and that the mix has no beep the file lacks. Onsets are
// taken in 10 ms windows stepped by 1 ms, the same way in both. It returns
// the mix's onsets.
func mixAgreesWithTrack(t *testing.T, dir, instanceID string, freq float64) []time.Duration {
	t.Helper()
	objects, man := recordingFiles(t, dir, instanceID)
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	// A beep that begins within 100 ms after a pause's end is left out:
	// after the gap libopus (decoding the file) fades the tone in over about
	// 60 ms, pion/opus (the mix) does not (see soundBlocks). So is one found
	// up to 25 ms before the end: a beep the pause cut sounds on from the
	// resume, in the mix from the resume to the sample, in the track file
	// from the packet that straddles it (kept whole: up to 20 ms before),
	// and an onset is a window's centre (below), up to 5 ms before the
	// sound's first sample; the tail is no beep's onset (Slips, session 14:
	// a beep begun 30 ms before the resume "+33 ms from the sender's
	// clock", and the file's tail 12 ms before the resume; session 13,
	// lead's runs: +135, +176 ms).
	afterGap := func(at time.Duration) bool {
		for _, p := range man.Pauses {
			if d := at - time.Duration(p.End*float64(time.Second)); d >= -25*time.Millisecond && d < 100*time.Millisecond {
				return true
			}
		}
		return false
	}
	// Nor is one that begins within 30 ms of the mix's end: the mix ends at
	// the stop to the sample, the track file keeps the whole packet the stop
	// falls in (up to 20 ms more), so a beep that begins just before the stop
	// is whole in the file and a few ms long in the mix, too short to be
	// found (a stop 0.5 and 2.5 ms after a beep's onset: "4 beeps in the
	// track file, 3 in the mix"); with the mix's placement up to 20 ms off
	// the file's, within 30 ms of the end (session 9's Chromium run: "9 beeps
	// in the track file, 8 in the mix", the last at 10.09 s).
	mixPCM := wavSamples(t, mixData)
	end := time.Duration(len(mixPCM))*time.Second/8000 - 30*time.Millisecond
	// place gives where a beep whose onset lies at (seconds into its pcm)
	// is placed; the filters above hold for that.
	onsets := func(pcm []int16, place func(at time.Duration) time.Duration) []time.Duration {
		var out []time.Duration
		last := -time.Second
		for i := 0; i+80 <= len(pcm); i += 8 {
			at := time.Duration(i+40) * time.Second / 8000
			if mediatest.ToneLevel(pcm[i:i+80], 8000, freq) > -30 {
				if p := place(at); at-last > 100*time.Millisecond && p >= 100*time.Millisecond && p <= end && !afterGap(p) {
					out = append(out, p)
				}
				last = at
			}
		}
		return out
	}
	mix := onsets(mixPCM, func(at time.Duration) time.Duration { return at })
	for _, tr := range man.Tracks {
		if tr.Kind != "AUDIO" {
			continue
		}
		zero := time.Duration(fileZero(t, tr) * float64(time.Second))
		steps := tr.Timing.Steps()
		// Where the file's placement puts a beep: by the step its first
		// sample is in. An onset is a window's centre, found once the
		// window holds 2-3 ms of the beep (-30 dB of a -15 dBFS tone): the
		// beep's first sample is up to half a window (5 ms) after it. (The
		// live mix takes a step at the report that confirms it, and this
		// publisher's reports come in phase with its beeps: one step began
		// 3 ms after an onset, at the beep's first sample.)
		place := func(at time.Duration) time.Duration {
			return zero + at + time.Duration(composition.StepAt(steps, (at+5*time.Millisecond).Seconds())*float64(time.Second))
		}
		pcm := mediatest.Decode(t, objects[tr.File], 8000)
		file := onsets(pcm, place)
		// A beep already sounding when the track began is cut by the
		// track's start, not an onset: it is left out of the file and of
		// the mix alike (a Chromium track began 95 ms into the recording
		// during a beep: by its file at 100 ms, kept, in the mix a ms
		// earlier, left out by the 100 ms filter: "10 beeps in the track
		// file, 9 in the mix").
		if len(pcm) >= 80 && mediatest.ToneLevel(pcm[:80], 8000, freq) > -30 {
			cut := place(5 * time.Millisecond) // the first window's centre
			file, mix = withoutNear(file, cut), withoutNear(mix, cut)
		}
		t.Logf("%s's audio: beeps at %v by its file (mediaOffset %v, steps %v), at %v in the mix", tr.UserID, file, zero.Round(time.Millisecond), steps, mix)
		if len(file) != len(mix) {
			t.Errorf("%d beeps in the track file, %d in the mix", len(file), len(mix))
			continue
		}
		for k := range file {
			if d := mix[k] - file[k]; d.Abs() > 20*time.Millisecond {
				t.Errorf("beep %d: at %v in the mix, %v in the track file: %v apart", k, mix[k], file[k], d)
			}
		}
	}
	return mix
}

// withoutNear returns onsets without those within 20 ms of at.
func withoutNear(onsets []time.Duration, at time.Duration) []time.Duration {
	var out []time.Duration
	for _, o := range onsets {
		if (o - at).Abs() > 20*time.Millisecond {
			out = append(out, o)
		}
	}
	return out
}

// windowsMixLacks compares, in 20 ms windows, user's audio track file (placed
// at its mediaOffset) with the mix: the windows of the track within the
// recording where its tone at freq is (above -30 dBFS and 10 dB above the
// tone at other), and those of them where the mix lacks it (a window next
// to two with it counts as there: the edges of a beep).
func windowsMixLacks(t *testing.T, objects map[string]string, man composition.Manifest, user string, freq, other float64) (with, lacks int) {
	t.Helper()
	i := slices.IndexFunc(man.Tracks, func(tr composition.Track) bool {
		return tr.UserID == user && (strings.HasSuffix(tr.File, ".ogg") || strings.HasSuffix(tr.File, ".wav"))
	})
	if i < 0 {
		t.Fatalf("no audio track of %s", user)
	}
	mixData, err := os.ReadFile(objects[composition.MixFile])
	if err != nil {
		t.Fatal(err)
	}
	// The track's windows with the tone: above -20 dBFS (the beep is at
	// -6 dBFS; libopus, decoding the file, rings below that for a window
	// after a beep ends, where pion/opus, decoding the mix, does not).
	windows := func(pcm []int16, floor float64) []bool {
		var out []bool
		for i := 0; i+160 <= len(pcm); i += 160 {
			l := mediatest.ToneLevel(pcm[i:i+160], 8000, freq)
			out = append(out, l > floor && l > mediatest.ToneLevel(pcm[i:i+160], 8000, other)+10)
		}
		return out
	}
	mix := windows(wavSamples(t, mixData), -30)
	track := windows(mediatest.Decode(t, objects[man.Tracks[i].File], 8000), -20)
	offset := int(math.Round(fileZero(t, man.Tracks[i]) * 50))
	var at []string
	for k := 1; k < len(track)-1; k++ { // the file's edge windows may be partial
		m := offset + k
		if !track[k] || m < 1 || m >= len(mix)-1 {
			continue // before time zero or after the mix's end: not the recording's
		}
		with++
		// A beep's first or last window: the file's windows sit on the mix's
		// grid only to the nearest window (offset is rounded), up to 10 ms
		// off, so that window may fall just past the mix's edge window.
		edge := !track[k-1] || !track[k+1]
		if !mix[m] && !(mix[m-1] && mix[m+1]) && !(edge && (mix[m-1] || mix[m+1])) {
			lacks++
			at = append(at, fmt.Sprintf("%.2f", float64(m)/50))
		}
	}
	if len(at) > 0 {
		t.Logf("%s: the mix lacks the tone at %v s", user, at)
	}
	return with, lacks
}
