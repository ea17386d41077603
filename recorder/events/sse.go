package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/rtcrec/recorder/internal/httperr"
)

// replayPage is how many stored events one replay query reads.
const replayPage = 500

// ParseLastEventID parses the Last-Event-ID an SSE client sends when it
// reconnects: the decimal ID of the last event it received. Empty means "no
// resume" and gives 0. Anything but 1 to 19 ASCII digits that fit an int64 is
// an error.
func ParseLastEventID(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 19 {
		return 0, fmt.Errorf("events: Last-Event-ID %.32q is too long", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("events: Last-Event-ID %q is not a decimal event id", s)
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("events: Last-Event-ID %q: %w", s, err)
	}
	return id, nil
}

// Handler serves GET /api/events as Server-Sent Events (text/event-stream) for
// the caller's organization, which orgOf takes from the request (the service's
// authentication puts it in the request context); ok false answers 401.
//
// Each event is written as "id:", "event:" (its type) and "data:" (its JSON)
// lines and flushed. A comment line is sent every Options.Heartbeat. With a
// Last-Event-ID header (or a lastEventId query parameter, for clients that
// cannot set headers) the stored events after that ID are replayed first, then
// live ones follow without gap or duplicate; without one, only live events are
// sent. A client that falls Options.SubscriberBuffer events behind is
// disconnected and should reconnect with Last-Event-ID. Events of other
// organizations are never sent.
func (b *Bus) Handler(orgOf func(*http.Request) (string, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		org, ok := orgOf(r)
		if !ok || org == "" {
			httperr.Write(w, http.StatusUnauthorized, "unauthenticated", "no or invalid API key")
			return
		}
		raw := r.Header.Get("Last-Event-ID")
		if raw == "" {
			raw = r.URL.Query().Get("lastEventId")
		}
		last, err := ParseLastEventID(raw)
		if err != nil {
			httperr.Write(w, http.StatusBadRequest, "invalid_last_event_id", err.Error())
			return
		}
		resume := raw != ""
		if resume {
			// An ID this organization was never given (the database was
			// reset): resume from its end as it is before subscribing, so
			// nothing later is skipped.
			if top, err := b.st.LastEventSeq(r.Context(), org); err == nil && last > top {
				last = top
			}
		}
		sub, err := b.subscribe(r.Context(), org)
		if errors.Is(err, ErrClosed) {
			httperr.Write(w, http.StatusServiceUnavailable, "shutting_down", "the event stream is shutting down")
			return
		}
		if err != nil {
			b.opts.Logger.Warn("events: subscribe failed", "org", org, "err", err)
			httperr.Write(w, http.StatusServiceUnavailable, "events_unavailable", "the event stream is unavailable; retry")
			return
		}
		defer b.unsubscribe(sub)
		b.stream(w, r, sub, last, resume)
	})
}

// stream writes replayed then live events to one client until it goes away,
// falls behind, or the Bus closes. It runs on the request's goroutine.
func (b *Bus) stream(w http.ResponseWriter, r *http.Request, sub *subscriber, last int64, resume bool) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(p []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(b.opts.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(p); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	var buf []byte
	send := func(ev Event) bool {
		buf = appendSSE(buf[:0], ev)
		if !write(buf) {
			return false
		}
		last = ev.ID
		return true
	}
	if resume { // replay what is stored, page by page; live events queue meanwhile
		for {
			evs, err := b.Since(r.Context(), sub.org, last, replayPage)
			if err != nil {
				b.opts.Logger.Warn("events: replay failed", "org", sub.org, "after", last, "err", err)
				return
			}
			for _, ev := range evs {
				if !send(ev) {
					return
				}
			}
			if len(evs) < replayPage {
				break
			}
		}
	}
	heartbeat := time.NewTicker(b.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev := <-sub.ch:
			if ev.ID <= last { // already replayed
				continue
			}
			if !send(ev) {
				return
			}
		case <-heartbeat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-sub.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// appendSSE appends one event in the text/event-stream format. The JSON data
// has no newlines (it is compact), so it fits one data line.
func appendSSE(buf []byte, ev Event) []byte {
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, ev.ID, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, ev.Type...)
	buf = append(buf, "\ndata: "...)
	buf = appendJSON(buf, ev)
	return append(buf, "\n\n"...)
}

func appendJSON(buf []byte, ev Event) []byte {
	p, err := json.Marshal(ev)
	if err != nil { // cannot happen: Data was validated by Publish
		p = []byte("{}")
	}
	return append(buf, p...)
}

// Subscribers returns how many live SSE subscribers of org this Bus serves.
func (b *Bus) Subscribers(org string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[org])
}
