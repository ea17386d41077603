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

// NewAPI returns a Pion API configured by s: the codecs the recorder can
// write (Opus, PCMU, PCMA, VP8, VP9, H.264), NACK generation and RTCP receiver
// reports, and no congestion-control feedback (a recorder only receives, and
// transport-wide feedback was a third of Pion's receive cost). The returned
// close function releases a UDP mux, if any.
func NewAPI(s Settings) (api *webrtc.API, closeFn func() error, err error) {
	api, _, closeFn, err = NewAPIs(s)
	return api, closeFn, err
}

// NewAPIs returns two Pion APIs configured by s that share one setting
// engine (and UDP mux): full, as NewAPI's, for offers with video, and audio
// for offers without: the same codecs without the NACK generator, whose
// goroutine and 100 ms ticker per PeerConnection only serve video (audio is
// negotiated without NACK).
//
// Neither API has the interceptors of a sender: a recorder sends no media, so
// Pion's RTCP sender reports and NACK responder (a goroutine and a ticker, and
// a retransmission buffer per connection) would do nothing.
func NewAPIs(s Settings) (full, audio *webrtc.API, closeFn func() error, err error) {
	se := webrtc.SettingEngine{}
	if s.DTLSServer {
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return nil, nil, nil, err
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
			return nil, nil, nil, fmt.Errorf("whip: udpMux %q: %w", s.UDPMux, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("whip: udpMux %q: bad port", s.UDPMux)
		}
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(host), Port: p})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("whip: udpMux: %w", err)
		}
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
		closeFn = conn.Close
	case s.PortMin != 0 || s.PortMax != 0:
		if err := se.SetEphemeralUDPPortRange(s.PortMin, s.PortMax); err != nil {
			return nil, nil, nil, fmt.Errorf("whip: udp port range: %w", err)
		}
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
	if full, err = newAPI(true); err == nil {
		audio, err = newAPI(false)
	}
	if err != nil {
		_ = closeFn()
		return nil, nil, nil, err
	}
	return full, audio, closeFn, nil
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
