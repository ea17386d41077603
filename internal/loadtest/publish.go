package loadtest

import (
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// packetTime is the duration of one Opus packet the publishers send.
const packetTime = 20 * time.Millisecond

// stream is one published Opus track: the sender loop writes the source's
// packets to it in real time, each stream from its own place in the source.
type stream struct {
	track  *webrtc.TrackLocalStaticRTP
	offset int // index in the source of the next packet
	seq    uint16
	ts     uint32
	sent   int
	next   time.Time // when the next packet is due
}

// sender sends every added stream's packets every 20 ms, one goroutine for
// all of them, spread over four 5 ms slots so that the receiver does not
// get every packet of a 20 ms period at once.
type sender struct {
	source [][]byte
	mu     sync.Mutex
	all    []*stream
	stop   chan struct{}
	done   chan struct{}
}

func newSender(source [][]byte) *sender {
	s := &sender{source: source, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// add starts sending on track: its packets are spread over the source by n,
// the stream's number, so that streams do not speak in unison.
func (s *sender) add(track *webrtc.TrackLocalStaticRTP, n int) {
	st := &stream{track: track, offset: (n * 97) % len(s.source), seq: uint16(n * 1000), ts: uint32(n) * 48000,
		next: time.Now().Add(time.Duration(n%4) * 5 * time.Millisecond)}
	s.mu.Lock()
	s.all = append(s.all, st)
	s.mu.Unlock()
}

func (s *sender) run() {
	defer close(s.done)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var pkt rtp.Packet
	var snapshot []*stream
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.mu.Lock()
			snapshot = append(snapshot[:0], s.all...)
			s.mu.Unlock()
			for _, st := range snapshot {
				// Catch up when ticks come late, so each stream follows real time.
				for !st.next.After(now) {
					pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: st.seq, Timestamp: st.ts, Marker: st.sent == 0}
					pkt.Payload = s.source[st.offset]
					_ = st.track.WriteRTP(&pkt) // before the connection is up it is dropped, as a browser's would be
					st.offset = (st.offset + 1) % len(s.source)
					st.seq++
					st.ts += 960
					st.sent++
					st.next = st.next.Add(packetTime)
				}
			}
		}
	}
}

// close stops the sender loop; idempotent.
func (s *sender) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// publisherAPI returns the Pion API of the publishers: Opus only, RTCP sender
// reports (as a browser sends), host candidates over UDP4 on iface only.
func publisherAPI(iface string) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetInterfaceFilter(func(name string) bool { return name == iface })
	se.SetIPFilter(func(ip net.IP) bool { return ip.To4() != nil })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// newOpusTrack returns a local Opus track for stream n.
func newOpusTrack(n int) (*webrtc.TrackLocalStaticRTP, error) {
	return webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"audio", streamName(n))
}
