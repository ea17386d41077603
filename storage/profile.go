package storage

// The provider names of a storage profile: seed 004's, and LOCAL.
const (
	ProviderS3    = "AMAZON_S3"
	ProviderAzure = "AZURE_BLOB"
	ProviderGCS   = "GOOGLE_CLOUD"
	ProviderSFTP  = "SFTP_STORAGE"
	ProviderLocal = "LOCAL"
)

// Profile is where an application's recordings go: a provider, its bucket
// and prefix, and its credentials. Credentials are write-only: nothing the
// API returns contains them. storage/open turns a Profile into a *Bucket.
type Profile struct {
	Provider string `yaml:"provider"`
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"`
	// AMAZON_S3
	Region          string `yaml:"region"`
	Endpoint        string `yaml:"endpoint"`
	PathStyle       bool   `yaml:"pathStyle"`
	AccessKeyID     string `yaml:"accessKeyId"`
	SecretAccessKey string `yaml:"secretAccessKey"`
	// AZURE_BLOB
	AccountName      string `yaml:"accountName"`
	AccountKey       string `yaml:"accountKey"`
	ConnectionString string `yaml:"connectionString"`
	SASToken         string `yaml:"sasToken"` // a container or account SAS ("sv=…&sig=…"); signs no URLs
	Container        string `yaml:"container"`
	// GOOGLE_CLOUD
	CredentialsFile string `yaml:"credentialsFile"`
	CredentialsJSON string `yaml:"credentialsJSON"`
	// SFTP_STORAGE
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	User           string `yaml:"user"`
	Password       string `yaml:"password"`
	PrivateKeyFile string `yaml:"privateKeyFile"`
	HostKey        string `yaml:"hostKey"`
	KnownHostsFile string `yaml:"knownHostsFile"`
	// SFTP_STORAGE and LOCAL
	Dir string `yaml:"dir"`
}

// Secrets returns the profile's credentials that are set (secret access
// key, account key, connection string, SAS token, password, service-account
// JSON): strings no message, response or log line may contain.
func (p *Profile) Secrets() []string {
	var out []string
	for _, s := range []string{p.SecretAccessKey, p.AccountKey, p.ConnectionString, p.SASToken, p.Password, p.CredentialsJSON} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
