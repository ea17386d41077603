package janus_test

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/rtcrec/recorder/recorder/conference/internal/rtctest"
	"github.com/rtcrec/recorder/recorder/conference/janus"
	"github.com/rtcrec/recorder/recorder/conference/janus/janustest"
)

// BenchmarkJanus_JoinToFirstPacket measures the time from Join on a room
// with one publisher to the first RTP packet read from its track: session,
// attach, join, subscribe, ICE, DTLS, and Janus relaying.
//
// "client" is Pion's default answering DTLS role, "server" the one
// Options.API recommends.
func BenchmarkJanus_JoinToFirstPacket(b *testing.B) {
	srv := janustest.Start(b)
	srv.CreateRoom(b, "2001")
	srv.Publish(b, "2001", "alice", 440, "")
	for _, role := range []webrtc.DTLSRole{webrtc.DTLSRoleClient, webrtc.DTLSRoleServer} {
		b.Run("dtls="+role.String(), func(b *testing.B) { benchJoin(b, adapterWith(b, srv, role)) })
	}
}

func benchJoin(b *testing.B, a *janus.Adapter) {
	var lat []time.Duration
	for b.Loop() {
		s := rtctest.NewSink(b)
		s.Discard = true
		start := time.Now()
		leave, err := a.Join(context.Background(), "org1", "2001", s)
		if err != nil {
			b.Fatal(err)
		}
		tr := s.Next(b, 10*time.Second)
		for tr.First().IsZero() {
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, tr.First().Sub(start))
		b.StopTimer()
		leave()
		b.StartTimer()
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(lat)), "ms-to-first-packet")
	b.Logf("join to first packet over %d joins: min %v, median %v, max %v", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
}

// BenchmarkJanus_CPUPerStream measures the CPU this process spends per
// subscribed stream: N publishers send PCMU into a room for a window without
// the recorder, then with it; the difference of the process's CPU time
// (getrusage, user+system) over the window, divided by N and the window, is
// the adapter's and Pion's receive cost per stream-second. Janus runs in its
// own process and so do the publishers (PublishProcess): the window without
// the recorder is this process idling. The figure is the median over
// iterations (-benchtime Nx): on a shared machine single windows are noisy.
//
// "interceptors=default" is Pion's NewAPI default (NACK, reports, TWCC),
// "interceptors=none" an empty registry.
func BenchmarkJanus_CPUPerStream(b *testing.B) {
	for _, ic := range []string{"default", "none"} {
		for _, n := range []int{4, 12} {
			b.Run(fmt.Sprintf("interceptors=%s/streams=%d", ic, n), func(b *testing.B) { benchCPU(b, n, ic == "none") })
		}
	}
}

func benchCPU(b *testing.B, n int, noInterceptors bool) {
	const window = 5 * time.Second
	srv := janustest.Start(b)
	srv.CreateRoom(b, "2002")
	for i := range n { // in their own processes: their CPU is not ours
		srv.PublishProcess(b, "2002", fmt.Sprintf("p%d", i), 300+float64(i)*50)
	}
	var per []float64 // ms per stream-second, one per iteration
	for b.Loop() {
		time.Sleep(time.Second) // settle
		base := cpuOver(window)
		s := rtctest.NewSink(b)
		s.Discard = true
		a := adapter(b, srv)
		if noInterceptors {
			se := rtctest.SettingEngine()
			_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
			var me webrtc.MediaEngine
			_ = me.RegisterDefaultCodecs()
			a = janus.New(janus.Options{URL: srv.URL, API: webrtc.NewAPI(webrtc.WithMediaEngine(&me),
				webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))})
		}
		leave, err := a.Join(context.Background(), "org1", "2002", s)
		if err != nil {
			b.Fatal(err)
		}
		tracks := s.NextByUser(b, n, 15*time.Second)
		time.Sleep(time.Second)
		withRec := cpuOver(window)
		packets := 0
		for _, tr := range tracks {
			packets += tr.Packets()
		}
		leave()
		perStream := (withRec - base) / time.Duration(n) / time.Duration(window.Seconds())
		per = append(per, float64(perStream.Microseconds())/1000)
		b.Logf("%d streams: CPU %v without the recorder, %v with it over %v; %.2f ms per stream-second; %d packets",
			n, base, withRec, window, float64(perStream.Microseconds())/1000, packets)
	}
	slices.Sort(per)
	b.ReportMetric(per[len(per)/2], "median-cpu-ms/stream-s")
}

// cpuOver returns the CPU time (user+system) this process used during d.
func cpuOver(d time.Duration) time.Duration {
	t0 := cpuTime()
	time.Sleep(d)
	return cpuTime() - t0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
