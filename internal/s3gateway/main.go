// Command s3gateway runs the versitygw S3 gateway (embedded, posix backend in a
// directory) on a loopback address, for the s3store tests. It lives in its own
// Go module so that versitygw's dependencies stay out of the recorder's build.
//
// It verifies SigV4 signatures and presigned URLs. With -user-access and
// -user-secret it also creates a second account with the "user" role (no
// buckets of its own; the tests grant it read-only access by bucket policy).
//
//	s3gateway -addr 127.0.0.1:9000 -dir /tmp/s3 -access KEY -secret SECRET
//
// It runs until killed (SIGTERM/SIGINT) and prints "ready ADDR" once it accepts
// connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/versity/versitygw/auth"
	"github.com/versity/versitygw/backend/meta"
	"github.com/versity/versitygw/backend/posix"
	"github.com/versity/versitygw/embedgw"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port)")
	dir := flag.String("dir", "", "data directory (required)")
	access := flag.String("access", "", "root access key id (required)")
	secret := flag.String("secret", "", "root secret access key (required)")
	userAccess := flag.String("user-access", "", "access key id of an extra account with the user role")
	userSecret := flag.String("user-secret", "", "secret of that account")
	region := flag.String("region", "us-east-1", "region reported to clients")
	flag.Parse()
	if *dir == "" || *access == "" || *secret == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *dir, *access, *secret, *userAccess, *userSecret, *region); err != nil {
		log.Fatalf("s3gateway: %v", err)
	}
}

func run(addr, dir, access, secret, userAccess, userSecret, region string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	data := filepath.Join(dir, "data")
	iamDir := filepath.Join(dir, "iam")
	for _, d := range []string{data, iamDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	be, err := posix.New(data, meta.XattrMeta{}, posix.PosixOpts{NewDirPerm: 0o755, Concurrency: 64})
	if err != nil {
		return fmt.Errorf("posix backend: %w", err)
	}
	cfg := &embedgw.Config{
		RootUserAccess:    access,
		RootUserSecret:    secret,
		Region:            region,
		Ports:             []string{addr},
		MaxConnections:    256,
		MaxRequests:       256,
		MultipartMaxParts: 10000,
		Quiet:             true,
		KeepAlive:         true,
		IAMDir:            iamDir,
		IAMCacheDisable:   true,
	}
	iam, err := auth.New(cfg.IamOpts())
	if err != nil {
		return fmt.Errorf("iam: %w", err)
	}
	if userAccess != "" {
		err := iam.CreateAccount(auth.Account{Access: userAccess, Secret: userSecret, Role: auth.RoleUser, UserID: 1001, GroupID: 1001})
		if err != nil && !errors.Is(err, auth.ErrUserExists) { // a restart on the same directory
			return fmt.Errorf("create user account: %w", err)
		}
	}
	cfg.IAMService = iam

	go announce(ctx, addr)
	if err := embedgw.RunVersityGW(ctx, be, cfg); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// announce prints "ready ADDR" once the gateway accepts TCP connections.
func announce(ctx context.Context, addr string) {
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			fmt.Printf("ready %s\n", addr)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
