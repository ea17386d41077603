package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/memstore"
)

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want storage.ErrorCode
	}{
		{"Nil", nil, storage.Unknown},
		{"Plain", errors.New("x"), storage.Unknown},
		{"BareCode", storage.NotFound, storage.NotFound},
		{"WrappedCode", fmt.Errorf("driver: %w", storage.PermissionDenied), storage.PermissionDenied},
		{"Error", &storage.Error{Code: storage.DataLoss, Op: "verify"}, storage.DataLoss},
		{"WrappedError", fmt.Errorf("upload: %w", &storage.Error{Code: storage.Unavailable}), storage.Unavailable},
		{"Canceled", fmt.Errorf("x: %w", context.Canceled), storage.Canceled},
		{"Deadline", context.DeadlineExceeded, storage.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := storage.Code(tc.err); got != tc.want {
				t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestError_Format(t *testing.T) {
	err := &storage.Error{Code: storage.NotFound, Op: "read", Key: "rec/a.wav", Err: errors.New("no such key")}
	if got, want := err.Error(), "storage: read rec/a.wav: NotFound: no such key"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, storage.NotFound) || errors.Is(err, storage.PermissionDenied) {
		t.Error("errors.Is does not follow the code")
	}
	if got := storage.ErrorCode(99).String(); got != "ErrorCode(99)" {
		t.Errorf("String of an unknown code = %q", got)
	}
	for c, retry := range map[storage.ErrorCode]bool{storage.Unavailable: true, storage.NotFound: false, storage.PermissionDenied: false, storage.DeadlineExceeded: true} {
		if c.Retryable() != retry {
			t.Errorf("%v.Retryable() = %v", c, !retry)
		}
	}
}

func TestBucket_WrapsOnce(t *testing.T) {
	b := storage.NewBucket(memstore.New(memstore.Options{Name: "w"}))
	_, err := b.ReadAll(t.Context(), "missing/key")
	var se *storage.Error
	if !errors.As(err, &se) || se.Op != "read" || se.Key != "missing/key" || se.Code != storage.NotFound {
		t.Fatalf("error = %#v", err)
	}
	if errors.As(se.Err, new(*storage.Error)) {
		t.Errorf("error wrapped twice: %v", err)
	}
}

func TestBucket_SignedURLMethod(t *testing.T) {
	b := storage.NewBucket(memstore.New(memstore.Options{Name: "s"}))
	_, err := b.SignedURL(t.Context(), "k", &storage.SignedURLOptions{Method: "DELETE"})
	if storage.Code(err) != storage.InvalidArgument {
		t.Errorf("SignedURL(DELETE) = %v, want InvalidArgument", err)
	}
	_, err = b.SignedURL(t.Context(), "k", nil)
	if storage.Code(err) != storage.Unimplemented {
		t.Errorf("SignedURL on memstore without a signer = %v, want Unimplemented", err)
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Put "https://a.blob.core.windows.net/c/k?sv=1&sig=abc": dial tcp`, `Put "https://a.blob.core.windows.net/c/k?…": dial tcp`},
		{"GET http://127.0.0.1:9000/b/k?X-Amz-Signature=ff&X-Amz-Credential=AK failed", "GET http://127.0.0.1:9000/b/k?… failed"},
		{"no url here?a=b", "no url here?a=b"},
		{"https://host/path without a query", "https://host/path without a query"},
	} {
		if got := storage.RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
