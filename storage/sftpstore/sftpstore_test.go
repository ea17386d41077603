package sftpstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/sftpstore/sftptest"
	"github.com/rtcrec/recorder/storage/storagetest"
)

// subdir returns a fresh directory below root for one subtest's "bucket".
func subdir(t *testing.T, root string, n *atomic.Int64) string {
	dir := filepath.Join(root, fmt.Sprintf("b%03d", n.Add(1)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConformance_InProcess(t *testing.T) {
	srv := sftptest.Start(t)
	var n atomic.Int64
	var last string
	with := func(user, password, dir string) (storage.Provider, error) {
		o := inProcOptions(srv, user)
		o.Password, o.Dir = password, dir
		return New(context.Background(), *o)
	}
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			last = subdir(t, srv.Dir, &n)
			return with(sftptest.User, sftptest.Password, last)
		},
		NewProviderWrongCredentials: func(context.Context, *testing.T) (storage.Provider, error) {
			return with(sftptest.User, "wrong password", last)
		},
		NewProviderReadOnly: func(context.Context, *testing.T) (storage.Provider, error) {
			return with(sftptest.ReadOnlyUser, sftptest.Password, last)
		},
		NewProviderUnreachable: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			o := inProcOptions(srv, sftptest.User)
			o.Port = sftptest.FreePort(t) // nothing listens there any more
			return New(context.Background(), *o)
		},
		ContentMD5: true,
	})
}

func TestConformance_OpenSSH(t *testing.T) {
	srv := sftptest.StartOpenSSH(t)
	var n atomic.Int64
	var last string
	storagetest.RunConformanceTests(t, storagetest.Harness{
		NewProvider: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			o := openSSHOptions(srv)
			last = subdir(t, srv.Dir, &n)
			o.Dir = last
			return New(context.Background(), *o)
		},
		NewProviderWrongCredentials: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			o := openSSHOptions(srv)
			o.Dir = last
			o.PrivateKey = sftptest.NewKey(t).PEM // a key the server does not know
			return New(context.Background(), *o)
		},
		NewProviderReadOnly: func(context.Context, *testing.T) (storage.Provider, error) {
			o := openSSHOptions(srv)
			o.Dir, o.Port = last, srv.ReadOnlyPort
			return New(context.Background(), *o)
		},
		NewProviderUnreachable: func(_ context.Context, t *testing.T) (storage.Provider, error) {
			o := openSSHOptions(srv)
			o.Port = sftptest.FreePort(t)
			return New(context.Background(), *o)
		},
		ContentMD5: true,
	})
}
