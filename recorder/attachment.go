package recorder

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/rtcrec/recorder/composition"
	"github.com/rtcrec/recorder/storage"
)

// Attachment kinds: the {kind} segment of attachment URLs and the folder of
// the recording that each kind lives in.
var attachmentFolders = map[string]string{
	"track":       composition.TracksDir,
	"composition": "",
	"cobrowse":    "cobrowse/",
	"transcript":  "",
}

// AttachmentPath is the path prefix of the recorder's signed attachment URLs:
// {AttachmentPath}{kind}/{conversationId}/{recorderId}/{instanceId}/{path...}.
const AttachmentPath = "/api/recordings/attachment/"

type urlPrefixKey struct{}

// WithURLPrefix returns ctx with a path prefix for the attachment URLs signed
// under it: the API sets seed 004's /auvious.video/rtc-recorder for requests
// that came in under that prefix, so the URLs they get back are under it too.
func WithURLPrefix(ctx context.Context, prefix string) context.Context {
	return context.WithValue(ctx, urlPrefixKey{}, prefix)
}

// URLPrefix returns the prefix WithURLPrefix set on ctx, or "".
func URLPrefix(ctx context.Context) string {
	p, _ := ctx.Value(urlPrefixKey{}).(string)
	return p
}

// Attachments makes the recorder's own signed URLs (HMAC, storage.URLSigner)
// for objects of storage without native signed URLs (LOCAL, SFTP), and maps
// such URLs back to object keys.
type Attachments struct {
	Base   *url.URL // the recorder's public URL
	Signer *storage.URLSigner
}

// SignKeyFunc returns the SignURL function of a bucket whose keys start with
// prefix (the storage profile's prefix): the key
// {prefix}/{org}/{c}/{r}/{i}/{rest} gets the URL of kind/{c}/{r}/{i}/{path}.
func (a *Attachments) SignKeyFunc(prefix string) func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
	prefix = strings.Trim(prefix, "/")
	return func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error) {
		rest := key
		if prefix != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(key, prefix+"/"); !ok {
				return "", errNotAttachment
			}
		}
		seg := strings.SplitN(rest, "/", 5)
		if len(seg) != 5 {
			return "", errNotAttachment
		}
		c, r, i, p := seg[1], seg[2], seg[3], seg[4]
		kind := "composition"
		switch {
		case strings.HasPrefix(p, composition.TracksDir):
			kind, p = "track", strings.TrimPrefix(p, composition.TracksDir)
		case strings.HasPrefix(p, "cobrowse/"):
			kind, p = "cobrowse", strings.TrimPrefix(p, "cobrowse/")
		case p == "chat.json":
			kind = "transcript"
		}
		method, expiry := "GET", time.Hour
		if opts != nil {
			if opts.Method != "" {
				method = opts.Method
			}
			if opts.Expiry > 0 {
				expiry = opts.Expiry
			}
		}
		u := *a.Base
		u.Path = strings.TrimSuffix(u.Path, "/") + URLPrefix(ctx) + AttachmentPath + kind + "/" + c + "/" + r + "/" + i + "/" + p
		u.RawPath = ""
		return a.Signer.Sign(method, &u, expiry).String(), nil
	}
}

var errNotAttachment = &storage.Error{Code: storage.Unimplemented, Op: "signedurl",
	Err: errors.New("key is not part of a recording")}

// AttachmentKey maps the parts of an attachment URL to the object key of rec,
// checking every part: an unknown kind or a path that could leave the
// recording is an error.
func AttachmentKey(rec *Recording, kind, path string) (string, error) {
	folder, ok := attachmentFolders[kind]
	if !ok {
		return "", errorf(KindNotFound, "not_found", "unknown attachment kind %q", kind)
	}
	if path == "" || storage.ValidateKey(path) != nil {
		return "", errorf(KindNotFound, "not_found", "bad attachment path")
	}
	return rec.Storage.Prefix + folder + path, nil
}
