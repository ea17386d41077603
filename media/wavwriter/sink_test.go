package wavwriter_test

import (
	"github.com/rtcrec/recorder/media"
	"github.com/rtcrec/recorder/media/wavwriter"
)

// The mix WAV is the mixer's sink.
var _ media.FrameSink = (*wavwriter.Writer)(nil)
