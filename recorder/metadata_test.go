package recorder

import (
	"strings"
	"testing"
)

// User metadata never replaces the recorder's object metadata, and the whole
// stays within S3's 2 KB (issue 12, findings 5 and 11).
func TestObjectMetadata_NamespaceAndBound(t *testing.T) {
	rec := &Recording{OrganizationID: "orgA", ConversationID: "c", RecorderID: "r", InstanceID: "i", ApplicationID: "a",
		Metadata: map[string]string{"OrganizationId": "forged", "instanceid": "forged", "ticket": "T-1", "naïve": "x", "note": "ünïcode"}}
	for i := range 60 {
		rec.Metadata["k"+strings.Repeat("x", 10)+string(rune('a'+i%26))+string(rune('a'+i/26))] = strings.Repeat("v", 1000)
	}
	md := objectMetadata(rec)
	if md["organizationid"] != "orgA" || md["instanceid"] != "i" {
		t.Errorf("system fields replaced: %v", md)
	}
	if md["user-organizationid"] != "forged" || md["user-ticket"] != "T-1" {
		t.Errorf("user metadata not under user-: %v", md)
	}
	if _, ok := md["user-naïve"]; ok || md["user-note"] != "" {
		t.Errorf("non-ASCII metadata in object metadata: %v", md)
	}
	if md["user-metadata"] != "partial" {
		t.Errorf("dropped metadata not flagged: %v", md)
	}
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	if n > MaxObjectMetadata {
		t.Errorf("object metadata is %d bytes, more than %d", n, MaxObjectMetadata)
	}
	small := objectMetadata(&Recording{OrganizationID: "o", Metadata: map[string]string{"a": "b"}})
	if small["user-a"] != "b" || small["user-metadata"] != "" {
		t.Errorf("small metadata: %v", small)
	}
}

func TestValidMetadata_EmptyKey(t *testing.T) {
	if err := validMetadata(map[string]string{"": "x"}); KindOf(err) != KindInvalid {
		t.Errorf("empty key: %v", err)
	}
}
