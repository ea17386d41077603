package composite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCompose makes a 720p 15 fps grid of 2, 4 and 9 participants
// (each a 640x360 30 fps VP8 camera with an Opus tone, 60 s) and reports
// the speed as a multiple of real time and the CPU seconds per recorded
// minute (ffmpeg's user and system time, all its threads, and the mix's):
//
//	go test -run '^$' -bench Compose -benchtime 1x ./composition/composite/
//
// COMPOSE_BENCH_SECONDS changes the recording's length. COMPOSE_BENCH_DIR
// keeps the recordings in that directory and uses them again in a later run
// (so that a measurement does not include making them).
// COMPOSE_BENCH_THREADS and COMPOSE_BENCH_PRESET set Options.Threads and
// Options.Preset.
func BenchmarkCompose(b *testing.B) {
	length := 60.0
	if v := os.Getenv("COMPOSE_BENCH_SECONDS"); v != "" {
		fmt.Sscan(v, &length)
	}
	var o Options
	o.Threads, _ = strconv.Atoi(os.Getenv("COMPOSE_BENCH_THREADS"))
	o.Preset = os.Getenv("COMPOSE_BENCH_PRESET")
	colors := []string{"red", "blue", "green", "yellow", "white", "cyan", "magenta", "orange", "purple"}
	for _, n := range []int{2, 4, 9} {
		b.Run(fmt.Sprintf("grid-%d", n), func(b *testing.B) {
			f := &fixture{length: length}
			for i := 0; i < n; i++ {
				f.parts = append(f.parts, part{user: fmt.Sprintf("p%d", i), color: colors[i], size: "640x360", rate: 30,
					freq: 300 + 100*float64(i), from: 0, to: length})
			}
			dir := b.TempDir()
			if keep := os.Getenv("COMPOSE_BENCH_DIR"); keep != "" {
				dir = filepath.Join(keep, fmt.Sprintf("grid-%d-%gs", n, length))
			}
			manifest := filepath.Join(dir, "manifest.json")
			if _, err := os.Stat(manifest); err != nil {
				manifest = f.write(b, dir)
			}
			out := filepath.Join(b.TempDir(), File)
			b.ResetTimer()
			var res *Result
			for b.Loop() {
				var err error
				res, err = ComposePath(context.Background(), manifest, out, Settings{Layout: LayoutGrid}, o)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Duration/res.Elapsed.Seconds(), "x-realtime")
			b.ReportMetric(res.CPU.Seconds()/(res.Duration/60), "cpu-s/min")
			b.Logf("%d participants, %.0f s: %.2fx real time, %.1f CPU s per recorded minute (elapsed %v, CPU %v)",
				n, res.Duration, res.Duration/res.Elapsed.Seconds(), res.CPU.Seconds()/(res.Duration/60), res.Elapsed.Round(time.Millisecond), res.CPU.Round(time.Millisecond))
		})
	}
}
