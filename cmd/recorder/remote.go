package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rtcrec/recorder/client"
)

// The client subcommands talk to a running recorder: --server (default
// $RECORDER_SERVER or http://127.0.0.1:8080) with the API key from the
// environment variable named by --key-env (default RECORDER_API_KEY).
//
// Exit codes: 0 success; 1 another error; 2 usage; 3 not found (404);
// 4 refused (401, 403: a missing, wrong or unscoped key); 5 conflict (409);
// 6 server unreachable or unavailable (503); 7 a download's checksum
// differs from the manifest.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitRefused     = 4
	exitConflict    = 5
	exitUnavailable = 6
	exitChecksum    = 7
)

// httpClient is the client subcommands' HTTP client (tests replace it).
var httpClient = &http.Client{}

// remoteFlags are the flags every client subcommand has.
type remoteFlags struct {
	fs      *flag.FlagSet
	server  *string
	keyEnv  *string
	asJSON  *bool
	timeout *time.Duration
}

func newRemoteFlags(name string, stderr io.Writer) *remoteFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("RECORDER_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	return &remoteFlags{
		fs:      fs,
		server:  fs.String("server", def, "base URL of the recorder (default $RECORDER_SERVER or http://127.0.0.1:8080)"),
		keyEnv:  fs.String("key-env", "RECORDER_API_KEY", "environment variable holding the API key"),
		asJSON:  fs.Bool("json", false, "print JSON for scripts instead of a table"),
		timeout: fs.Duration("timeout", 10*time.Minute, "give up after this long (tail: 0 = never)"),
	}
}

func (f *remoteFlags) client() (*client.Client, error) {
	key := os.Getenv(*f.keyEnv)
	if key == "" {
		return nil, usageError(fmt.Sprintf("no API key: set the environment variable %s", *f.keyEnv))
	}
	c := client.New(*f.server, key)
	c.HTTP = httpClient
	return c, nil
}

// usageError is an error of the command line itself (exit 2).
type usageError string

func (e usageError) Error() string { return string(e) }

// exitCode maps a client subcommand's error to its exit code.
func exitCode(err error) int {
	var ue usageError
	var ce *checksumError
	var ne net.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.As(err, &ce):
		return exitChecksum
	}
	switch client.StatusOf(err) {
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitRefused
	case http.StatusConflict:
		return exitConflict
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return exitUnavailable
	case 0:
		if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) {
			return exitUnavailable
		}
	}
	return exitError
}

// runRemote runs one client subcommand and returns its exit code.
func runRemote(cmd string, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "ls":
		err = cmdList(ctx, args, stdout, stderr)
	case "get":
		err = cmdGet(ctx, args, stdout, stderr)
	case "download":
		err = cmdDownload(ctx, args, stdout, stderr)
	case "tail":
		err = cmdTail(ctx, args, stdout, stderr)
	case "start":
		err = cmdStart(ctx, args, stdout, stderr)
	case "stop", "pause", "resume":
		err = cmdControl(ctx, cmd, args, stdout, stderr)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "recorder "+cmd+":", err)
	}
	return exitCode(err)
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// oneRef parses the single recording argument.
// parseOne parses args, which must name one recording, and returns it with
// the client of the server the flags give.
func (f *remoteFlags) parseOne(args []string) (client.Ref, *client.Client, error) {
	if err := f.fs.Parse(args); err != nil {
		return client.Ref{}, nil, err
	}
	ref, err := oneRef(f.fs)
	if err != nil {
		return client.Ref{}, nil, err
	}
	c, err := f.client()
	return ref, c, err
}

func oneRef(fs *flag.FlagSet) (client.Ref, error) {
	if fs.NArg() != 1 {
		return client.Ref{}, usageError("want one recording: conversationId/recorderId/instanceId (as recorder ls prints it)")
	}
	r, err := client.ParseRef(fs.Arg(0))
	if err != nil {
		return client.Ref{}, usageError(err.Error())
	}
	return r, nil
}

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags("ls", stderr)
	state := f.fs.String("state", "", "only these states, comma-separated (ACTIVE, STOPPED, FAILED, ABORTED, ...)")
	conv := f.fs.String("conversation", "", "only this conversationId")
	conf := f.fs.String("conference", "", "only this conferenceId")
	user := f.fs.String("participant", "", "only recordings with this userId")
	from := f.fs.String("from", "", "started at or after (RFC 3339)")
	to := f.fs.String("to", "", "started before (RFC 3339)")
	limit := f.fs.Int("limit", 20, "recordings per page (1-100)")
	page := f.fs.String("page", "", "page token printed by an earlier call")
	all := f.fs.Bool("all", false, "follow every page")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	o := client.ListOptions{ConversationID: *conv, ConferenceID: *conf, Participant: *user, From: *from, To: *to, Limit: *limit, PageToken: *page}
	if *state != "" {
		o.States = strings.Split(*state, ",")
	}
	out := &client.List{Recordings: []client.Summary{}}
	for {
		l, err := c.List(ctx, o)
		if err != nil {
			return err
		}
		out.Recordings = append(out.Recordings, l.Recordings...)
		out.NextPageToken = l.NextPageToken
		if !*all || l.NextPageToken == "" {
			break
		}
		o.PageToken = l.NextPageToken
	}
	if *f.asJSON {
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORDING\tSTATE\tSTARTED\tDURATION\tPARTICIPANTS")
	for _, r := range out.Recordings {
		st := r.State
		if r.Paused {
			st += " (paused)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Ref(), st, r.Started, (time.Duration(r.Duration * float64(time.Second))).Round(time.Second),
			strings.Join(r.Participants, ","))
	}
	if out.NextPageToken != "" {
		fmt.Fprintf(tw, "(more: --page %s)\n", out.NextPageToken)
	}
	return tw.Flush()
}

func cmdGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags("get", stderr)
	ref, c, err := f.parseOne(args)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	rec, err := c.Recording(ctx, ref)
	if err != nil {
		return err
	}
	files, err := c.Files(ctx, ref)
	if err != nil {
		return err
	}
	if *f.asJSON {
		return printJSON(stdout, struct {
			Recording *client.Recording `json:"recording"`
			Files     []client.File     `json:"files"`
		}{rec, files.Files})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "recording\t%s\nconference\t%s\nstate\t%s\n", ref, rec.ConferenceID, rec.State)
	fmt.Fprintf(tw, "started\t%s\nstopped\t%s\n", rec.Started, rec.Stopped)
	if rec.Error != nil {
		fmt.Fprintf(tw, "error\t%s: %s\n", rec.Error.Code, rec.Error.Message)
	}
	if rec.StorageProfile != nil {
		fmt.Fprintf(tw, "storage\t%s %s\n", rec.StorageProfile.Provider, rec.StorageProfile.URL)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "FILE\tKIND\tUSER\tSIZE\tSHA-256\tSTATUS")
	for _, fl := range files.Files {
		status := "uploaded"
		switch {
		case fl.Error != nil:
			status = "error: " + fl.Error.Message
		case fl.Uploaded == "":
			status = "pending"
		}
		sum := fl.SHA256
		if len(sum) > 12 {
			sum = sum[:12] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", fl.File, fl.Kind, fl.UserID, fl.Size, sum, status)
	}
	return tw.Flush()
}

func cmdStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags("start", stderr)
	var req client.StartRequest
	f.fs.StringVar(&req.ApplicationID, "application", "", "applicationId (required)")
	f.fs.StringVar(&req.ConferenceID, "conference", "", "conferenceId (required)")
	f.fs.StringVar(&req.ConversationID, "conversation", "", "conversationId (required)")
	f.fs.BoolVar(&req.Video, "video", false, "record video too")
	f.fs.BoolVar(&req.Duplicate, "duplicate", false, "allow a second ACTIVE recording of the conversation")
	f.fs.StringVar(&req.PauseBehavior, "pause-behavior", "", "silence or skip")
	f.fs.StringVar(&req.MaxDuration, "max-duration", "", `stop after this long ("2h")`)
	meta := map[string]string{}
	f.fs.Func("metadata", "key=value kept with the recording (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return errors.New("want key=value")
		}
		meta[k] = v
		return nil
	})
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if req.ApplicationID == "" || req.ConferenceID == "" || req.ConversationID == "" {
		return usageError("--application, --conference and --conversation are required")
	}
	if len(meta) > 0 {
		req.Metadata = meta
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	ev, err := c.Start(ctx, req)
	if err != nil {
		return err
	}
	return printEvent(stdout, ev, *f.asJSON)
}

func printEvent(w io.Writer, ev *client.RecordingEvent, asJSON bool) error {
	if asJSON {
		return printJSON(w, ev)
	}
	st := ev.State
	if ev.Paused {
		st += " (paused)"
	}
	if ev.Error != nil {
		st += " " + ev.Error.Code + ": " + ev.Error.Message
	}
	_, err := fmt.Fprintf(w, "%s\t%s\n", ev.Ref(), st)
	return err
}

func cmdControl(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags(cmd, stderr)
	ref, c, err := f.parseOne(args)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	call := map[string]func(context.Context, client.Ref) (*client.RecordingEvent, error){
		"stop": c.Stop, "pause": c.Pause, "resume": c.Resume,
	}[cmd]
	ev, err := call(ctx, ref)
	if err != nil {
		return err
	}
	return printEvent(stdout, ev, *f.asJSON)
}

// errStopTail ends tail after --count events.
var errStopTail = errors.New("enough events")

func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags("tail", stderr)
	*f.timeout = 0
	since := f.fs.String("since", "", "replay the events after this event id first")
	count := f.fs.Int("count", 0, "exit after this many events (0: follow until interrupted)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	n := 0
	err = c.Events(ctx, *since, func(ev client.Event) error {
		if *f.asJSON {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			var d struct {
				ConversationID, RecorderID, InstanceID, State string
				UserID                                        string `json:"userId"`
			}
			json.Unmarshal(ev.Data, &d)
			line := fmt.Sprintf("%d\t%s\t%-22s %s/%s/%s", ev.ID, ev.Occurred, ev.Type, d.ConversationID, d.RecorderID, d.InstanceID)
			if d.State != "" {
				line += " " + d.State
			}
			if d.UserID != "" {
				line += " user=" + d.UserID
			}
			fmt.Fprintln(stdout, line)
		}
		if n++; *count > 0 && n >= *count {
			return errStopTail
		}
		return nil
	})
	if errors.Is(err, errStopTail) || (ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		return nil // enough, or interrupted: a normal end of tail
	}
	if err == nil {
		return errors.New("the server closed the event stream")
	}
	return err
}

// checksumError is a downloaded file whose SHA-256 is not the manifest's.
type checksumError struct{ file, got, want string }

func (e *checksumError) Error() string {
	return fmt.Sprintf("%s: SHA-256 %s, the manifest says %s (the partial file was removed; run again)", e.file, e.got, e.want)
}

// cmdDownload downloads every uploaded file of a recording into a folder:
// the manifest first, then each file into FILE.part (resumed with a Range
// request when a .part is there) renamed once its SHA-256 matches the
// manifest. A file already there with the manifest's size and SHA-256 is not
// downloaded again.
func cmdDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRemoteFlags("download", stderr)
	dir := f.fs.String("o", "", "folder to download into (default: the instanceId)")
	quiet := f.fs.Bool("quiet", false, "no progress bar")
	ref, c, err := f.parseOne(args)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = ref.InstanceID
	}
	ctx, cancel := withTimeout(ctx, *f.timeout)
	defer cancel()
	files, err := c.Files(ctx, ref)
	if err != nil {
		return err
	}
	var manifestURL string
	for _, fl := range files.Files {
		if fl.Kind == "manifest" {
			manifestURL = fl.URL
		}
	}
	if manifestURL == "" {
		return fmt.Errorf("recording %s has no uploaded manifest yet (state %s)", ref, files.State)
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	body, _, err := c.Download(ctx, manifestURL, 0)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(body, 16<<20))
	body.Close()
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	var man client.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if man.InstanceID != ref.InstanceID {
		return fmt.Errorf("manifest: it is of recording %s, not %s", man.InstanceID, ref.InstanceID)
	}
	if err := os.WriteFile(filepath.Join(*dir, "manifest.json"), raw, 0o640); err != nil {
		return err
	}
	type want struct {
		size int64
		sum  string
	}
	expected := map[string]want{}
	if man.Mix != nil {
		expected[man.Mix.File] = want{man.Mix.Size, man.Mix.SHA256}
	}
	for _, t := range man.Tracks {
		expected[t.File] = want{t.Size, t.SHA256}
	}

	type job struct {
		file, url, local string
		want             want
		have             int64 // bytes of a .part to resume from
	}
	var jobs []job
	var total, done int64
	results := []downloaded{}
	for _, fl := range files.Files {
		if fl.Kind == "manifest" {
			continue
		}
		local, err := safeLocal(*dir, fl.File)
		if err != nil {
			return err
		}
		w, inManifest := expected[fl.File]
		if !inManifest { // chat, cobrowse: checked against the API's record
			w = want{fl.Size, fl.SHA256}
		}
		if fl.URL == "" {
			results = append(results, downloaded{File: fl.File, Status: "not uploaded"})
			continue
		}
		if sum, err := fileSHA256(local); err == nil && sum == w.sum {
			results = append(results, downloaded{File: fl.File, Size: w.size, SHA256: sum, Status: "already complete"})
			continue
		}
		j := job{file: fl.File, url: fl.URL, local: local, want: w}
		if fi, err := os.Stat(local + ".part"); err == nil && fi.Size() <= w.size {
			j.have = fi.Size()
		}
		jobs = append(jobs, j)
		total += w.size
		done += j.have
	}
	var bar *progressbar.ProgressBar
	if !*quiet && len(jobs) > 0 {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("downloading "+ref.InstanceID), progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
		bar.Set64(done)
	}
	for _, j := range jobs {
		status, err := fetchFile(ctx, c, j.url, j.local, j.have, bar)
		if err != nil {
			return fmt.Errorf("%s: %w", j.file, err)
		}
		sum, err := fileSHA256(j.local + ".part")
		if err != nil {
			return err
		}
		if j.want.sum != "" && sum != j.want.sum {
			os.Remove(j.local + ".part")
			return &checksumError{file: j.file, got: sum, want: j.want.sum}
		}
		if err := os.Rename(j.local+".part", j.local); err != nil {
			return err
		}
		results = append(results, downloaded{File: j.file, Size: j.want.size, SHA256: sum, Status: status})
	}
	if bar != nil {
		bar.Finish()
	}
	if *f.asJSON {
		return printJSON(stdout, struct {
			Dir   string       `json:"dir"`
			Files []downloaded `json:"files"`
		}{*dir, results})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSIZE\tSHA-256\tSTATUS")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.File, r.Size, r.SHA256, r.Status)
	}
	return tw.Flush()
}

// downloaded is one line of download's report.
type downloaded struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Status string `json:"status"` // downloaded | resumed | already complete | not uploaded
}

// safeLocal maps a file of the recording to a path under dir, refusing
// anything that would leave it.
func safeLocal(dir, file string) (string, error) {
	clean := path.Clean(file)
	if file == "" || path.IsAbs(file) || clean != file || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(file, "\\") {
		return "", fmt.Errorf("the server listed an unsafe file name %q", file)
	}
	p := filepath.Join(dir, filepath.FromSlash(clean))
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", err
	}
	return p, nil
}

// fetchFile downloads url into local+".part", appending from have bytes on.
func fetchFile(ctx context.Context, c *client.Client, url, local string, have int64, bar *progressbar.ProgressBar) (string, error) {
	body, partial, err := c.Download(ctx, url, have)
	if err != nil {
		return "", err
	}
	defer body.Close()
	flags, status := os.O_CREATE|os.O_WRONLY|os.O_APPEND, "resumed"
	if have == 0 || !partial {
		flags, status = os.O_CREATE|os.O_WRONLY|os.O_TRUNC, "downloaded"
		if bar != nil && have > 0 {
			bar.Add64(-have) // the server sent the whole file again
		}
	}
	out, err := os.OpenFile(local+".part", flags, 0o640)
	if err != nil {
		return "", err
	}
	var w io.Writer = out
	if bar != nil {
		w = io.MultiWriter(out, bar)
	}
	_, err = io.Copy(w, body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return status, err
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
