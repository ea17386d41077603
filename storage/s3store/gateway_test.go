package s3store

import (
	"os"
	"sync"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/storage/s3store/s3test"
)

// The test gateway: versitygw (storage/s3store/s3test), one shared by the
// tests of this process, stopped by PID in TestMain.
const (
	rootAccess     = s3test.Access
	rootSecret     = s3test.Secret
	readOnlyAccess = s3test.ReadOnlyAccess
	readOnlySecret = s3test.ReadOnlySecret
)

var (
	gwOnce sync.Once
	gw     *s3test.Gateway
	gwErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if gw != nil {
		gw.Stop()
	}
	os.Exit(code)
}

// sharedGateway returns the gateway shared by the tests of this process,
// starting it on first use. Without Go or with a failed build the test is
// skipped outside CI and fails under CI.
func sharedGateway(t testing.TB) *s3test.Gateway {
	t.Helper()
	gwOnce.Do(func() { gw, gwErr = s3test.Launch() })
	if gwErr != nil {
		testenv.Missing(t, "versitygw test gateway: "+gwErr.Error())
	}
	return gw
}
