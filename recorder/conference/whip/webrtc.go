package whip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Settings configure the ICE agent and media of every PeerConnection the WHIP
// endpoint (or a Client) makes.
type Settings struct {
	Interfaces      []string // gather only on these interfaces; all when empty
	IncludeLoopback bool     // offer loopback candidates (tests, one-host set-ups)
	PortMin         uint16   // ephemeral UDP port range; both zero: any port
	PortMax         uint16
	UDPMux          string // "host:port": one UDP socket for every connection (overrides the range); ":port": one on every address ICE gathers on
	// UDPMuxFallback: when the mux's socket gets less receive buffer than
	// udpMuxMinBuffer (no CAP_NET_ADMIN and a low net.core.rmem_max), use a
	// socket per connection instead, and log it: one small buffer shared by
	// every connection drops packets at the first stall of the process.
	// For the default mux; a configured one is used as asked (and warned of).
	UDPMuxFallback bool
	NATIPs         []string // public addresses advertised as host candidates behind 1:1 NAT
	UDP4Only       bool     // gather IPv4 only
	LoopbackOnly   bool     // gather only loopback addresses (demo, tests): implies IncludeLoopback
	// VideoBitrate, when positive, negotiates REMB (goog-remb) for video in
	// NewAPIs' answers: the WHIP endpoint then asks every video sender for
	// this many bits per second (Options.VideoBitrate).
	VideoBitrate uint64
	// Log, when set, hears of the UDP mux's addresses, and of its receive
	// buffer when smaller than asked.
	Log *slog.Logger
	// DTLSServer makes the answering side the DTLS server: for dial-out
	// adapters that answer a platform's offer (Janus starts DTLS at once).
	DTLSServer bool
	// Streams is the instance's capacity (capacity.streams; 0: not set):
	// the UDP mux's receive buffer is sized for that many streams
	// (muxReadBuffer).
	Streams int
	// Receipts, when set, keeps the kernel's receive time of each RTP
	// packet on the UDP mux, for the WHIP endpoint's tracks
	// (Options.Receipts, conference.ArrivalReader).
	Receipts *Receipts
	// DirectAudio: with the UDP mux, the mux's socket reader decrypts the
	// SRTP of offers without video itself and hands each RTP packet to its
	// track, instead of Pion's three goroutines per packet
	// (directaudio.go); the recorder then answers them as the DTLS server.
	DirectAudio bool
}

// udpMuxReadBuffer is the least receive buffer asked for the UDP mux's
// socket: about a second of 400 Opus streams (50 packets a second each,
// about 1 KiB of kernel memory per datagram). It is a bound, not an
// allocation: the kernel holds only what waits to be read. A socket per
// connection has net.core.rmem_default each (208 KiB on most hosts).
const udpMuxReadBuffer = 16 << 20

// muxBufferPerStream is the UDP mux's receive buffer per stream of the
// instance's capacity: the latency budget's 5 s of an Opus stream (250
// datagrams) at 2 KiB of kernel memory each (a network card's buffer for a
// small datagram; 832 bytes on loopback). A recorder stalled for up to the
// budget then finds every datagram still queued when it runs again, and
// those that came too late for the mix are dropped as late (counted, and in
// the track files) instead of by the kernel.
const muxBufferPerStream = 250 * 2048

// muxReadBuffer is the receive buffer asked for each of the mux's sockets
// for a capacity of streams (0: not set): muxBufferPerStream each, at least
// udpMuxReadBuffer, at most 1 GiB.
func muxReadBuffer(streams int) int {
	return min(max(udpMuxReadBuffer, streams*muxBufferPerStream), 1<<30)
}

// udpMuxMinBuffer is the least receive buffer the default mux (Settings.
// UDPMuxFallback) takes: about 200 ms of 400 Opus streams. Per-connection
// sockets ask for connReadBuffer each instead.
const udpMuxMinBuffer = 4 << 20

// readBuffer sets a socket's receive buffer (setReadBuffer; the tests stand
// in for a host that grants less).
var readBuffer = setReadBuffer

// errMuxBuffer is newUDPMux's error when the mux would get less receive
// buffer than udpMuxMinBuffer and Settings.UDPMuxFallback is set.
var errMuxBuffer = errors.New("whip: the UDP mux's receive buffer is too small")

// NewAPI returns a Pion API configured by s, for a peer that may send (the
// WHIP Client, the dial-out adapters): the codecs the recorder can write
// (Opus, PCMU, PCMA, VP8, VP9, H.264), NACK and RTCP receiver/sender reports,
// and no congestion-control feedback (transport-wide feedback was a third of
// Pion's receive cost). The returned close function releases a UDP mux, if
// any.
func NewAPI(s Settings) (api *webrtc.API, closeFn func() error, err error) {
	se, _, closeFn, err := settingEngine(s)
	if err != nil {
		return nil, nil, err
	}
	me := &webrtc.MediaEngine{}
	ir := &interceptor.Registry{}
	if err = registerCodecs(me, false); err == nil {
		if err = webrtc.ConfigureNack(me, ir); err == nil {
			err = webrtc.ConfigureRTCPReports(ir)
		}
	}
	if err != nil {
		_ = closeFn()
		return nil, nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), closeFn, nil
}

// ReceiveAPI makes the WHIP endpoint's receive-only PeerConnections. Each
// gets a Pion API of its own (696 bytes), sharing the codecs, interceptors
// and settings (and UDP mux), whose SettingEngine.BufferFactory gives its
// SRTP and SRTCP streams conference.PushBuffers: srtp's session goroutines
// hand every packet to the track's consumer (conference.RTPPusher), and no
// goroutine per track waits for packets.
type ReceiveAPI struct {
	se     webrtc.SettingEngine
	socks  sockets
	me     *webrtc.MediaEngine
	nack   interceptor.Factory // the NACK generator's (video); nil: none
	direct bool                // the UDP mux decrypts and hands over the audio (Settings.DirectAudio)
}

// NewPeerConnection returns a PeerConnection of cfg whose streams' buffers
// bufs makes. closed (if not nil) is called once the peer's DTLS alert
// arrives (its close_notify: closenotify.go).
func (r *ReceiveAPI) NewPeerConnection(cfg webrtc.Configuration, bufs *conference.PushBuffers, closed func()) (*webrtc.PeerConnection, error) {
	se := r.se
	// srtp's replay detector shifts a 4096-bit mask per packet: off, and
	// each SRTP stream's buffer makes the same decisions (replay.go), and
	// counts its packets for the receiver reports (rr.go).
	rr := &rrInterceptor{}
	se.BufferFactory = replayBuffers(bufs, rr)
	se.DisableSRTPReplayProtection(true)
	ir := &interceptor.Registry{}
	if r.nack != nil {
		ir.Add(r.nack)
	}
	ir.Add(rrFactory{rr})
	mux := r.socks.mux
	if m, ok := mux.(*udpMux); ok && r.direct {
		audio := newDirectAudio(bufs)
		if err := audio.watch(&se); err != nil {
			return nil, err
		}
		mux = directMux{m, audio}
		se.SetICEUDPMux(mux)
	}
	if closed != nil {
		w := &alertWatch{closed: closed}
		if mux != nil {
			se.SetICEUDPMux(watchedMux{mux, w})
		} else {
			se.SetNet(watchedNet{r.socks.net, w})
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(r.me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(cfg)
}

// NewAPIs returns the two receive-only APIs of the WHIP endpoint,
// configured by s and sharing one setting engine (and UDP mux): video, for
// offers with video, and audio, for offers without. Both have NewAPI's codecs
// and RTCP receiver reports (our own, rr.go) but none of a sender's
// interceptors: the
// endpoint sends no media, so Pion's RTCP sender reports and NACK responder
// (a goroutine and a ticker, and a retransmission buffer, per connection)
// would do nothing. audio also lacks the NACK generator, whose goroutine and
// 100 ms ticker per connection only serve video (audio is negotiated without
// NACK).
func NewAPIs(s Settings) (video, audio *ReceiveAPI, closeFn func() error, err error) {
	se, socks, closeFn, err := settingEngine(s)
	if err != nil {
		return nil, nil, nil, err
	}
	// A publisher that hangs up sends DTLS close_notify, which would make
	// Pion close the connection at once: the packets it sent before, and
	// that the recorder has not read yet (a recorder short of CPU reads its
	// sockets seconds behind), would be lost. The session ends by its DELETE
	// instead (its tracks read what came first: Adapter.leave), or by the
	// close_notify seen on its sockets (closenotify.go), as a DELETE.
	se.DisableCloseByDTLS(true)
	newAPI := func(withNACK, direct bool) (*ReceiveAPI, error) {
		me := &webrtc.MediaEngine{}
		if err := registerCodecs(me, s.VideoBitrate > 0); err != nil {
			return nil, err
		}
		api := &ReceiveAPI{se: se, socks: socks, me: me, direct: direct}
		if withNACK {
			gen, err := nack.NewGeneratorInterceptor()
			if err != nil {
				return nil, err
			}
			api.nack = gen
		}
		// Receiver reports: rr.go, one per PeerConnection
		// (NewPeerConnection); Pion's report interceptor costs a sixth of
		// the CPU.
		return api, nil
	}
	if video, err = newAPI(true, false); err == nil {
		audio, err = newAPI(false, s.DirectAudio)
	}
	if err != nil {
		_ = closeFn()
		return nil, nil, nil, err
	}
	return video, audio, closeFn, nil
}

// sockets are where the ICE agents of a setting engine get their sockets:
// the UDP mux, if any, else the network (always set).
type sockets struct {
	mux ice.UDPMux
	net transport.Net
}

// settingEngine returns the Pion settings of s, their sockets, and the
// close function of its UDP mux, if any.
func settingEngine(s Settings) (se webrtc.SettingEngine, socks sockets, closeFn func() error, err error) {
	if s.DTLSServer {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return se, socks, nil, err
		}
	}
	se.LoggerFactory = newSharedLoggers()
	se.SetSRTPReplayProtectionWindow(conference.SRTPReplayWindow)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.IncludeLoopback || s.LoopbackOnly)
	skip6Loopback := hasIPv4Loopback()
	se.SetIPFilter(func(ip net.IP) bool {
		if skip6Loopback && ip.IsLoopback() && ip.To4() == nil {
			return false // hasIPv4Loopback
		}
		return !s.LoopbackOnly || ip.IsLoopback()
	})
	if s.UDP4Only {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	if len(s.Interfaces) > 0 {
		keep := map[string]bool{}
		for _, n := range s.Interfaces {
			keep[n] = true
		}
		se.SetInterfaceFilter(func(name string) bool { return keep[name] })
	}
	if len(s.NATIPs) > 0 {
		se.SetNAT1To1IPs(s.NATIPs, webrtc.ICECandidateTypeHost)
	}
	closeFn = func() error { return nil }
	muxed := false
	if s.UDPMux != "" {
		mux, err := newUDPMux(s)
		switch {
		case errors.Is(err, errMuxBuffer) && s.UDPMuxFallback:
			if s.Log != nil {
				s.Log.Warn("WebRTC media: a socket per connection, not one UDP socket for all (the default webrtc.udpMux), "+
					"as the kernel grants that socket too small a receive buffer: raise net.core.rmem_max to 16 MiB or more, "+
					"or run with CAP_NET_ADMIN, for the cheaper mux", "error", err)
			}
		case err != nil:
			return se, socks, nil, err
		default:
			se.SetICEUDPMux(mux)
			socks.mux = mux
			closeFn = mux.Close
			muxed = true
			// One network for every agent: by default each lists the
			// host's interfaces and keeps them (7 KB per connection);
			// with the mux its candidates come from the mux's sockets.
			n, err := stdnet.NewNet()
			if err != nil {
				_ = mux.Close()
				return se, socks, nil, fmt.Errorf("whip: network: %w", err)
			}
			se.SetNet(n)
			socks.net = n
		}
	}
	if !muxed && (s.PortMin != 0 || s.PortMax != 0) {
		if err := se.SetEphemeralUDPPortRange(s.PortMin, s.PortMax); err != nil {
			return se, socks, nil, fmt.Errorf("whip: udp port range: %w", err)
		}
	}
	if !muxed {
		// Each connection's own socket gets a receive buffer for the
		// seconds a starved recorder may fall behind (readbuffer.go).
		n, err := newReadBufferNet(connReadBuffer)
		if err != nil {
			return se, socks, nil, fmt.Errorf("whip: network: %w", err)
		}
		se.SetNet(n)
		socks.net = n
	}
	return se, socks, closeFn, nil
}

// newUDPMux listens on s.UDPMux: one socket, or with an empty host one socket
// on every address the ICE agent would gather on (s's interface, loopback
// and IPv4 filters: a mux's candidates come from its sockets, not from the
// agent's filters), all on the port given (0: an ephemeral port each).
func newUDPMux(s Settings) (ice.UDPMux, error) {
	host, port, err := net.SplitHostPort(s.UDPMux)
	if err != nil {
		return nil, fmt.Errorf("whip: udpMux %q: %w", s.UDPMux, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("whip: udpMux %q: bad port", s.UDPMux)
	}
	var addrs []*net.UDPAddr
	ip := net.ParseIP(host)
	switch {
	case host != "" && ip == nil:
		return nil, fmt.Errorf("whip: udpMux %q: the host is not an IP address", s.UDPMux)
	case host != "" && !ip.IsUnspecified():
		addrs = []*net.UDPAddr{{IP: ip, Port: int(p)}}
	default:
		// Every address ICE gathers on (0.0.0.0: every IPv4 one), each
		// with its socket: a datagram's socket tells its local address.
		if ip != nil && ip.To4() != nil {
			s.UDP4Only = true
		}
		if addrs, err = gatherAddrs(s, int(p)); err != nil {
			return nil, fmt.Errorf("whip: udpMux: %w", err)
		}
	}
	var conns []datagramConn
	var listening []string
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for _, a := range addrs {
		conn, err := net.ListenUDP("udp", a)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("whip: udpMux: %w", err)
		}
		// Every connection's packets queue on this one socket: give it a
		// receive buffer for a burst of them, and read them in batches
		// (udpbatch_linux.go).
		want := muxReadBuffer(s.Streams)
		got := readBuffer(conn, want)
		if got < udpMuxMinBuffer && s.UDPMuxFallback {
			conn.Close()
			closeAll()
			return nil, fmt.Errorf("%w: %d bytes on %s, want %d or more", errMuxBuffer, got, a, udpMuxMinBuffer)
		}
		if got < want && s.Log != nil {
			s.Log.Warn("the UDP mux's receive buffer is smaller than asked: a burst the recorder cannot read at once "+
				"(a CPU stall) is dropped sooner; raise net.core.rmem_max or run with CAP_NET_ADMIN",
				"address", conn.LocalAddr().String(), "askedBytes", want, "gotBytes", got)
		}
		bc, err := newBatchConn(conn)
		if err != nil {
			conn.Close()
			closeAll()
			return nil, fmt.Errorf("whip: udpMux: %w", err)
		}
		conns = append(conns, bc)
		listening = append(listening, conn.LocalAddr().String())
	}
	if s.Log != nil {
		s.Log.Info("WebRTC media: one UDP socket for every connection (webrtc.udpMux)", "addresses", listening)
	}
	workers := 0
	if s.DirectAudio {
		workers = directWorkers()
	}
	return newMux(conns, s.Receipts, workers, handQueueSlots(s.Streams, workers)), nil
}

// hasIPv4Loopback reports whether the host has an IPv4 loopback address.
// Where it has, ICE leaves out the IPv6 loopback address (oneLoopback): a
// peer on this host reaches 127.0.0.1 as well as ::1, and a second loopback
// candidate costs every connection a second candidate reader (a goroutine
// and its 8 KiB buffer in pion/ice) and, with the UDP mux, a second
// connection and its queue: about 17 KB per stream (issue 16).
func hasIPv4Loopback() bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsLoopback() && n.IP.To4() != nil {
			return true
		}
	}
	return false
}

// gatherAddrs returns the addresses, with port, of every up interface that
// s lets ICE gather on: loopback only when included (only loopback with
// LoopbackOnly; ::1 only without 127.0.0.1: hasIPv4Loopback), s.Interfaces
// when set, IPv6 unless UDP4Only (global and unique-local unicast only: a
// link-local candidate needs its zone).
func gatherAddrs(s Settings, port int) ([]*net.UDPAddr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	keep := func(name string) bool { return len(s.Interfaces) == 0 || slices.Contains(s.Interfaces, name) }
	skip6Loopback := hasIPv4Loopback()
	var addrs []*net.UDPAddr
	for _, ifc := range ifaces {
		loopback := ifc.Flags&net.FlagLoopback != 0
		if ifc.Flags&net.FlagUp == 0 || !keep(ifc.Name) || (loopback && !s.IncludeLoopback && !s.LoopbackOnly) ||
			(!loopback && s.LoopbackOnly) {
			continue
		}
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip := n.IP
			if ip.To4() == nil && (s.UDP4Only || !ip.IsGlobalUnicast() && !ip.IsLoopback()) {
				continue
			}
			if s.LoopbackOnly && !ip.IsLoopback() || skip6Loopback && ip.IsLoopback() && ip.To4() == nil {
				continue
			}
			addrs = append(addrs, &net.UDPAddr{IP: ip, Port: port})
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("no address to listen on (webrtc.interfaces, includeLoopback)")
	}
	return addrs, nil
}

// HasVideo reports whether an SDP offer has a video media section (even a
// disabled one).
func HasVideo(offer string) bool {
	for line := range strings.Lines(offer) {
		if strings.HasPrefix(line, "m=video ") {
			return true
		}
	}
	return false
}

// registerCodecs registers only the codecs the recorder has writers for, so
// that a browser never negotiates one it cannot store; remb adds REMB
// feedback to video (the recorder sends it: Options.VideoBitrate).
func registerCodecs(me *webrtc.MediaEngine, remb bool) error {
	fb := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if remb {
		fb = append(fb, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBGoogREMB})
	}
	audio := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: fb}, PayloadType: 98},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 102},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: fb}, PayloadType: 106},
	}
	for _, c := range audio {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return err
		}
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer <token>" (or a bare
// "<token>") header value.
func bearer(h string) string {
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return strings.TrimSpace(h)
}
