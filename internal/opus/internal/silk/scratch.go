// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package silk

import "github.com/rtcrec/recorder/internal/lend"

// frameScratch is the working memory of a frame's decode: the excitation,
// the LTP and LPC synthesis buffers, and whiten's rewhitened samples. No
// decoder state outlives a decode call in it, so a decoder holds one only
// while it decodes (buffers) and gives it back at the end of the call
// (release): many decoders, most of them idle at any moment (a recorder's
// mix decodes hundreds of streams on a few cores), share the few that are
// in use instead of holding about 8 KB each. (Our change to pion/opus
// v0.1.0.)
type frameScratch struct {
	eRaw             []int32
	lpc, res, resLag []float32

	// whitened holds the clamped rewhitened output samples of the frame
	// being decoded for indexes [whitenedFrom, whitenedTo) (whiten), made
	// with aQ12Sets[whitenedA].
	whitened                            []float32
	whitenedFrom, whitenedTo, whitenedA int

	// The frame's parameters as it decodes them (RFC 6716 Section 4.2.7):
	// the header's flags, the gains, the LSF stages and their conversion to
	// LPC coefficients (aQ12Sets: one set per half frame), the pitch lags,
	// the LTP filters, the pulse and LSB counts. They used to be held by
	// every decoder, in about twenty small allocations a decode touched
	// each frame wherever the heap had put them; lent with the rest, they
	// stay in the caches of whichever decoder runs.
	midVoiceActivity, sideVoiceActivity []bool
	midLBRRFlags, sideLBRRFlags         []bool
	gainQ16                             []float32
	i2                                  []int8
	resQ10, nlsfQ15, n1Q15              []int16
	cQ17, pQ16, qQ16, a32Q17            []int32
	aQ12Int                             [2][]int16
	aQ12Coefficients                    [2][]float32
	aQ12Sets                            [][]float32
	pitchLags                           []int
	bQ7                                 [][]int8
	bQ7Data                             []int8
	pulsecounts, lsbcounts              []uint8
}

// scratchPool lends frameScratch to decode calls: no lock, and no allocation
// once the sets in use are made.
var scratchPool lend.Pool[frameScratch]

// buffers returns the frame's working memory, taken from scratchPool at the
// call's first use and held until release.
func (d *Decoder) buffers() *frameScratch {
	if d.scratch == nil {
		d.scratch, d.scratchTicket = scratchPool.Get()
	}

	return d.scratch
}

// release gives back the working memory d and its side-channel decoder
// took during a decode call. The call's entry points defer it; nothing may
// use a slice from buffers after.
func (d *Decoder) release() {
	if d == nil {
		return
	}
	if d.scratch != nil {
		scratchPool.Put(d.scratchTicket)
		d.scratch = nil
	}
	d.sideDecoder.release()
}

// lbrrPool lends the decoders that read past the LBRR frames of a packet
// (consumeLowBitrateRedundancy). Such a decoder starts afresh for each packet
// (freshen): no state of it outlives the call, so decoders share the few in
// use instead of holding one each (our change to pion/opus v0.1.0).
var lbrrPool lend.Pool[Decoder]
