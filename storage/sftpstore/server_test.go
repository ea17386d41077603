package sftpstore

import (
	"time"

	"github.com/rtcrec/recorder/storage/sftpstore/sftptest"
)

// inProcOptions returns driver options for user on srv with the password,
// pinning the host key.
func inProcOptions(srv *sftptest.Server, user string) *Options {
	return &Options{
		Host: "127.0.0.1", Port: srv.Addr.Port, User: user, Password: sftptest.Password,
		HostKey: srv.HostKey.AuthorizedKey, DialTimeout: 5 * time.Second,
	}
}

// openSSHOptions returns driver options that log in to srv with its client
// key, pinning the host key.
func openSSHOptions(srv *sftptest.OpenSSH) *Options {
	return &Options{
		Host: "127.0.0.1", Port: srv.Port, User: srv.User, PrivateKey: srv.ClientKey.PEM,
		HostKey: srv.HostKey.AuthorizedKey, Dir: srv.Dir, DialTimeout: 5 * time.Second,
	}
}
