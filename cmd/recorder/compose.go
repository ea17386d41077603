package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rtcrec/recorder/composition/composite"
)

// compose writes composite.mp4 of a recording folder: the offline
// counterpart of the service's composition.
func compose(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output MP4 (default composite.mp4 beside the manifest)")
	layout := fs.String("layout", "grid", "grid, speaker or single")
	user := fs.String("user", "", "the participant (userId) of the single layout")
	size := fs.String("size", "1280x720", "width x height, even")
	fps := fs.Int("fps", 15, "frames per second")
	nice := fs.Int("nice", 10, "niceness of ffmpeg (0: unchanged)")
	threads := fs.Int("threads", 0, "ffmpeg threads (0: ffmpeg's choice)")
	preset := fs.String("preset", "veryfast", "x264 preset")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("compose: give a manifest.json or the directory holding it (flags first)")
	}
	w, h, ok := strings.Cut(*size, "x")
	width, err1 := strconv.Atoi(w)
	height, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("compose: --size %q is not WIDTHxHEIGHT", *size)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := composite.Settings{Layout: *layout, Width: width, Height: height, FPS: *fps, UserID: *user}
	o := composite.Options{Nice: *nice, Threads: *threads, Preset: *preset, Logger: newLogger(stderr, "text", slog.LevelWarn)}
	start := time.Now()
	res, err := composite.ComposePath(ctx, fs.Arg(0), *out, s, o)
	if err != nil {
		return err
	}
	fi, err := os.Stat(res.File)
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "%s: %s %dx%d %d fps, %.2f s, %d tiles, %d bytes, %.1fx real time\n", res.File, res.Layout,
		res.Width, res.Height, res.FPS, res.Duration, res.Tiles, fi.Size(), res.Duration/took.Seconds())
	return nil
}
