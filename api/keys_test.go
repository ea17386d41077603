package api

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/internal/testenv"
)

// Keys of one organization with one scope each (and read, to see), for the
// key and application routes and the console's buttons.
const (
	keyScRead    = "key-scope-read-0123456789"
	keyScControl = "key-scope-control-0123456789"
	keyScAdmin   = "key-scope-admin-0123456789"
	keyScPublish = "key-scope-publish-0123456789"
	s3Secret     = "s3-secret-never-shown-0123456789"
	sftpPassword = "sftp-password-never-shown-0123"
)

// scopedConfig: orgA has appA (LOCAL), appA2 (LOCAL, another folder) and
// appS3 (S3 with credentials, never contacted); orgB has appB. The control
// key may use appA alone.
func scopedConfig(dir string) *config.Config {
	cfg := twoOrgConfig(dir, "")
	cfg.APIKeys = append(cfg.APIKeys,
		config.APIKey{Key: keyScRead, OrganizationID: "orgA", Applications: []string{"*"}, Scopes: []string{config.ScopeRead}},
		config.APIKey{Key: keyScControl, OrganizationID: "orgA", Applications: []string{"appA"}, Scopes: []string{config.ScopeControl, config.ScopeRead}},
		config.APIKey{Key: keyScAdmin, OrganizationID: "orgA", Applications: []string{"*"}, Scopes: []string{config.ScopeAdmin, config.ScopeRead}},
		config.APIKey{Key: keyScPublish, OrganizationID: "orgA", Applications: []string{"*"}, Scopes: []string{config.ScopePublish}},
	)
	cfg.Applications["appA2"] = &config.Application{OrganizationID: "orgA", Conference: config.ConferenceConfig{Kind: "whip"},
		Storage: &config.StorageProfile{Provider: config.ProviderLocal, Dir: filepath.Join(dir, "appA2-storage")}}
	cfg.Applications["appS3"] = &config.Application{OrganizationID: "orgA", Conference: config.ConferenceConfig{Kind: "whip"},
		Storage: &config.StorageProfile{Provider: "AMAZON_S3", Bucket: "recs", Prefix: "p", Region: "us-east-1",
			Endpoint: "http://127.0.0.1:1", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: s3Secret},
		BackupStorage: &config.StorageProfile{Provider: config.ProviderSFTP, Host: "127.0.0.1", Port: 1, User: "u",
			Password: sftpPassword, Dir: "/backup"}}
	return cfg
}

// TestAPI_KeySelfAndApplications: a key of any scope learns its
// organization, scopes and applications, never the key; the application
// list holds the applications the key may use, with storage profile names
// and no credential, and none of another organization.
func TestAPI_KeySelfAndApplications(t *testing.T) {
	h := startServiceConfig(t, scopedConfig(t.TempDir()), nil)
	tests := []struct {
		key    string
		scopes []string
		org    string
		apps   []string // GET /api/applications; nil: 403
	}{
		{keyA, []string{"admin", "control", "read", "publish"}, "orgA", []string{"appA", "appA2", "appS3"}},
		{keyB, []string{"admin", "control", "read", "publish"}, "orgB", []string{"appB"}},
		{keyScRead, []string{"read"}, "orgA", []string{"appA", "appA2", "appS3"}},
		{keyScControl, []string{"control", "read"}, "orgA", []string{"appA"}},
		{keyScAdmin, []string{"admin", "read"}, "orgA", []string{"appA", "appA2", "appS3"}},
		{keyScPublish, []string{"publish"}, "orgA", nil},
		{keyAControl, []string{"control"}, "orgA", nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.scopes, "+")+"/"+tt.org, func(t *testing.T) {
			var self KeyInfo
			if code := h.do("GET", "/api/keys/self", tt.key, nil, &self); code != 200 {
				t.Fatalf("GET /api/keys/self: %d", code)
			}
			if self.OrganizationID != tt.org || !slices.Equal(self.Scopes, tt.scopes) {
				t.Errorf("self %+v, want %s %v", self, tt.org, tt.scopes)
			}
			var list ApplicationList
			code := h.do("GET", "/api/applications", tt.key, nil, &list)
			if tt.apps == nil {
				if code != http.StatusForbidden {
					t.Errorf("GET /api/applications without the read scope: %d, want 403", code)
				}
				return
			}
			var got []string
			for _, a := range list.Applications {
				got = append(got, a.ApplicationID)
			}
			if code != 200 || !slices.Equal(got, tt.apps) {
				t.Errorf("applications %d %v, want %v", code, got, tt.apps)
			}
			for _, a := range list.Applications {
				if a.ApplicationID == "appS3" && (a.Storage != ApplicationStorage{Provider: "AMAZON_S3", Name: "recs", Prefix: "p"} ||
					a.BackupStorage == nil || a.BackupStorage.Provider != config.ProviderSFTP || a.BackupStorage.Name != "127.0.0.1:/backup") {
					t.Errorf("appS3: %+v backup %+v", a.Storage, a.BackupStorage)
				}
				if a.ApplicationID == "appA" && a.Storage.Provider != config.ProviderLocal {
					t.Errorf("appA: %+v", a.Storage)
				}
			}
		})
	}
	// No key, no credential, in either reply.
	for _, path := range []string{"/api/keys/self", "/api/applications"} {
		req, _ := http.NewRequest("GET", h.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+keyA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, secret := range []string{keyA, s3Secret, sftpPassword, "AKIDEXAMPLE"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s shows a secret: %s", path, body)
			}
		}
	}
	if code := h.do("GET", "/api/keys/self", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/keys/self without a key: %d", code)
	}
	if code := h.do("GET", "/api/keys/self", "not-a-key", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("GET /api/keys/self with a wrong key: %d", code)
	}
}

// TestConsole_Scopes drives the console in headless Chromium with keys of
// different scopes: the read key sees the live recording but no Start,
// Pause, Stop, Blackout or Verify; the control key (appA only) sees Start,
// Pause, Stop and Blackout and no Verify, and only appA on the storage
// page; the admin key sees no recording buttons, picks appA2 from the
// storage page's list and verifies it (five checks passed); the publish
// key logs in and sees no buttons at all.
func TestConsole_Scopes(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testenv.LookPath(t, "chromium")
	h := startServiceConfig(t, scopedConfig(t.TempDir()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Env(testenv.ChromiumEnv...), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1100, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	fail := func(what string, err error) {
		t.Helper()
		page, _ := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\n%s", what, err, page)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			fail(what, err)
		}
	}
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			fail(expr, err)
		}
		return v
	}
	// shown: the element exists and is displayed.
	shown := func(sel string) bool {
		t.Helper()
		return eval(`(() => { const e = document.querySelector('`+sel+`'); return !!e && e.offsetParent !== null; })()`) == true
	}

	// A live recording of orgA's appA, started over the API.
	var ev RecordingDataEvent
	if code := h.do("POST", "/api/recordings/start", keyA, map[string]any{"applicationId": "appA", "conferenceId": "sconf", "conversationId": "sconv"}, &ev); code != 200 || ev.State != "ACTIVE" {
		t.Fatalf("start: %d %+v", code, ev)
	}
	row := `tr[data-instance="` + ev.InstanceID + `"]`

	login := func(key string) {
		t.Helper()
		do("log in",
			chromedp.Navigate(h.url+"/console/#/live"),
			chromedp.WaitVisible(chromedp.CSS("#login-key")),
			chromedp.SendKeys(chromedp.CSS("#login-key"), key),
			chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.CSS("#live-view")),
			poll(`document.querySelector('#key-info').textContent.startsWith('orgA')`))
	}
	logout := func() {
		t.Helper()
		do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-key")))
	}
	storagePage := func(apps ...string) {
		t.Helper()
		do("storage page", chromedp.Navigate(h.url+"/console/#/storage"), chromedp.WaitVisible(chromedp.CSS("#storage-view")),
			poll(`document.querySelectorAll('#app-table tbody tr').length > 0`))
		got := eval(`[...document.querySelectorAll('#app-table tbody tr')].map((r) => r.getAttribute('data-app')).join(',')`)
		if got != strings.Join(apps, ",") {
			t.Errorf("storage page lists %v, want %v", got, apps)
		}
	}

	// read: sees the recording, no button.
	login(keyScRead)
	do("live recording (read)", poll(`document.querySelector('`+row+`') !== null`))
	for _, sel := range []string{row + ` button`, `#start-panel`, `#start-form button`} {
		if shown(sel) {
			t.Errorf("read key: %s is shown", sel)
		}
	}
	storagePage("appA", "appA2", "appS3")
	if shown(`#verify-form button`) {
		t.Errorf("read key: Verify is shown")
	}
	if shown(`#app-any`) != true {
		t.Errorf("read key (\"*\"): the note on other applications is not shown")
	}
	logout()

	// control, appA only: Start, Pause, Stop and Blackout; no Verify.
	login(keyScControl)
	do("live recording (control)", poll(`document.querySelector('`+row+` button[data-action="pause"]') !== null`))
	for _, sel := range []string{row + ` button[data-action="pause"]`, row + ` button[data-action="stop"]`, `#start-panel`} {
		if !shown(sel) {
			t.Errorf("control key: %s is not shown", sel)
		}
	}
	do("pause (control)", chromedp.Click(chromedp.CSS(row+` button[data-action="pause"]`)),
		poll(`document.querySelector('`+row+`') && document.querySelector('`+row+` .state').textContent.includes('paused')`))
	storagePage("appA")
	if shown(`#verify-form button`) || shown(`#app-any`) {
		t.Errorf("control key: Verify or the note on other applications is shown")
	}
	logout()

	// admin: no recording buttons; Verify on an application picked from the list.
	login(keyScAdmin)
	do("live recording (admin)", poll(`document.querySelector('`+row+`') !== null`))
	if shown(row+` button`) || shown(`#start-panel`) {
		t.Errorf("admin key: recording buttons are shown")
	}
	storagePage("appA", "appA2", "appS3")
	if got := eval(`[...document.querySelectorAll('#verify-form select option')].map((o) => o.value).join(',')`); got != "appA,appA2,appS3" {
		t.Errorf("verify list %v", got)
	}
	if !shown(`#verify-form button`) {
		t.Fatalf("admin key: Verify is not shown")
	}
	do("verify appA2", chromedp.SetValue(chromedp.CSS(`#verify-form select`), "appA2"),
		chromedp.Click(chromedp.CSS(`#verify-form button`)),
		poll(`document.querySelectorAll('#verify-table tbody tr').length === 5`))
	if got := eval(`[...document.querySelectorAll('#verify-table tbody tr')].map((r) => r.children[1].textContent).join(',')`); got != "passed,passed,passed,passed,passed" {
		t.Errorf("verify of appA2: %v", got)
	}
	logout()

	// publish: logs in; no list, no buttons.
	login(keyScPublish)
	if shown(`#start-panel`) || shown(`#verify-form`) || eval(`document.querySelectorAll('#live-table tbody tr').length`) != float64(0) {
		t.Errorf("publish key: sees recordings or buttons")
	}
	logout()

	if code := h.do("POST", "/api/recordings/sconv/"+ev.RecorderID+"/"+ev.InstanceID+"/stop", keyA, nil, nil); code != 200 {
		t.Errorf("stop: %d", code)
	}
}
