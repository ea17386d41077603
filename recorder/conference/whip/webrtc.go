package whip

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// Settings configure the ICE agent and media of every PeerConnection the WHIP
// endpoint (or a Client) makes.
type Settings struct {
	Interfaces      []string // gather only on these interfaces; all when empty
	IncludeLoopback bool     // offer loopback candidates (tests, one-host set-ups)
	PortMin         uint16   // ephemeral UDP port range; both zero: any port
	PortMax         uint16
	UDPMux          string   // "host:port": one UDP port for every connection (overrides the range)
	NATIPs          []string // public addresses advertised as host candidates behind 1:1 NAT
	UDP4Only        bool     // gather IPv4 only
	LoopbackOnly    bool     // gather only loopback addresses (demo, tests): implies IncludeLoopback
	// DTLSServer makes the answering side the DTLS server: for dial-out
	// adapters that answer a platform's offer (Janus starts DTLS at once).
	DTLSServer bool
}

// udpMuxReadBuffer is the receive buffer asked for the UDP mux's socket:
// about a second of 400 Opus streams (50 packets a second each, about 1 KiB
// of kernel memory per datagram).
const udpMuxReadBuffer = 16 << 20

// NewAPI returns a Pion API configured by s, for a peer that may send (the
// WHIP Client, the dial-out adapters): the codecs the recorder can write
// (Opus, PCMU, PCMA, VP8, VP9, H.264), NACK and RTCP receiver/sender reports,
// and no congestion-control feedback (transport-wide feedback was a third of
// Pion's receive cost). The returned close function releases a UDP mux, if
// any.
func NewAPI(s Settings) (api *webrtc.API, closeFn func() error, err error) {
	se, closeFn, err := settingEngine(s)
	if err != nil {
		return nil, nil, err
	}
	me := &webrtc.MediaEngine{}
	ir := &interceptor.Registry{}
	if err = registerCodecs(me); err == nil {
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

// NewAPIs returns the two receive-only Pion APIs of the WHIP endpoint,
// configured by s and sharing one setting engine (and UDP mux): video, for
// offers with video, and audio, for offers without. Both have NewAPI's codecs
// and RTCP receiver reports but none of a sender's interceptors: the
// endpoint sends no media, so Pion's RTCP sender reports and NACK responder
// (a goroutine and a ticker, and a retransmission buffer, per connection)
// would do nothing. audio also lacks the NACK generator, whose goroutine and
// 100 ms ticker per connection only serve video (audio is negotiated without
// NACK).
func NewAPIs(s Settings) (video, audio *webrtc.API, closeFn func() error, err error) {
	se, closeFn, err := settingEngine(s)
	if err != nil {
		return nil, nil, nil, err
	}
	newAPI := func(withNACK bool) (*webrtc.API, error) {
		me := &webrtc.MediaEngine{}
		if err := registerCodecs(me); err != nil {
			return nil, err
		}
		ir := &interceptor.Registry{}
		if withNACK {
			gen, err := nack.NewGeneratorInterceptor()
			if err != nil {
				return nil, err
			}
			ir.Add(gen)
		}
		rr, err := report.NewReceiverInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(rr)
		return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
	}
	if video, err = newAPI(true); err == nil {
		audio, err = newAPI(false)
	}
	if err != nil {
		_ = closeFn()
		return nil, nil, nil, err
	}
	return video, audio, closeFn, nil
}

// settingEngine returns the Pion settings of s, and the close function of
// its UDP mux, if any.
func settingEngine(s Settings) (se webrtc.SettingEngine, closeFn func() error, err error) {
	if s.DTLSServer {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return se, nil, err
		}
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.IncludeLoopback || s.LoopbackOnly)
	if s.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
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
	switch {
	case s.UDPMux != "":
		host, port, err := net.SplitHostPort(s.UDPMux)
		if err != nil {
			return se, nil, fmt.Errorf("whip: udpMux %q: %w", s.UDPMux, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return se, nil, fmt.Errorf("whip: udpMux %q: bad port", s.UDPMux)
		}
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host), Port: p})
		if err != nil {
			return se, nil, fmt.Errorf("whip: udpMux: %w", err)
		}
		// Every connection's packets queue on this one socket: give it a
		// receive buffer for a burst of them (the kernel caps it at
		// net.core.rmem_max), and read them in batches (udpbatch_linux.go).
		_ = conn.SetReadBuffer(udpMuxReadBuffer)
		bc, err := newBatchConn(conn)
		if err != nil {
			conn.Close()
			return se, nil, fmt.Errorf("whip: udpMux: %w", err)
		}
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, bc))
		closeFn = conn.Close
	case s.PortMin != 0 || s.PortMax != 0:
		if err := se.SetEphemeralUDPPortRange(s.PortMin, s.PortMax); err != nil {
			return se, nil, fmt.Errorf("whip: udp port range: %w", err)
		}
	}
	if s.UDPMux == "" {
		// Each connection's own socket gets a receive buffer for the
		// seconds a starved recorder may fall behind (readbuffer.go).
		n, err := newReadBufferNet(connReadBuffer)
		if err != nil {
			return se, nil, fmt.Errorf("whip: network: %w", err)
		}
		se.SetNet(n)
	}
	return se, closeFn, nil
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
// that a browser never negotiates one it cannot store.
func registerCodecs(me *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
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
