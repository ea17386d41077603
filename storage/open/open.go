// Package open opens the *storage.Bucket of a storage.Profile: the one place
// that maps a provider name to its driver. It is the only package that links
// every storage SDK; the recorder engine gets its buckets through a function
// that cmd wires to For, so the engine itself imports only package storage.
package open

import (
	"cmp"
	"context"
	"fmt"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore"
	"github.com/rtcrec/recorder/storage/filestore"
	"github.com/rtcrec/recorder/storage/gcsstore"
	"github.com/rtcrec/recorder/storage/s3store"
	"github.com/rtcrec/recorder/storage/sftpstore"
)

// SignFunc makes a signed URL for an object key (the SignURL option of the
// filestore and sftpstore drivers).
type SignFunc = func(ctx context.Context, key string, opts *storage.SignedURLOptions) (string, error)

// Options are what every profile shares.
type Options struct {
	// LocalDir is where a LOCAL profile without a dir stores its objects.
	LocalDir string
	// SignURL returns the signer of the objects of a profile with the given
	// prefix, for the providers that cannot sign URLs themselves (LOCAL and
	// SFTP: the recorder serves their objects through its own signed
	// attachment URLs). Nil leaves those objects without URLs.
	SignURL func(prefix string) SignFunc
}

// Bucket opens the bucket of profile p. It does not contact the provider;
// storage.Verify does.
func Bucket(ctx context.Context, p *storage.Profile, opts Options) (*storage.Bucket, error) {
	var sign SignFunc
	if opts.SignURL != nil {
		sign = opts.SignURL(p.Prefix)
	}
	switch p.Provider {
	case storage.ProviderLocal, "":
		return filestore.OpenBucket(ctx, filestore.Options{Dir: cmp.Or(p.Dir, opts.LocalDir), SignURL: sign, CreateDir: true})
	case storage.ProviderS3:
		return s3store.OpenBucket(ctx, s3store.Options{Bucket: p.Bucket, Region: p.Region, Endpoint: p.Endpoint,
			PathStyle: p.PathStyle, AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey})
	case storage.ProviderAzure:
		return azurestore.OpenBucket(ctx, azurestore.Options{AccountName: p.AccountName, AccountKey: p.AccountKey,
			ConnectionString: p.ConnectionString, SASToken: p.SASToken, Container: cmp.Or(p.Container, p.Bucket), Endpoint: p.Endpoint})
	case storage.ProviderGCS:
		return gcsstore.OpenBucket(ctx, gcsstore.Options{Bucket: p.Bucket, CredentialsFile: p.CredentialsFile,
			CredentialsJSON: []byte(p.CredentialsJSON), Endpoint: p.Endpoint})
	case storage.ProviderSFTP:
		return sftpstore.OpenBucket(ctx, sftpstore.Options{
			Host: p.Host, Port: p.Port, User: p.User, Password: p.Password, PrivateKeyFile: p.PrivateKeyFile,
			HostKey: p.HostKey, KnownHostsFile: p.KnownHostsFile, Dir: p.Dir, SignURL: sign,
		})
	}
	return nil, fmt.Errorf("open: storage provider %s is not available in this build", p.Provider)
}

// For returns a function opening the bucket of an application's profile
// with opts: the recorder's BucketOpener.
func For(opts Options) func(ctx context.Context, applicationID string, p *storage.Profile) (*storage.Bucket, error) {
	return func(ctx context.Context, applicationID string, p *storage.Profile) (*storage.Bucket, error) {
		b, err := Bucket(ctx, p, opts)
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", applicationID, err)
		}
		return b, nil
	}
}
