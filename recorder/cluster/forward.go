package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/store"
)

// CommandPath is the internal route that runs a forwarded command. It is
// served beside the API; only a request signed with the fleet's secret is
// accepted.
const CommandPath = "/internal/cluster/v1/command"

// The headers of a forwarded command:
//
//	X-Recorder-Cluster-From:      the sending recorderId
//	X-Recorder-Cluster-Timestamp: Unix seconds when it was sent
//	X-Recorder-Cluster-Signature: hex HMAC-SHA256(secret, from + "." + timestamp + "." + body)
const (
	headerFrom      = "X-Recorder-Cluster-From"
	headerTimestamp = "X-Recorder-Cluster-Timestamp"
	headerSignature = "X-Recorder-Cluster-Signature"
)

// maxSkew bounds the age of a forwarded command's timestamp.
const maxSkew = time.Minute

// maxCommandBytes bounds a forwarded command's body (chat transcripts are
// the largest).
const maxCommandBytes = 4 << 20

// remoteError is an error as it crosses from the owner to the forwarder.
type remoteError struct {
	Kind       string        `json:"kind"`
	Reason     string        `json:"reason"`
	Message    string        `json:"message"`
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
}

func (n *Node) sign(from, ts string, body []byte) string {
	m := hmac.New(sha256.New, n.secret)
	m.Write([]byte(from + "." + ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Forward runs cmd on the instance owner and returns its answer
// (recorder.Remote). An owner that is not registered or not alive, or that
// cannot be reached, is an error that is not a *recorder.Error.
func (n *Node) Forward(ctx context.Context, owner string, cmd *recorder.Command) (*recorder.Recording, error) {
	in, err := n.opts.Store.Instance(ctx, owner)
	if errors.Is(err, store.ErrNoInstance) {
		return nil, fmt.Errorf("cluster: recorder %s is not in the fleet", owner)
	}
	if err != nil {
		return nil, err
	}
	if !n.Alive(in) {
		return nil, fmt.Errorf("cluster: recorder %s stopped heart-beating %s ago", owner, n.opts.Now().Sub(in.Heartbeat).Round(time.Millisecond))
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(in.InternalURL, "/")+CommandPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(n.opts.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerFrom, n.opts.RecorderID)
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerSignature, n.sign(n.opts.RecorderID, ts, body))
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cluster: forward %s to %s: %w", cmd.Op, owner, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("cluster: forward %s to %s: %w", cmd.Op, owner, err)
	}
	if resp.StatusCode != http.StatusOK {
		var re remoteError
		if json.Unmarshal(data, &re) != nil || re.Kind == "" {
			return nil, fmt.Errorf("cluster: forward %s to %s: status %d", cmd.Op, owner, resp.StatusCode)
		}
		return nil, &recorder.Error{Kind: kindOf(re.Kind), Reason: re.Reason, Message: re.Message, RetryAfter: re.RetryAfter}
	}
	var rec recorder.Recording
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("cluster: forward %s to %s: reply: %w", cmd.Op, owner, err)
	}
	return &rec, nil
}

func kindOf(name string) recorder.ErrorKind {
	for _, k := range []recorder.ErrorKind{recorder.KindInvalid, recorder.KindNotFound, recorder.KindConflict, recorder.KindUnavailable, recorder.KindQuota, recorder.KindTooLarge} {
		if k.String() == name {
			return k
		}
	}
	return recorder.KindInternal
}

// Handler serves CommandPath: it checks the signature and runs the command
// on m, never forwarding it again.
func (n *Node) Handler(m *recorder.Manager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandBytes))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		from, ts := r.Header.Get(headerFrom), r.Header.Get(headerTimestamp)
		sec, err := strconv.ParseInt(ts, 10, 64)
		sig, _ := hex.DecodeString(r.Header.Get(headerSignature))
		want, _ := hex.DecodeString(n.sign(from, ts, body))
		if err != nil || from == "" || !hmac.Equal(sig, want) {
			http.Error(w, "not signed by the fleet", http.StatusUnauthorized)
			return
		}
		if d := n.opts.Now().Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
			http.Error(w, "timestamp too far from this instance's clock", http.StatusUnauthorized)
			return
		}
		var cmd recorder.Command
		if err := json.Unmarshal(body, &cmd); err != nil {
			writeError(w, &recorder.Error{Kind: recorder.KindInvalid, Reason: "bad_command", Message: "the command is not valid JSON"})
			return
		}
		rec, err := m.Run(r.Context(), &cmd)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rec)
	})
}

func writeError(w http.ResponseWriter, err error) {
	var e *recorder.Error
	if !errors.As(err, &e) {
		e = &recorder.Error{Kind: recorder.KindInternal, Reason: "internal", Message: "the owner failed to run the command"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Kind.HTTPStatus())
	json.NewEncoder(w).Encode(remoteError{Kind: e.Kind.String(), Reason: e.Reason, Message: e.Message, RetryAfter: e.RetryAfter})
}
