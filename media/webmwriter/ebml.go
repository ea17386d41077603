package webmwriter

import (
	"encoding/binary"
	"math"
)

// EBML (RFC 8794) element coding: an element is its ID (the ID's bytes
// include their length marker), a size as a variable-length integer (a
// leading 1 bit after n-1 zero bits says n bytes), then the data. Matroska
// (RFC 9559) and WebM define the IDs below.
const (
	idEBML               = 0x1A45DFA3
	idEBMLVersion        = 0x4286
	idEBMLReadVersion    = 0x42F7
	idEBMLMaxIDLength    = 0x42F2
	idEBMLMaxSizeLength  = 0x42F3
	idDocType            = 0x4282
	idDocTypeVersion     = 0x4287
	idDocTypeReadVersion = 0x4285
	idSegment            = 0x18538067
	idInfo               = 0x1549A966
	idTimestampScale     = 0x2AD7B1
	idMuxingApp          = 0x4D80
	idWritingApp         = 0x5741
	idDuration           = 0x4489
	idTracks             = 0x1654AE6B
	idTrackEntry         = 0xAE
	idTrackNumber        = 0xD7
	idTrackUID           = 0x73C5
	idTrackType          = 0x83
	idFlagLacing         = 0x9C
	idCodecID            = 0x86
	idVideo              = 0xE0
	idPixelWidth         = 0xB0
	idPixelHeight        = 0xBA
	idCluster            = 0x1F43B675
	idTimestamp          = 0xE7
	idSimpleBlock        = 0xA3
	idVoid               = 0xEC
	idSeekHead           = 0x114D9B74
	idSeek               = 0x4DBB
	idSeekID             = 0x53AB
	idSeekPosition       = 0x53AC
	idCues               = 0x1C53BB6B
	idCuePoint           = 0xBB
	idCueTime            = 0xB3
	idCueTrackPositions  = 0xB7
	idCueTrack           = 0xF7
	idCueClusterPosition = 0xF1
)

// unknownSize is the 8-byte size "unknown" (all value bits set), used for
// the Segment and Clusters so that they can grow while written.
var unknownSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

func appendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// appendSize appends n as the shortest variable-length integer (the
// all-ones value of each length is reserved for "unknown").
func appendSize(b []byte, n uint64) []byte {
	l := 1
	for n >= 1<<(7*l)-1 && l < 8 {
		l++
	}
	n |= 1 << (7 * l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(n>>(8*i)))
	}
	return b
}

func appendUint(b []byte, id uint32, v uint64) []byte {
	n := 1
	for v>>(8*n) != 0 && n < 8 {
		n++
	}
	b = appendSize(appendID(b, id), uint64(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func appendString(b []byte, id uint32, s string) []byte {
	return append(appendSize(appendID(b, id), uint64(len(s))), s...)
}

// appendFloat appends an 8-byte float element.
func appendFloat(b []byte, id uint32, f float64) []byte {
	b = appendSize(appendID(b, id), 8)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

// appendVoid appends a Void element of exactly n bytes (n >= 2, n < 129).
func appendVoid(b []byte, n int) []byte {
	b = appendSize(appendID(b, idVoid), uint64(n-2))
	return append(b, make([]byte, n-2)...)
}

func appendMaster(b []byte, id uint32, body []byte) []byte {
	return append(appendSize(appendID(b, id), uint64(len(body))), body...)
}
