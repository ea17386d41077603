// Package conference defines how the recorder meets a conference platform: an
// Adapter yields the remote media tracks of a conference (who sends them, what
// kind of stream, which codec, a reader of their RTP packets and a way to ask for
// a keyframe) and tells when a track or the whole conference ends.
//
// Two shapes of adapter exist. A dial-out adapter (Janus, WHEP) joins a
// conference when the recorder asks it to (Adapter.Join). A listening adapter
// (the embedded WHIP endpoint, package whip) receives publishers on its own; it
// also implements Listener, and the recorder gives it a Sink per conference.
// Either way every track reaches a Sink exactly once, and the Sink runs the one
// reader goroutine of that track, or, when the track's reader pushes its
// packets (RTPPusher: the WHIP endpoint's, on srtp's goroutine), has them
// handed over and no goroutine of its own.
package conference

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StreamType says what a participant's stream carries; the values are those of
// the recorder API (seed 004).
type StreamType string

// The stream types of the API.
const (
	StreamCAM     StreamType = "CAM"
	StreamMIC     StreamType = "MIC"
	StreamSCREEN  StreamType = "SCREEN"
	StreamHOLD    StreamType = "HOLD"
	StreamVIDEO   StreamType = "VIDEO"
	StreamUNKNOWN StreamType = "UNKNOWN"
)

// String returns the API name of the stream type.
func (s StreamType) String() string { return string(s) }

// ParseStreamType parses an API stream type, case-insensitively. An empty string
// is StreamUNKNOWN; anything else unknown is an error.
func ParseStreamType(s string) (StreamType, error) {
	switch t := StreamType(strings.ToUpper(s)); t {
	case StreamCAM, StreamMIC, StreamSCREEN, StreamHOLD, StreamVIDEO, StreamUNKNOWN:
		return t, nil
	case "":
		return StreamUNKNOWN, nil
	}
	return "", fmt.Errorf("conference: unknown stream type %q", s)
}

// Kind is the media kind of a track, as the API names it.
type Kind string

// The track kinds of the API.
const (
	KindAudio Kind = "AUDIO"
	KindVideo Kind = "VIDEO"
)

// String returns the API name of the kind.
func (k Kind) String() string { return string(k) }

// Codec describes the RTP payload of a track as negotiated in SDP.
type Codec struct {
	MimeType    string // "audio/opus", "audio/PCMU", "video/VP8", …; compare case-insensitively
	ClockRate   uint32 // RTP clock rate in Hz
	Channels    uint16 // audio channels announced in SDP (2 for Opus)
	SDPFmtpLine string // the a=fmtp parameters, if any
	PayloadType uint8  // the negotiated RTP payload type
}

// RTPReader reads the RTP packets of one track.
type RTPReader interface {
	// ReadRTP reads the next whole RTP packet (header and payload, already
	// decrypted) into buf and returns its length. It blocks until a packet
	// arrives. When the track has ended it returns io.EOF (or another error),
	// and so it does for ever after. Exactly one goroutine calls ReadRTP: the
	// reader goroutine of the Sink that received the track.
	ReadRTP(buf []byte) (int, error)
}

// ErrReadTimeout is what ReadRTP returns when the read deadline a
// DeadlineReader was given passed before a packet came: the track goes on.
var ErrReadTimeout = errors.New("conference: read deadline passed")

// DeadlineReader is an RTPReader whose ReadRTP can be made to return
// ErrReadTimeout at a deadline (the zero time: none), so that its reader
// goroutine gets to run without a packet (the mix's deferred decoding,
// media.AudioPipeline.Tick). Called by the reader goroutine.
type DeadlineReader interface {
	RTPReader
	SetReadDeadline(t time.Time) error
}

// RTPPusher is an RTPReader that can also hand its packets over as they
// arrive, on the goroutine that receives them, so that no goroutine waits
// for them (the WHIP endpoint's tracks: PushBuffer).
type RTPPusher interface {
	RTPReader
	// PushRTP hands every packet over to each as ReadRTP would return it,
	// read into buf (each must not keep it): first those that came before,
	// on the caller's goroutine, then each as it arrives, on the goroutine
	// that receives it. Calls of each never overlap. When the track ends,
	// end is called once, on a goroutine of its own, after the last each,
	// with the error that ended it (io.EOF: its normal end). PushRTP reports
	// false, and does nothing, when the track cannot push (ReadRTP reads
	// it then). Called once, by the reader goroutine, instead of ReadRTP.
	PushRTP(buf []byte, each func(pkt []byte), end func(err error)) bool
	// Between runs fn, unless a packet is being handed over or the track
	// ended, and reports whether it ran: fn and each never run at once.
	// Safe from any goroutine once PushRTP returned true.
	Between(fn func()) bool
}

// ArrivalReader is an RTPReader that may know when each packet reached the
// machine (the kernel's receive time of its datagram), however late its
// reader reads it: a reader starved of CPU reads seconds behind its socket,
// and its lag is not the sender's. Arrival returns that time for the packet
// with ssrc and seq read (or pushed, RTPPusher) last; false if it is not
// known (the packet is then taken as arriving when read). Called by the
// goroutine that hands the packet over (the reader's, or the pusher's for
// a track that pushes: srtp's for WHIP) as it writes the packet; it takes
// no lock and allocates nothing.
type ArrivalReader interface {
	RTPReader
	Arrival(ssrc uint32, seq uint16) (time.Time, bool)
}

// DropReader is an ArrivalReader that may also know whether the kernel
// dropped datagrams from the receiving socket's full queue (a reader behind)
// between two of the track's packets: a packet missing between two that
// straddle a drop may be among them, and then never comes, while one
// missing between two that do not is lost in the network or still on its
// way. DroppedBetween returns how many datagrams, at least, were dropped
// between receiving the packets with ssrc and sequence numbers a and b (a
// first): the socket's count, of every sender on it. False if it is not
// known for either. Any goroutine; it takes no lock and allocates nothing.
type DropReader interface {
	ArrivalReader
	DroppedBetween(ssrc uint32, a, b uint16) (int, bool)
}

// Arrivals is where a track's reader looks up when its packets reached the
// machine, and what the kernel dropped between them (ArrivalReader,
// DropReader).
type Arrivals interface {
	Arrival(ssrc uint32, seq uint16) (time.Time, bool)
	DroppedBetween(ssrc uint32, a, b uint16) (int, bool)
}

// Track is one remote media track of a conference. Adapters fill it in and hand
// it to a Sink; after that its fields are never changed.
type Track struct {
	ConferenceID string
	UserID       string     // the participant, as the platform identifies them
	StreamID     string     // one participant's stream (a WHIP session, a Janus feed): API stream id
	TrackID      string     // unique within the stream
	StreamType   StreamType // CAM, MIC, SCREEN, …
	Kind         Kind       // AUDIO or VIDEO
	Codec        Codec
	Started      time.Time // when the track's first packet was expected (the stream connected)
	// AgentID and AgentPhone are the seed-003 agent the publisher said it
	// is (a WHIP publisher's ?agentId= and ?agentPhone=); empty when none.
	AgentID, AgentPhone string

	// Reader yields the track's RTP packets until the track ends.
	Reader RTPReader

	// RequestKeyframe asks the sender for a keyframe (RTCP PLI, RFC 4585) for
	// this video track. It may be called from any goroutine, is cheap and never
	// blocks for long; it is nil for audio tracks.
	RequestKeyframe func() error

	// SenderReport returns the latest RTCP sender report of the track's
	// sender, if one came: its wall clock at an RTP timestamp, which places
	// the track on the recording's clock (audio and video of one sender
	// alike). It is nil when the adapter reads none. Safe from any
	// goroutine; it allocates nothing (the reader goroutine may call it per
	// packet).
	SenderReport func() (SenderReport, bool)
}

// SenderReport is the NTP↔RTP mapping of an RTCP sender report (RFC 3550
// §6.4.1): the sender's wall clock NTP was at RTP timestamp RTPTime.
type SenderReport struct {
	SSRC    uint32
	NTP     time.Time
	RTPTime uint32
	Arrived time.Time // when the report came (our clock)
}

// Sink receives the tracks of one conference. Its methods may be called from any
// goroutine, but never concurrently for the same conference.
type Sink interface {
	// AddTrack hands a new track over. The Sink starts one goroutine that reads
	// t.Reader until it returns an error: io.EOF is the track's normal end (the
	// participant left or unpublished); or, when t.Reader is an RTPPusher,
	// that goroutine calls PushRTP and ends.
	AddTrack(t *Track)

	// ConferenceEnded reports that the conference is gone; no track follows.
	// err is nil for a normal end (the platform closed the room) and says why
	// otherwise. Tracks still open end on their own (their readers give io.EOF).
	ConferenceEnded(err error)
}

// Adapter connects the recorder to one conference platform.
type Adapter interface {
	// Kind names the adapter: "whip", "janus", "whep".
	Kind() string

	// Join follows conferenceID of organizationID and delivers every track
	// already there and every later one to sink, until leave is called (leave is
	// idempotent; after it returns no AddTrack follows). A conference that does
	// not exist gives an error for which errors.Is(err, ErrNoConference) holds.
	// Listening adapters may return a no-op leave and deliver through their
	// Listener instead; the recorder then does not call Join.
	Join(ctx context.Context, organizationID, conferenceID string, sink Sink) (leave func(), err error)
}

// Listener is implemented by adapters that receive streams without being asked
// (WHIP). The recorder calls Listen once, before any publisher can connect;
// open returns the Sink of a conference, creating it if needed, and the adapter
// calls it when the first track of a conference arrives. Every track is given to
// its conference's Sink, whether or not a recording of that conference runs.
type Listener interface {
	Listen(open func(organizationID, conferenceID string) Sink)
}

// ErrNoConference is returned by Join for a conference the platform does not know.
var ErrNoConference = errors.New("conference: no such conference")

// ErrSessionLost is wrapped by the error ConferenceEnded reports when the
// platform dropped the adapter's session (it restarted, stopped answering or
// timed the session out), as opposed to another failure of the connection.
var ErrSessionLost = errors.New("conference: the platform lost the session")
