package recorder

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder/conference"
)

// TestManager_MixNoneDecodesNothing: a recording started with "mix": "none"
// writes its Opus track and decodes none of it (the decode counter of the
// metrics stays 0), writes no mix.wav, and keeps "none" through the store;
// the same audio recorded with the default mix is decoded, so the counter
// can move.
func TestManager_MixNoneDecodesNothing(t *testing.T) {
	m, fa, _ := newTestManager(t)
	ctx := context.Background()
	b, err := m.Bucket(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	opus := opusPackets(t, 660, 2)
	record := func(conf, conv, mix string) (*Recording, MediaStats) {
		t.Helper()
		var req StartRequest
		body := `{"applicationId":"app","conferenceId":"` + conf + `","conversationId":"` + conv + `","mix":` + mix + `}`
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		req.Audio = true
		before := m.MediaStats()
		rec, err := m.Start(ctx, "org", req)
		if err != nil {
			t.Fatal(err)
		}
		tr, ft := newTrack(conf, "u1")
		tr.Codec = conference.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
		fa.sink(conf).AddTrack(tr)
		ft.sendPackets(111, 960, opus)
		// Every packet reached the track before the counters are read.
		for deadline := time.Now().Add(10 * time.Second); m.MediaStats().Packets-before.Packets < uint64(len(opus)); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("mix %s: %d of %d packets received", mix, m.MediaStats().Packets-before.Packets, len(opus))
			}
		}
		close(ft.ch)
		after := m.MediaStats()
		got, err := m.Stop(ctx, "org", conv, "rec1", rec.InstanceID)
		if err != nil || got.State != StateStopped {
			t.Fatalf("mix %s: Stop = %+v, %v", mix, got, err)
		}
		return got, MediaStats{Packets: after.Packets - before.Packets, Decoded: after.Decoded - before.Decoded}
	}

	rec, st := record("f1", "c1", `"none"`)
	if st.Decoded != 0 {
		t.Errorf(`mix "none": %d of %d packets decoded; want none`, st.Decoded, st.Packets)
	}
	if !rec.Mix.None {
		t.Errorf(`mix "none" came back from the store as %+v`, rec.Mix)
	}
	if _, err := b.Attributes(ctx, rec.Storage.Prefix+"mix.wav"); err == nil {
		t.Error(`mix "none": a mix.wav was uploaded`)
	}
	objs, err := b.List(ctx, rec.Storage.Prefix+"tracks/")
	if err != nil {
		t.Fatal(err)
	}
	var oggBytes int64
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".ogg") {
			oggBytes += o.Size
		}
	}
	if min := int64(len(opus)) * 20; oggBytes < min { // the tone's packets are larger than 20 bytes
		t.Errorf(`mix "none": the Ogg track has %d bytes for %d packets`, oggBytes, len(opus))
	}

	rec, st = record("f2", "c2", `{"sampleRate":8000}`)
	if st.Decoded < uint64(len(opus))*9/10 {
		t.Errorf("default mix: %d of %d packets decoded", st.Decoded, st.Packets)
	}
	if _, err := b.Attributes(ctx, rec.Storage.Prefix+"mix.wav"); err != nil {
		t.Errorf("default mix: mix.wav: %v", err)
	}
}

func TestMixSettings_JSON(t *testing.T) {
	var m config.MixSettings
	if err := json.Unmarshal([]byte(`"none"`), &m); err != nil || !m.None {
		t.Fatalf(`"none" = %+v, %v`, m, err)
	}
	b, err := json.Marshal(m)
	if err != nil || string(b) != `"none"` {
		t.Errorf(`marshal none = %s, %v`, b, err)
	}
	for _, bad := range []string{`"off"`, `""`, `"None"`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil || !strings.Contains(err.Error(), `"none"`) {
			t.Errorf("%s: err %v; want one that says \"none\" or an object", bad, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"sampleRate":16000,"latency":"2s"}`), &m); err != nil || m.None || m.SampleRate != 16000 || m.Latency != 2*time.Second {
		t.Errorf("object = %+v, %v", m, err)
	}
}
