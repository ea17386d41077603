package recorder

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore"
	"github.com/rtcrec/recorder/storage/filestore"
	"github.com/rtcrec/recorder/storage/gcsstore"
	"github.com/rtcrec/recorder/storage/s3store"
	"github.com/rtcrec/recorder/storage/sftpstore"
)

// OpenBucket returns the BucketOpener of the recorder: storage profile →
// driver, in this one place. LOCAL and SFTP objects get the recorder's own
// signed attachment URLs from att; the cloud providers sign natively.
// A LOCAL profile without dir stores under {dataDir}/storage.
func OpenBucket(dataDir string, att *Attachments) BucketOpener {
	return func(ctx context.Context, applicationID string, p *StorageProfile) (*storage.Bucket, error) {
		sign := att.SignKeyFunc(p.Prefix)
		switch p.Provider {
		case ProviderLocal, "":
			dir := p.Dir
			if dir == "" {
				dir = filepath.Join(dataDir, "storage")
			}
			return filestore.NewBucket(dir, &filestore.Options{SignURL: sign, CreateDir: true})
		case ProviderS3:
			pr, err := s3store.New(ctx, s3store.Options{Bucket: p.Bucket, Region: p.Region, Endpoint: p.Endpoint,
				PathStyle: p.PathStyle, AccessKeyID: p.AccessKeyID, SecretAccessKey: p.SecretAccessKey})
			if err != nil {
				return nil, err
			}
			return storage.NewBucket(pr), nil
		case ProviderAzure:
			return azurestore.OpenBucket(&azurestore.Options{AccountName: p.AccountName, AccountKey: p.AccountKey,
				ConnectionString: p.ConnectionString, SASToken: p.SASToken, Container: cmp.Or(p.Container, p.Bucket), Endpoint: p.Endpoint})
		case ProviderGCS:
			return gcsstore.OpenBucket(ctx, &gcsstore.Options{Bucket: p.Bucket, CredentialsFile: p.CredentialsFile,
				CredentialsJSON: []byte(p.CredentialsJSON), Endpoint: p.Endpoint})
		case ProviderSFTP:
			return sftpstore.OpenBucket(&sftpstore.Options{
				Host: p.Host, Port: p.Port, User: p.User, Password: p.Password, PrivateKeyFile: p.PrivateKeyFile,
				HostKey: p.HostKey, KnownHostsFile: p.KnownHostsFile, Dir: p.Dir, SignURL: sign,
			})
		}
		return nil, fmt.Errorf("recorder: application %s: storage provider %s is not available in this build", applicationID, p.Provider)
	}
}
