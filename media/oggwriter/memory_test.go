package oggwriter

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rtcrec/recorder/media/ogg"
)

// TestWriter_PageBufferDoesNotGrow writes 10 s of 20 ms Opus packets at 32,
// 40, 64 and 128 kbit/s: the pending page's buffer keeps its size
// (pageBuffer) at every rate, no page is longer than it or than a second of
// audio, and every packet is in the file. At up to 40 kbit/s a page holds a
// second (50 packets), as before; above, the buffer is full first.
func TestWriter_PageBufferDoesNotGrow(t *testing.T) {
	for _, kbps := range []int{32, 40, 64, 128} {
		size := kbps * 1000 / 8 / 50 // bytes per 20 ms
		var out bytes.Buffer
		w, err := NewWith(&out)
		if err != nil {
			t.Fatal(err)
		}
		p := &rtp.Packet{Payload: bytes.Repeat([]byte{0xFC}, size)}
		for i := range 500 {
			p.Timestamp = uint32(960 * i)
			if err := w.WriteRTP(p); err != nil {
				t.Fatal(err)
			}
			if c := cap(w.page); c != pageBuffer {
				t.Fatalf("%d kbit/s: after packet %d the page buffer holds %d bytes, want %d", kbps, i, c, pageBuffer)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		packets, pages := readPackets(t, out.Bytes())
		if got := len(packets) - 2; got != 500 {
			t.Errorf("%d kbit/s: %d audio packets in the file, want 500", kbps, got)
		}
		prev := uint64(0)
		for i, pg := range pages[2:] {
			if n := ogg.HeaderSize + len(pg.Lacing) + len(pg.Body); n > pageBuffer {
				t.Errorf("%d kbit/s: page %d is %d bytes, over the buffer's %d", kbps, i, n, pageBuffer)
			}
			audio := time.Duration(pg.Granule-prev) * time.Second / rate
			prev = pg.Granule
			if audio > time.Second {
				t.Errorf("%d kbit/s: page %d holds %v of audio", kbps, i, audio)
			}
			if kbps <= 40 && i < len(pages)-3 && audio != time.Second {
				t.Errorf("%d kbit/s: page %d holds %v of audio, want 1s", kbps, i, audio)
			}
		}
		t.Logf("%d kbit/s: %d pages for 10 s", kbps, len(pages)-2)
	}
}

// TestWriter_MemoryInUse measures the heap a writer holds (issue 16's budget
// per stream): its page buffer (pageBuffer), segment table and state, 5.8
// KiB; 9.9 KiB with the 8 KiB body of before.
func TestWriter_MemoryInUse(t *testing.T) {
	const n = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ws := make([]*Writer, n)
	for i := range ws {
		w, err := NewWith(io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ws[i] = w
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := int64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(ws)
	t.Logf("a writer holds %d bytes", per)
	if per > 6<<10 {
		t.Errorf("a writer holds %d bytes, want at most %d", per, 6<<10)
	}
}
