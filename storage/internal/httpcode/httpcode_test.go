package httpcode

import (
	"testing"

	"github.com/rtcrec/recorder/storage"
)

func TestCode(t *testing.T) {
	tests := []struct {
		status int
		want   storage.ErrorCode
	}{
		{200, storage.Unknown},
		{400, storage.InvalidArgument},
		{401, storage.Unauthenticated},
		{403, storage.PermissionDenied},
		{404, storage.NotFound},
		{409, storage.AlreadyExists},
		{412, storage.AlreadyExists},
		{416, storage.InvalidArgument},
		{429, storage.Unavailable},
		{500, storage.Unavailable},
		{503, storage.Unavailable},
		{418, storage.Unknown},
	}
	for _, tc := range tests {
		if got := Code(tc.status); got != tc.want {
			t.Errorf("Code(%d) = %v, want %v", tc.status, got, tc.want)
		}
	}
}
