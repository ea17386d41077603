package whip

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v4/packetio"

	"github.com/rtcrec/recorder/recorder/conference"
)

// TestDirectAudio_KeysAreTheHandshakes: a real pion/dtls handshake over
// loopback UDP, the server watched as the WHIP endpoint's is (its
// ServerHello hook and key log): the SRTP keys directAudio derives are the
// client's sending keys by its own DTLS state (RFC 5764), for each cipher
// suite's PRF hash and each SRTP profile WebRTC uses.
func TestDirectAudio_KeysAreTheHandshakes(t *testing.T) {
	suites := []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, // the PRF's SHA-384
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	}
	profiles := []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}
	for _, suite := range suites {
		for _, profile := range profiles {
			t.Run(fmt.Sprint(suite, "/", srtp.ProtectionProfile(profile)), func(t *testing.T) {
				d := newDirectAudio(&conference.PushBuffers{})
				client := dtlsHandshake(t, suite, profile, d)
				state, ok := client.ConnectionState()
				if !ok {
					t.Fatal("no client state")
				}
				var want srtp.Config
				want.Profile = srtp.ProtectionProfile(profile)
				if err := want.ExtractSessionKeysFromDTLS(&state, true); err != nil {
					t.Fatal(err)
				}
				got := d.keys.Load()
				if got == nil {
					t.Fatal("no keys derived from the handshake")
				}
				if !bytes.Equal(got.key, want.Keys.LocalMasterKey) || !bytes.Equal(got.salt, want.Keys.LocalMasterSalt) ||
					got.profile != want.Profile {
					t.Errorf("derived key %x salt %x profile %v, the client sends with key %x salt %x profile %v",
						got.key, got.salt, got.profile, want.Keys.LocalMasterKey, want.Keys.LocalMasterSalt, want.Profile)
				}
			})
		}
	}
}

// dtlsHandshake runs a DTLS handshake on loopback between a client and a server
// watched by d, offering suite and profile only, and returns the client.
func dtlsHandshake(t *testing.T, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile, d *directAudio) *dtls.Conn {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := func() *dtls.Config {
		return &dtls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true,
			CipherSuites: []dtls.CipherSuiteID{suite}, SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{profile},
			ExtendedMasterSecret: dtls.RequireExtendedMasterSecret}
	}
	scfg := cfg()
	scfg.ServerHelloMessageHook = d.serverHello
	scfg.KeyLogWriter = d
	server, err := dtls.Server(sc, cc.LocalAddr(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dtls.Client(cc, sc.LocalAddr(), cfg())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatal("client:", err)
	}
	if err := <-done; err != nil {
		t.Fatal("server:", err)
	}
	return client
}

// directFixture is a direct-audio connection with keys and an open stream
// whose track pushes (discarding what it reads), and a sender's SRTP
// context of the same keys.
func directFixture(t testing.TB, ssrc uint32) (c *directConn, sender *srtp.Context, handed *int) {
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	bufs := &conference.PushBuffers{}
	d := newDirectAudio(bufs)
	d.keys.Store(&srtpKeys{key: key, salt: salt, profile: srtp.ProtectionProfileAeadAes128Gcm})
	b := bufs.New(packetio.RTPBufferPacket, ssrc).(*conference.PushBuffer)
	handed = new(int)
	read := make([]byte, 1500)
	b.Push(func() bool {
		if _, err := b.Read(read); err == nil {
			*handed++
		}
		return true
	}, func() {})
	sender, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	return &directConn{audio: d}, sender, handed
}

// encrypted returns n SRTP packets of ssrc from sender, sequence numbers
// from 1.
func encrypted(t testing.TB, sender *srtp.Context, ssrc uint32, n int) [][]byte {
	pkts := make([][]byte, n)
	for i := range pkts {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i + 1), Timestamp: uint32(i * 960), SSRC: ssrc},
			Payload: bytes.Repeat([]byte{byte(i)}, 100)}
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if pkts[i], err = sender.EncryptRTP(nil, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	return pkts
}

// TestDirectConn_TakeAllocatesNothing: the mux reader's per-packet path
// (decrypt, look the stream up, hand the packet over, itself or through a
// hand-over worker's queue) takes no lock and allocates nothing, and every
// packet reaches its track, a long one (a large pooled buffer) too.
func TestDirectConn_TakeAllocatesNothing(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(map[bool]string{false: "reader", true: "worker"}[queued], func(t *testing.T) {
			const ssrc = 1234
			c, sender, handed := directFixture(t, ssrc)
			var worker *handWorker
			if queued {
				workers, queues := newHandWorkers(1, 1, handQueueSlots(0, 1))
				worker, c.queue, c.done = workers[0], queues[0][0], make(chan struct{})
			}
			pkts := encrypted(t, sender, ssrc, 200)
			plain := make([]byte, batchBuf)
			i := 0
			allocs := testing.AllocsPerRun(100, func() {
				if !c.take(pkts[i], plain) {
					t.Fatalf("packet %d not taken", i+1)
				}
				if queued && !worker.handOver() {
					t.Fatalf("packet %d not queued", i+1)
				}
				i++
			})
			if allocs != 0 {
				t.Errorf("take allocates %.1f times per packet, want 0", allocs)
			}
			if *handed != i {
				t.Errorf("%d packets handed over, want %d", *handed, i)
			}
			big := encryptedPayload(t, sender, ssrc, 1000, smallPacket)
			if !c.take(big, plain) || queued && !worker.handOver() {
				t.Error("a packet longer than smallPacket not taken")
			}
			if *handed != i+1 {
				t.Errorf("%d packets handed over, want %d", *handed, i+1)
			}
		})
	}
}

// TestDirectConn_TakesOnlyWhatItCan: what the mux reader leaves to Pion
// (no keys yet, a stream Pion has not opened, RTCP, keys that do not fit)
// and what it drops (a replay once the keys are known good).
func TestDirectConn_TakesOnlyWhatItCan(t *testing.T) {
	const ssrc = 1234
	plain := make([]byte, batchBuf)

	c, sender, _ := directFixture(t, ssrc)
	keys := c.audio.keys.Swap(nil)
	pkts := encrypted(t, sender, ssrc, 3)
	if c.take(pkts[0], plain) {
		t.Error("taken before the keys")
	}
	c.audio.keys.Store(keys)
	if !c.take(pkts[0], plain) {
		t.Error("not taken with the keys")
	}
	if !c.take(pkts[0], plain) {
		t.Error("a replay once the keys decrypted is Pion's, want it dropped")
	}
	other := encrypted(t, sender, ssrc+1, 1)[0]
	if c.take(other, plain) {
		t.Error("taken for an SSRC without a stream")
	}
	rtcp := append([]byte{0x80, 200}, make([]byte, 30)...) // a sender report's first bytes
	if c.take(rtcp, plain) {
		t.Error("RTCP taken")
	}

	wrong, _, _ := directFixture(t, ssrc)
	wrong.audio.keys.Store(&srtpKeys{key: bytes.Repeat([]byte{1}, 16), salt: bytes.Repeat([]byte{9}, 12), profile: srtp.ProtectionProfileAeadAes128Gcm})
	if wrong.take(pkts[1], plain) {
		t.Error("taken with keys that do not decrypt it")
	}
}

// BenchmarkDirectConn_Take: the mux reader's cost per audio packet with
// direct audio (decrypt AEAD_AES_128_GCM, hand over to a track that
// discards).
func BenchmarkDirectConn_Take(b *testing.B) {
	const ssrc = 1234
	c, sender, _ := directFixture(b, ssrc)
	pkts := encrypted(b, sender, ssrc, 1<<15)
	plain := make([]byte, batchBuf)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(pkts) { // past the replay window: a fresh context
			b.StopTimer()
			c.ctx, i = nil, 0
			c.audio.keys.Store(c.audio.keys.Load())
			b.StartTimer()
		}
		c.take(pkts[i], plain)
		i++
	}
}

// FuzzDirectConn_Take: any datagram, after a good packet or without one,
// never panics, and is handed over only if it decrypts (it is a packet the
// sender's context encrypted); any key log line never panics and gives no
// keys without a ServerHello.
func FuzzDirectConn_Take(f *testing.F) {
	const ssrc = 1234
	_, sender, _ := directFixture(f, ssrc)
	pkts := encrypted(f, sender, ssrc, 2)
	f.Add(pkts[1], false)
	f.Add(pkts[1][:20], true)
	f.Add([]byte{0x80, 0xc8, 0, 1}, true)
	f.Add([]byte("CLIENT_RANDOM 00 zz\n"), false)
	plain := make([]byte, batchBuf)
	f.Fuzz(func(t *testing.T, d []byte, afterGood bool) {
		c, _, handed := directFixture(t, ssrc)
		if afterGood && !c.take(pkts[0], plain) {
			t.Fatal("the good packet not taken")
		}
		before := *handed
		took := c.take(d, plain)
		if *handed != before && !bytes.Equal(d, pkts[0]) && !bytes.Equal(d, pkts[1]) {
			t.Errorf("handed over a datagram the sender did not encrypt: %x", d)
		}
		if took && !afterGood && *handed == before {
			t.Errorf("taken (not Pion's) without a packet decrypted: %x", d)
		}
		d2 := newDirectAudio(&conference.PushBuffers{})
		if _, err := d2.Write(d); err == nil && d2.keys.Load() != nil {
			t.Errorf("keys from a key log line alone: %q", d)
		}
	})
}

// BenchmarkDirectConn_TakeOneCore: a packet's cost on one core (GOMAXPROCS
// 1) from the socket's reader to its track (decrypt, hand over to a track
// that discards), handed over by the reader itself or queued for a worker
// goroutine woken once a batch of 8 (the reader yields after each batch,
// as it waits in the poller for the next): what the worker costs.
func BenchmarkDirectConn_TakeOneCore(b *testing.B) {
	for _, queued := range []bool{false, true} {
		b.Run(map[bool]string{false: "reader", true: "worker"}[queued], func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			const ssrc, batch = 1234, 8
			c, sender, handed := directFixture(b, ssrc)
			var q *handQueue
			if queued {
				workers, queues := newHandWorkers(1, 1, handQueueSlots(0, 1))
				done := make(chan struct{})
				finished := make(chan struct{})
				go func() { workers[0].run(done); close(finished) }()
				b.Cleanup(func() { close(done); <-finished })
				q, c.queue, c.done = queues[0][0], queues[0][0], done
			}
			pkts := encrypted(b, sender, ssrc, 1<<15)
			plain := make([]byte, batchBuf)
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				if i == len(pkts) { // past the replay window: a fresh context
					b.StopTimer()
					for q != nil && q.queued() > 0 {
						q.worker.wakeUp()
						runtime.Gosched()
					}
					c.ctx, i = nil, 0
					b.StartTimer()
				}
				c.take(pkts[i], plain)
				i++
				if n++; n%batch == 0 {
					if q != nil {
						q.worker.wakeUp()
					}
					runtime.Gosched()
				}
			}
			for q != nil && q.queued() > 0 {
				q.worker.wakeUp()
				runtime.Gosched()
			}
			if *handed != n {
				b.Fatalf("%d handed over, want %d", *handed, n)
			}
		})
	}
}
