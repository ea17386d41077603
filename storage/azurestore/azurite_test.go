package azurestore

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/rtcrec/recorder/internal/testenv"
	"github.com/rtcrec/recorder/storage/azurestore/azuritetest"
)

// shared is the one Azurite of this test binary, started by the first test
// that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	az   *azuritetest.Azurite
	err  error
	stop func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// sharedAzurite returns the package's Azurite, starting it if needed.
func sharedAzurite(t testing.TB) *azuritetest.Azurite {
	t.Helper()
	shared.once.Do(func() { shared.az, shared.stop, shared.err = azuritetest.Launch() })
	switch {
	case errors.Is(shared.err, azuritetest.ErrNotInstalled):
		testenv.Missing(t, shared.err.Error())
	case shared.err != nil:
		t.Fatal(shared.err)
	}
	return shared.az
}

// testOptions returns driver options for container with the account key.
func testOptions(az *azuritetest.Azurite, container string) *Options {
	return &Options{AccountName: azuritetest.Account, AccountKey: azuritetest.Key, Endpoint: az.Endpoint, Container: container}
}
