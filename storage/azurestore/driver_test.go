package azurestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/rtcrec/recorder/storage"
	"github.com/rtcrec/recorder/storage/azurestore/azuritetest"
	"github.com/rtcrec/recorder/storage/internal/verifytest"
)

func TestMetadataEncoding(t *testing.T) {
	tests := []struct {
		key, value       string
		wantKey, wantVal string // as stored in Azure
	}{
		{"conversationid", "c-1", "conversationid", "c-1"},
		{"user_id2", "plain value", "user_id2", "plain value"},
		{"UserId", "x", "rcx_557365724964", "x"},     // upper case: Azure would fold it
		{"user-id", "x", "rcx_757365722d6964", "x"},  // '-' is not an identifier character
		{"1st", "x", "rcx_317374", "x"},              // identifiers cannot start with a digit
		{"rcx_a", "x", "rcx_7263785f61", "x"},        // the prefix itself is escaped
		{"k", "ünï", "k", "%C3%BCn%C3%AF"},           // non-ASCII value
		{"k", "100%", "k", "100%25"},                 // '%' always escaped, so decoding is unambiguous
		{"k", " padded ", "k", "%20padded%20"},       // HTTP would trim the spaces
		{"k", "line\nbreak", "k", "line%0Abreak"},    // control characters
		{"日本", "語", "rcx_e697a5e69cac", "%E8%AA%9E"}, // both
	}
	for _, tc := range tests {
		enc := encodeMetadata(map[string]string{tc.key: tc.value})
		v, ok := enc[tc.wantKey]
		if !ok || *v != tc.wantVal {
			t.Errorf("encode %q=%q: got %v, want %q=%q", tc.key, tc.value, deref(v), tc.wantKey, tc.wantVal)
		}
		// HTTP header canonicalisation may change the case of names on the way back.
		back := decodeMetadata(map[string]*string{strings.ToUpper(tc.wantKey[:1]) + tc.wantKey[1:]: v})
		if back[tc.key] != tc.value || len(back) != 1 {
			t.Errorf("round trip of %q=%q gave %q", tc.key, tc.value, back)
		}
	}
}

func FuzzMetadataRoundTrip(f *testing.F) {
	f.Add("conversationid", "c-1")
	f.Add("User-Id", "ünï 100%")
	f.Add("rcx_41", "%41")
	f.Fuzz(func(t *testing.T, k, v string) {
		enc := encodeMetadata(map[string]string{k: v})
		for name, val := range enc {
			if !plainName(name) && !strings.HasPrefix(name, metaPrefix) {
				t.Fatalf("stored name %q is not an identifier", name)
			}
			if strings.ContainsFunc(*val, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("stored value %q is not printable ASCII", *val)
			}
		}
		if got := decodeMetadata(enc); !maps.Equal(got, map[string]string{k: v}) {
			if strings.ToValidUTF8(v, "\uFFFD") == v { // PathUnescape keeps bytes: only valid text must match
				t.Fatalf("round trip of %q=%q gave %q", k, v, got)
			}
		}
	})
}

func TestAzurite_MetadataAndChecksums(t *testing.T) {
	az := sharedAzurite(t)
	ctx := t.Context()
	b, err := OpenBucket(ctx, *testOptions(az, az.NewContainer(ctx, t)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	meta := map[string]string{"UserId": "Ünïcode", "x-request": "100% done", "plain": "p"}
	data := bytes.Repeat([]byte("azure "), 2<<20) // 12 MiB: three staged blocks
	if _, err := b.Upload(ctx, "m/obj", bytes.NewReader(data), &storage.WriterOptions{Size: -1, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	a, err := b.Attributes(ctx, "m/obj")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(a.Metadata, meta) {
		t.Errorf("Attributes.Metadata = %q, want %q", a.Metadata, meta)
	}
	if sum := md5.Sum(data); !bytes.Equal(a.MD5, sum[:]) {
		t.Errorf("MD5 of a block-list blob = %x, want %x", a.MD5, sum)
	}
	objs, err := b.List(ctx, "m/")
	if err != nil || len(objs) != 1 || !maps.Equal(objs[0].Metadata, meta) {
		t.Errorf("List metadata: %v, %v", objs, err)
	}

	wrong := md5.Sum([]byte("other"))
	for _, size := range []int{100, 5 << 20} { // single Put Blob, and blocks
		_, err = b.Upload(ctx, "m/corrupt", bytes.NewReader(data[:size]), &storage.WriterOptions{Size: -1, ContentMD5: wrong[:]})
		if storage.Code(err) != storage.DataLoss {
			t.Errorf("Upload of %d bytes with a wrong ContentMD5: %v, want DataLoss", size, err)
		}
		if _, err := b.Attributes(ctx, "m/corrupt"); storage.Code(err) != storage.NotFound {
			t.Errorf("blob after a rejected upload: %v, want NotFound", err)
		}
	}
}

func TestAzurite_CredentialForms(t *testing.T) {
	az := sharedAzurite(t)
	ctx := t.Context()
	name := az.NewContainer(ctx, t)
	conn := az.ConnectionString()
	sasRW := az.ContainerSAS(t, name, sas.ContainerPermissions{Read: true, Write: true, Create: true, List: true, Delete: true})
	tests := []struct {
		name    string
		opts    Options
		canSign bool
	}{
		{"ConnectionString", Options{ConnectionString: conn, Container: name}, true},
		{"SASToken", Options{SASToken: "?" + sasRW, Endpoint: az.Endpoint, Container: name}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenBucket(t.Context(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, err := b.Upload(ctx, tc.name, strings.NewReader("via "+tc.name), nil); err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if err := b.Delete(ctx, tc.name); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = b.SignedURL(ctx, "x", nil)
			if tc.canSign != (err == nil) || (err != nil && storage.Code(err) != storage.Unimplemented) {
				t.Errorf("SignedURL: %v (can sign: %v)", err, tc.canSign)
			}
			if strings.Contains(b.Location(), "sig=") {
				t.Errorf("Location %q shows the SAS signature", b.Location())
			}
		})
	}
}

func TestAzurite_Verify(t *testing.T) {
	az := sharedAzurite(t)
	ctx := t.Context()
	name := az.NewContainer(ctx, t)
	open := func(o *Options) *storage.Bucket {
		b, err := OpenBucket(t.Context(), *o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const wrongKey = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IQ=="
	wrong := testOptions(az, name)
	wrong.AccountKey = wrongKey
	missing := testOptions(az, "no-such-container")
	readOnly := &Options{Endpoint: az.Endpoint, Container: name,
		SASToken: az.ContainerSAS(t, name, sas.ContainerPermissions{Read: true, List: true})}
	stopped := testOptions(az, name)
	stopped.Endpoint = "http://127.0.0.1:1/" + azuritetest.Account
	verifytest.Run(t, []verifytest.Case{
		{Name: "Healthy", Bucket: open(testOptions(az, name)), Secret: azuritetest.Key,
			Want: verifytest.AllPass, Words: verifytest.HealthyWords},
		{Name: "WrongKey", Bucket: open(wrong), Secret: wrongKey,
			Words: verifytest.BucketFails("credentials rejected by " + az.Endpoint + "/" + name + " while checking the bucket: check the account name and account key, connection string or SAS token")},
		{Name: "MissingContainer", Bucket: open(missing), Secret: azuritetest.Key,
			Words: verifytest.BucketFails("bucket does not exist: " + az.Endpoint + "/no-such-container")},
		{Name: "ReadOnlySAS", Bucket: open(readOnly), Secret: readOnly.SASToken,
			Want: [5]bool{true}, Words: verifytest.WriteFails("access denied writing rec/app1/verify-")},
		{Name: "StoppedServer", Bucket: open(stopped), Secret: azuritetest.Key,
			Words: verifytest.BucketFails("cannot reach http://127.0.0.1:1/" + azuritetest.Account + "/" + name + ": dial tcp 127.0.0.1:1")},
	})
}

func TestErrorCode(t *testing.T) {
	reply := func(status int, code, reason string) error {
		return serviceError(&azcore.ResponseError{StatusCode: status, ErrorCode: code,
			RawResponse: &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, reason)}})
	}
	tests := []struct {
		name string
		err  error
		want storage.ErrorCode
	}{
		{"BlobNotFound", reply(404, "BlobNotFound", "The specified blob does not exist."), storage.NotFound},
		{"ContainerNotFound", reply(404, "ContainerNotFound", "x"), storage.NotFound},
		{"HEAD404", reply(404, "", "Not Found"), storage.NotFound},
		{"AuthenticationFailed", reply(403, "AuthenticationFailed", "Server failed to authenticate the request."), storage.Unauthenticated},
		{"AzuriteWrongKey", reply(403, "AuthorizationFailure", "Server failed to authenticate the request. Make sure…"), storage.Unauthenticated},
		{"AuthorizationFailure", reply(403, "AuthorizationFailure", "This request is not authorized to perform this operation."), storage.PermissionDenied},
		{"PermissionMismatch", reply(403, "AuthorizationPermissionMismatch", "x"), storage.PermissionDenied},
		{"InvalidRange", reply(416, "InvalidRange", "x"), storage.InvalidArgument},
		{"Md5Mismatch", reply(400, "Md5Mismatch", "x"), storage.DataLoss},
		{"ServerBusy", reply(503, "ServerBusy", "x"), storage.Unavailable},
		{"Status500", reply(500, "", "x"), storage.Unavailable},
		{"Refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, storage.Unavailable},
		{"Checksum", ErrChecksum, storage.DataLoss},
		{"NoKey", ErrNoAccountKey, storage.Unimplemented},
		{"Canceled", fmt.Errorf("x: %w", context.Canceled), storage.Canceled},
		{"Other", errors.New("x"), storage.Unknown},
	}
	var b bucket
	for _, tc := range tests {
		if got := b.ErrorCode(tc.err); got != tc.want {
			t.Errorf("%s: ErrorCode(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if msg := reply(403, "AuthorizationFailure", "Server failed to authenticate").Error(); msg != "azurestore: 403 AuthorizationFailure: Server failed to authenticate" {
		t.Errorf("ServiceError message %q", msg)
	}
}
