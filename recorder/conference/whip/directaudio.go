package whip

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/replaydetector"
	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference"
)

// Direct audio (Settings.DirectAudio): the UDP mux's socket reader decrypts
// the SRTP of an audio-only connection itself and hands each RTP packet to
// its track's PushBuffer through a hand-over worker (handover.go). Through
// Pion, every packet crosses three more goroutines after the reader
// (pion/ice's candidate reader, pion/webrtc's mux, srtp's session), about
// 2.5 µs of CPU each at 400 streams, where decrypting it costs 0.25 µs
// (issue 16).
//
// Pion keeps everything else: ICE, DTLS, RTCP (sender reports in, receiver
// reports out), the tracks (a packet handed over is read back through the
// track and its interceptors, as srtp's are: conference.PushBuffer), and
// the packets the mux does not take: those before the keys, those of an
// SSRC whose stream Pion has not opened yet (its first packet opens it and
// makes the track), and, until one has decrypted here, any that fails to.
//
// The recorder's own work on each packet (conference.PushBuffer's hand-over:
// reorder, track file, the mix's decode) runs on the workers, one per core
// (one on one core), each with its share of the connections; the socket's
// reader only reads, routes and decrypts, so that a recorder short of CPU
// keeps its backlog in the workers' queues (5 s of each stream, as Pion's
// path does), not in the socket's receive buffer alone.
//
// The keys: Pion does not expose its DTLS connection, so each connection's
// own SettingEngine (ReceiveAPI.NewPeerConnection) makes the recorder the
// DTLS server and watches the handshake through two public hooks of
// pion/dtls: the ServerHello it sends (server random, cipher suite, SRTP
// profile) and the key log (client random, master secret). With both,
// directAudio derives the SRTP keys as Pion's DTLS transport does: the RFC
// 5705 exporter with the label "EXTRACTOR-dtls_srtp" (RFC 5764 §4.2).

// directPackets counts the RTP packets the UDP mux decrypted and handed to
// their tracks itself (Settings.DirectAudio), across the process.
var directPackets atomic.Uint64

// DirectPackets returns how many RTP packets the UDP mux decrypted and
// handed to their tracks itself (Settings.DirectAudio) since the process
// started.
func DirectPackets() uint64 { return directPackets.Load() }

// directAudio is one PeerConnection's direct audio: the SRTP keys its DTLS
// handshake agrees, and its stream buffers.
type directAudio struct {
	bufs *conference.PushBuffers
	keys atomic.Pointer[srtpKeys] // nil until the handshake gave them

	mu           sync.Mutex // the handshake's parts, from its goroutine(s)
	serverRandom []byte
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	clientRandom []byte
	masterSecret []byte
}

// srtpKeys are the sender's (the publisher's) SRTP master key and salt.
type srtpKeys struct {
	key, salt []byte
	profile   srtp.ProtectionProfile
}

func newDirectAudio(bufs *conference.PushBuffers) *directAudio {
	return &directAudio{bufs: bufs}
}

// watch sets se so that d learns the SRTP keys of its connection's DTLS
// handshake: the recorder answers as the DTLS server (a=setup:passive) and
// d hears its ServerHello and its key log.
func (d *directAudio) watch(se *webrtc.SettingEngine) error {
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return err
	}
	se.SetDTLSServerHelloMessageHook(d.serverHello)
	se.SetDTLSKeyLogWriter(d)
	return nil
}

// serverHello notes the server random, cipher suite and SRTP profile of the
// ServerHello the recorder sends, and sends it unchanged.
func (d *directAudio) serverHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	d.mu.Lock()
	d.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		d.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			d.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	d.derive()
	d.mu.Unlock()
	return &m
}

// Write takes pion/dtls's key log: a line "CLIENT_RANDOM <client random>
// <master secret>" in hex (NSS key log format) once the handshake computed
// its master secret.
func (d *directAudio) Write(p []byte) (int, error) {
	f := bytes.Fields(p)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(p), nil
	}
	random, err1 := hex.DecodeString(string(f[1]))
	secret, err2 := hex.DecodeString(string(f[2]))
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	d.mu.Lock()
	d.clientRandom, d.masterSecret = random, secret
	d.derive()
	d.mu.Unlock()
	return len(p), nil
}

// derive makes the keys once both the ServerHello and the key log came;
// under d.mu. Keys it cannot derive (an SRTP profile srtp does not know)
// leave the connection's packets to Pion.
func (d *directAudio) derive() {
	if d.serverRandom == nil || d.masterSecret == nil || d.profile == 0 {
		return
	}
	cfg := srtp.Config{Profile: d.profile}
	e := exporter{secret: d.masterSecret, clientRandom: d.clientRandom, serverRandom: d.serverRandom, suite: d.suite}
	if err := cfg.ExtractSessionKeysFromDTLS(e, false); err != nil {
		return
	}
	d.keys.Store(&srtpKeys{key: cfg.Keys.RemoteMasterKey, salt: cfg.Keys.RemoteMasterSalt, profile: d.profile})
}

// exporter is DTLS 1.2's keying material exporter (RFC 5705 §4, as
// pion/dtls's State.ExportKeyingMaterial): the TLS PRF of the master
// secret, label, client random and server random.
type exporter struct {
	secret, clientRandom, serverRandom []byte
	suite                              dtls.CipherSuiteID
}

// ExportKeyingMaterial implements srtp.KeyingMaterialExporter.
func (e exporter) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if len(context) != 0 {
		return nil, errors.New("whip: a keying material context is not supported")
	}
	seed := append(append([]byte(label), e.clientRandom...), e.serverRandom...)
	return prf.PHash(e.secret, seed, length, prfHash(e.suite))
}

// prfHash is the PRF hash of a DTLS 1.2 cipher suite: SHA-384 for the
// *_SHA384 suites (RFC 5289 §3), SHA-256 for every other (RFC 5246 §5).
func prfHash(s dtls.CipherSuiteID) prf.HashFunc {
	switch s {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return sha256.New
}

// directMux is the UDP mux as one direct-audio connection sees it: its
// shares (GetConn) decrypt and hand over its audio.
type directMux struct {
	*udpMux
	audio *directAudio
}

// GetConn implements ice.UDPMux.
func (m directMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	return m.getConn(ufrag, addr, m.audio)
}

// directConn is a direct-audio connection's share of one mux socket: its
// SRTP context, the buffer of the SSRC it handed a packet to last and the
// queue to its hand-over worker. Only the socket's reader uses it.
type directConn struct {
	audio  *directAudio
	queue  *handQueue      // to its hand-over worker (handover.go); nil: take hands over
	done   <-chan struct{} // closed when the mux closes
	ctx    *srtp.Context   // made at the first SRTP packet after the keys
	failed bool            // the context could not be made: Pion decrypts
	ok     bool            // a packet decrypted here: the keys are right
	hdr    rtp.Header
	ssrc   uint32
	buf    *conference.PushBuffer // ssrc's
}

// newSRTPReplay makes the replay detector of a direct-audio stream: srtp's
// decisions over conference.SRTPReplayWindow packets, without its shift per
// packet (replayRing).
func newSRTPReplay() replaydetector.ReplayDetector {
	return newReplayRing(1<<48 - 1) // the SRTP packet index: ROC<<16 | SEQ
}

// isRTP reports whether datagram d is an RTP packet: first byte 128–191
// (RFC 7983 §7: RTP or RTCP, version 2) and a second byte outside 192–223
// (RFC 5761 §4: RTCP's packet types).
func isRTP(d []byte) bool {
	return len(d) >= 12 && d[0]>>6 == 2 && (d[1] < 192 || d[1] > 223)
}

// take decrypts datagram d into plain (at least len(d) bytes) and hands
// the RTP packet to its track's buffer, through its worker's queue if it
// has one (the mux's connections have). It reports false when d is Pion's
// to read: not RTP, no keys yet, no stream of its SSRC yet, or not
// decrypted before any packet was (keys that do not fit). A packet that
// fails once one has decrypted (a replay, a forgery) is dropped, as Pion
// would. No lock is taken and nothing is allocated.
func (c *directConn) take(d, plain []byte) bool {
	if c.failed || !isRTP(d) {
		return false
	}
	if c.ctx == nil {
		k := c.audio.keys.Load()
		if k == nil {
			return false
		}
		ctx, err := srtp.CreateContext(k.key, k.salt, k.profile, srtp.SRTPReplayDetectorFactory(newSRTPReplay))
		if err != nil {
			c.failed = true
			return false
		}
		c.ctx = ctx
	}
	ssrc := binary.BigEndian.Uint32(d[8:12])
	if c.buf == nil || ssrc != c.ssrc {
		b := c.audio.bufs.RTP(ssrc)
		if b == nil {
			return false
		}
		c.ssrc, c.buf = ssrc, b
	}
	p, err := c.ctx.DecryptRTP(plain[:0], d, &c.hdr)
	if err != nil {
		return c.ok
	}
	c.ok = true
	directPackets.Add(1)
	if c.queue != nil {
		c.queue.push(c.buf, p, c.done)
	} else {
		_, _ = c.buf.Write(p) // a stopped stream's buffer refuses it, as srtp's would
	}
	return true
}
