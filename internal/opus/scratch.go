// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

package opus

import "github.com/rtcrec/recorder/internal/lend"

// decodeScratch is a decode call's working memory: the SILK layer's output
// (silk, hybridSilk), its resampled form (hybridSilkPCM, resample,
// resampleIn, resampleOut) and the float32 output converted to 16 bits
// (float). No decoder state outlives a call in it, so a decoder holds one
// only while it decodes: many decoders, few of them decoding at any moment
// (a recorder's mix decodes hundreds of streams on a few cores), share the
// few in use instead of holding 2.5 KB (hybrid frames) to 8 KB (SILK-only
// frames) each. (Our change to pion/opus v0.1.0.)
type decodeScratch struct {
	silk, hybridSilk, hybridSilkPCM, float, resample []float32
	resampleIn, resampleOut                          [2][]float32
}

// channel returns the resampler's input (n samples) and output (m samples)
// buffers of channel i.
func (s *decodeScratch) channel(i, n, m int) (in, out []float32) {
	if cap(s.resampleIn[i]) < n {
		s.resampleIn[i] = make([]float32, n)
	}
	if cap(s.resampleOut[i]) < m {
		s.resampleOut[i] = make([]float32, m)
	}

	return s.resampleIn[i][:n], s.resampleOut[i][:m]
}

// scratchPool lends decodeScratch to decode calls: no lock, and no
// allocation once the sets in use are made.
var scratchPool lend.Pool[decodeScratch]

// borrow lends d a decode call's working memory (d.scratch) unless it holds
// it already, and reports whether it lent it: the caller that was lent it
// gives it back (release) when the call ends.
func (d *Decoder) borrow() bool {
	if d.scratch != nil {
		return false
	}
	d.scratch, d.scratchTicket = scratchPool.Get()

	return true
}

// release gives back what borrow lent, if it lent it (took); nothing may
// use a slice of d.scratch after.
func (d *Decoder) release(took bool) {
	if took {
		scratchPool.Put(d.scratchTicket)
		d.scratch = nil
	}
}
