package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rtcrec/recorder/api"
	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/storage"
)

// openBucket opens the bucket of an application's storage profile, with the
// recorder's attachment signer for LOCAL and SFTP storage.
func openBucket(ctx context.Context, cfg *config.Config, app string) (*storage.Bucket, *recorder.Attachments, error) {
	if err := recorder.ValidateID("applicationId", app); err != nil {
		return nil, nil, err
	}
	id, err := api.LoadIdentity(cfg)
	if err != nil {
		return nil, nil, err
	}
	base := cfg.PublicURL
	if base == "" {
		base = "http://" + cfg.Listen
	}
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil {
		return nil, nil, fmt.Errorf("publicURL: %w", err)
	}
	att := &recorder.Attachments{Base: u, Signer: storage.NewURLSigner([]byte(id.SigningKey))}
	b, err := api.OpenBucket(cfg, att)(ctx, app, cfg.Profile(app))
	return b, att, err
}

// verify runs the five storage checks on an application's profile.
func verify(args []string, stdout, stderr io.Writer) (bool, error) {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	app := fs.String("application", "", "applicationId whose storage profile to check (required)")
	asJSON := fs.Bool("json", false, "print the result as seed 004's StorageVerificationStatusMessage")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *app == "" {
		return false, errors.New("verify: --application is required")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return false, err
	}
	ctx := context.Background()
	b, _, err := openBucket(ctx, cfg, *app)
	if err != nil {
		return false, err
	}
	defer b.Close()
	p := cfg.Profile(*app)
	res := storage.Verify(ctx, b, strings.Trim(p.Prefix, "/"), &storage.VerifyOptions{Secrets: p.Secrets()})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return res.OK(), nil
	}
	fmt.Fprintf(stdout, "storage profile of %s: %s %s\n", *app, p.Provider, b.Location())
	for _, c := range []struct {
		name string
		r    storage.CheckResult
	}{{"bucket", res.Bucket}, {"write", res.Write}, {"read", res.Read}, {"modify", res.Modify}, {"delete", res.Delete}} {
		mark := "FAIL"
		if c.r.Passed {
			mark = "ok  "
		}
		fmt.Fprintf(stdout, "  %s %-6s %s\n", mark, c.name, c.r.Message)
	}
	return res.OK(), nil
}

// sign prints a signed URL: for an attachment URL (or its path) the
// recorder's own HMAC signature; for an object key the storage profile's
// signed URL (native for S3, Azure, GCS; the attachment URL for LOCAL, SFTP).
func sign(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	app := fs.String("application", "default", "applicationId whose storage holds the object (for object keys)")
	ttl := durationFlag(fs, "ttl", 0, "validity (default urlTTL of the configuration, 1h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("sign: give one URL or object key")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *ttl <= 0 {
		*ttl = cfg.URLTTL
	}
	arg := fs.Arg(0)
	ctx := context.Background()
	b, att, err := openBucket(ctx, cfg, *app)
	if err != nil {
		return err
	}
	defer b.Close()
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") || strings.HasPrefix(arg, "/") {
		u, err := url.Parse(arg)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(strings.TrimPrefix(u.Path, api.Seed004Prefix), recorder.AttachmentPath) {
			return fmt.Errorf("sign: %s is not an attachment URL (%s…)", u.Path, recorder.AttachmentPath)
		}
		if u.Host == "" {
			u.Scheme, u.Host = att.Base.Scheme, att.Base.Host
		}
		fmt.Fprintln(stdout, att.Signer.Sign("GET", u, *ttl).String())
		return nil
	}
	s, err := b.SignedURL(ctx, arg, &storage.SignedURLOptions{Expiry: *ttl})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, s)
	return nil
}

// mix rebuilds a recording's mix offline from its per-track files and manifest.
func mix(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mix", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output WAV (default mix-offline.wav beside the manifest)")
	rate := fs.Int("rate", 8000, "sample rate: 8000, 16000 or 48000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("mix: give a manifest.json or the directory holding it")
	}
	manifest := fs.Arg(0)
	if fi, err := os.Stat(manifest); err == nil && fi.IsDir() {
		manifest = filepath.Join(manifest, composition.ManifestFile)
	}
	if *out == "" {
		*out = filepath.Join(filepath.Dir(manifest), "mix-offline.wav")
	}
	m, err := composition.MixOffline(manifest, *out, *rate)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d Hz, %d channel, %.2f s, %d bytes\n", *out, m.SampleRate, m.Channels, m.Duration, m.Size)
	return nil
}

// token prints a publish token (api.PublishTokens) signed with the recorder's
// signing key: what POST /api/publishtokens returns, for a backend or a test
// that runs beside the recorder.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	org := fs.String("organization", "", "organizationId (default: the organization of the configured keys, when there is one)")
	conf := fs.String("conference", "", "conferenceId the token publishes to (required)")
	user := fs.String("user", "", "userId the token publishes as (required)")
	types := fs.String("types", "MIC,CAM,SCREEN", "stream types the token allows, comma-separated")
	ttl := durationFlag(fs, "ttl", api.DefaultPublishTokenTTL, "validity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conf == "" || *user == "" {
		return errors.New("token: --conference and --user are required")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	id, err := api.LoadIdentity(cfg)
	if err != nil {
		return err
	}
	if *org == "" {
		orgs := map[string]bool{}
		for _, k := range id.Keys {
			orgs[k.OrganizationID] = true
		}
		if len(orgs) != 1 {
			return errors.New("token: the keys belong to several organizations: give --organization")
		}
		for o := range orgs {
			*org = o
		}
	}
	tok, c, err := api.NewPublishTokens(id.SigningKey, cfg.Limits.PublishTokenTTL).Mint(api.PublishClaims{
		OrganizationID: *org, ConferenceID: *conf, UserID: *user, StreamTypes: strings.Split(*types, ","),
	}, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "valid until %s for %s/%s as %s (%s)\n", time.Unix(c.Expires, 0).UTC().Format(time.RFC3339), c.OrganizationID, c.ConferenceID, c.UserID, strings.Join(c.StreamTypes, ","))
	return nil
}
