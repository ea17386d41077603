package media

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestOpusDecoder_Golden: the decoder's output for testdata/speech.ogg, bit
// for bit, as the mix decodes it (8 kHz, inactive packets and hybrid CELT
// skipped) and in full at 8 and 48 kHz. A speed-up of the decoder's loops
// must keep these sums; a change that means to alter the output changes
// them here, with its fidelity measured (SNR against the old output).
func TestOpusDecoder_Golden(t *testing.T) {
	packets := speechPackets(t)
	for _, c := range []struct {
		rate           int
		inactive, celt bool
		want           string
	}{
		{8000, true, true, "6fe7c791d05a23c4"},
		{8000, false, false, "be5e019bb96e7ca6"},
		{48000, false, false, "504bfe531c9f3448"},
	} {
		t.Run(fmt.Sprintf("rate=%d/skip=%t", c.rate, c.inactive), func(t *testing.T) {
			d, err := newOpusDecoder(c.rate, c.inactive, c.celt)
			if err != nil {
				t.Fatal(err)
			}
			pcm := decodeAll(t, d, packets)
			h := sha256.New()
			_ = binary.Write(h, binary.LittleEndian, pcm)
			if got := hex.EncodeToString(h.Sum(nil))[:16]; got != c.want {
				t.Errorf("%d samples, sha256 %s, want %s", len(pcm), got, c.want)
			}
		})
	}
}
