package api

import (
	"os"
	"strings"
	"testing"
)

// TestREADME_ListsEveryRoute: the README's route list names every route of
// the route table ("METHOD /path" as registered; the seed-004 prefix is said
// once for all).
func TestREADME_ListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	s := New(Options{})
	for _, r := range s.Routes() {
		line := strings.TrimSpace(r.Method + " " + r.Path)
		if !strings.Contains(readme, "`"+line+"`") {
			t.Errorf("README does not list `%s`", line)
		}
	}
}
