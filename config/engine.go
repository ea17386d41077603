package config

import (
	"fmt"
	"time"
)

// The shutdown policies.
const (
	ShutdownStop = "stop"
	ShutdownWait = "wait"
)

// ShutdownConfig is the graceful drain policy (config key shutdown).
type ShutdownConfig struct {
	Policy   string        `yaml:"policy"`   // stop (default) | wait
	Deadline time.Duration `yaml:"deadline"` // wait: longest wait for recordings to end by themselves (30s)
	// Timeout bounds stopping, composing and uploading after the wait
	// (default 2m); what is unfinished then is recovered at the next start.
	Timeout time.Duration `yaml:"timeout"`
}

func (c *ShutdownConfig) setDefaults() {
	if c.Policy == "" {
		c.Policy = ShutdownStop
	}
	if c.Deadline <= 0 {
		c.Deadline = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
}

func (c *ShutdownConfig) validate() error {
	if c.Policy != ShutdownStop && c.Policy != ShutdownWait {
		return fmt.Errorf("recorder: config: shutdown.policy %q is not stop or wait", c.Policy)
	}
	return nil
}

// Budget is the longest a whole drain may take: the wait of the policy plus
// the timeout for stopping and uploading.
func (c *ShutdownConfig) Budget() time.Duration {
	if c.Policy == ShutdownWait {
		return c.Deadline + c.Timeout
	}
	return c.Timeout
}

// UploadConfig tunes the upload queue (config key uploads). Zero values take
// the defaults of recorder/upload.Options.
type UploadConfig struct {
	MinBackoff     time.Duration `yaml:"minBackoff"`     // first retry delay (1s)
	MaxBackoff     time.Duration `yaml:"maxBackoff"`     // largest retry delay (5m)
	PermanentRetry time.Duration `yaml:"permanentRetry"` // retry delay after a permanent error (10m)
	Deadline       time.Duration `yaml:"deadline"`       // give up after this long (never)
	Workers        int           `yaml:"workers"`        // uploads in flight (2)
	// ChunkInterval uploads every file of a recording (mix and tracks) in
	// parts while it is recorded, one part per interval; 60s
	// when unset or zero, off when negative (e.g. -1s).
	ChunkInterval time.Duration `yaml:"chunkInterval"`
}

// CompositeConfig tunes composite videos (config key composite).
type CompositeConfig struct {
	Workers  int    `yaml:"workers"`  // compositions at once (1)
	Queue    int    `yaml:"queue"`    // compositions waiting at most (100); more are refused
	Nice     int    `yaml:"nice"`     // niceness of ffmpeg (10); -1: unchanged
	Threads  int    `yaml:"threads"`  // ffmpeg threads (0: ffmpeg's choice)
	Preset   string `yaml:"preset"`   // x264 preset (veryfast)
	FFmpeg   string `yaml:"ffmpeg"`   // ffmpeg binary (ffmpeg on PATH)
	FFprobe  string `yaml:"ffprobe"`  // ffprobe binary (ffprobe on PATH)
	FontFile string `yaml:"fontFile"` // font of the names (DejaVu Sans)
	// Fleet, in a fleet (store.driver postgres): "send" hands this
	// instance's composite jobs to the fleet's composition instances,
	// "take" makes this instance one of them (it takes the fleet's jobs,
	// and composes its own); empty: every instance composes its own.
	Fleet string `yaml:"fleet"`
}

// The values of CompositeConfig.Fleet.
const (
	CompositeFleetSend = "send"
	CompositeFleetTake = "take"
)

func (c *CompositeConfig) validateFleet(cluster bool) error {
	switch c.Fleet {
	case "":
		return nil
	case CompositeFleetSend, CompositeFleetTake:
		if !cluster {
			return fmt.Errorf("recorder: config: composite.fleet %q needs a fleet (store.driver: postgres)", c.Fleet)
		}
		return nil
	}
	return fmt.Errorf("recorder: config: composite.fleet %q is not send or take", c.Fleet)
}
