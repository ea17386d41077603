package main

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/media/g711"
)

// TestServe_DeferredDecodeHoldsBothTracks records two real Pion publishers
// through impairing relays with a 2 s budget: "late" stalls for 1.5 s and
// then delivers the stall in a burst, so the mixer waits for it; meanwhile
// "a", in step, queues its packets undecoded (media/deferred.go: the memory
// of the budget); 1.4 s into late's stall a stalls too, for 1.6 s, so the
// audio it queued in time is decoded only by its reader's ticks (it reads
// with a deadline while packets are deferred): without them the mixer would
// give up waiting for it 2 s after it was due, before a's next packet. The
// mix has each tone wherever its track file has it, and a's pipeline
// deferred packets. The same with a publishing G.711 (PCMU), whose pipeline
// defers too (a G.711 track's ring held the whole budget before).
func TestServe_DeferredDecodeHoldsBothTracks(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time media test")
	}
	t.Run("opus", func(t *testing.T) { deferredHoldsBothTracks(t, opusCodec) })
	t.Run("pcmu", func(t *testing.T) { deferredHoldsBothTracks(t, pcmuCodec) })
}

// pcmuBeepPackets is beepPackets in PCMU: 50 packets of 20 ms, a 200 ms
// beep at freq Hz (-6 dBFS) and 800 ms of silence.
func pcmuBeepPackets(freq float64) [][]byte {
	out := make([][]byte, 50)
	for i := range out {
		p := make([]byte, 160)
		for j := range p {
			n := i*160 + j
			v := 0.0
			if n < 1600 {
				v = 16384 * math.Sin(2*math.Pi*freq*float64(n)/8000)
			}
			p[j] = g711.EncodeMuLaw(int16(v))
		}
		out[i] = p
	}
	return out
}

func deferredHoldsBothTracks(t *testing.T, codec webrtc.RTPCodecCapability) {
	const fa, fl = 600.0, 1000.0
	pa, pl := beepPackets(t, fa), beepPackets(t, fl)
	if codec.MimeType == webrtc.MimeTypePCMU {
		pa = pcmuBeepPackets(fa)
	}
	dir := t.TempDir()
	s := serveProcess(t, dir)
	key := readKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const conf = "deferred"
	// stallAt returns an impairment that holds what is sent from the
	// instant stored in from (unix ns, 0: not yet) for d, and releases it
	// at that very instant by the relay's clock (in the order it came).
	stallAt := func(from *atomic.Int64, d time.Duration) impairment {
		var t0 int64 // the relay's first packet, unix ns (relay goroutine)
		return func(_ int, elapsed time.Duration) (time.Duration, bool, bool) {
			if t0 == 0 {
				t0 = time.Now().UnixNano() - int64(elapsed)
			}
			if f := from.Load(); f != 0 {
				return max(time.Duration(f+int64(d)-(t0+int64(elapsed))), 0), false, false
			}
			return 0, false, false
		}
	}
	var lateFrom, aFrom atomic.Int64
	t0 := time.Now().Add(200 * time.Millisecond)
	stopPubA, _ := publishAs(t, ctx, s, key, conf, "a", codec, pa, t0, 20*time.Millisecond, &relayTransport{t: t, imp: stallAt(&aFrom, 1600*time.Millisecond)})
	stopA := sync.OnceFunc(stopPubA)
	defer stopA()
	stopL := sync.OnceFunc(publishOnSchedule(t, ctx, s, key, conf, "late", pl, t0.Add(300*time.Millisecond), 20*time.Millisecond, stallAt(&lateFrom, 1500*time.Millisecond)))
	defer stopL()
	var ev api.RecordingDataEvent
	req := api.StartRecording{ApplicationID: "a", ConferenceID: conf, ConversationID: conf, Mix: &config.MixSettings{Latency: 2 * time.Second}}
	if st := call(t, "POST", s.url+"/api/recordings/start", key, req, &ev); st != 200 {
		t.Fatalf("start: %d", st)
	}
	time.Sleep(1500 * time.Millisecond)
	lateFrom.Store(time.Now().UnixNano())
	time.Sleep(1400 * time.Millisecond)
	aFrom.Store(time.Now().UnixNano())
	time.Sleep(1600*time.Millisecond + 2500*time.Millisecond)
	stopRecording(t, s, key, conf, ev)
	stopA()
	stopL()
	objects, man := recordingFiles(t, dir, ev.InstanceID)
	defer func() {
		if t.Failed() {
			for _, l := range s.stderr.Lines("late", "anchor", "track", "stream", "whip") {
				t.Log(l)
			}
		}
	}()
	lines := s.stderr.Lines("track's mix pipeline")
	for _, l := range lines {
		t.Log(l)
	}
	deferred := map[string]int{}
	re := regexp.MustCompile(`userId=(\S+).* deferred=(\d+)`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			deferred[m[1]], _ = strconv.Atoi(m[2])
		}
	}
	if deferred["a"] == 0 {
		t.Errorf("a's pipeline deferred no packet while the mixer waited for late (%v): the test does not test deferring", deferred)
	}
	for _, tc := range []struct {
		user        string
		freq, other float64
	}{{"a", fa, fl}, {"late", fl, fa}} {
		with, lacks := windowsMixLacks(t, objects, man, tc.user, tc.freq, tc.other)
		t.Logf("%s: the track has its tone in %d windows of 20 ms, the mix lacks %d of them", tc.user, with, lacks)
		if with < 60 || lacks > 0 {
			t.Errorf("%s: the mix lacks the tone in %d of the track's %d windows with it", tc.user, lacks, with)
		}
	}
}
