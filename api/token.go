package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rtcrec/recorder/config"
	"github.com/rtcrec/recorder/recorder"
	"github.com/rtcrec/recorder/recorder/conference"
	"github.com/rtcrec/recorder/recorder/conference/whip"
)

// Publish tokens let a browser publish to the WHIP endpoint without an API
// key, like LiveKit's access tokens: a caller with the control scope mints
// one (POST /api/publishtokens, or `recorder token`) for one organization,
// conference, userId and set of stream types, valid for minutes. A token is
// a JWT (RFC 7519) signed with HS256 under a key derived from the recorder's
// signing key; WHIP accepts it as its bearer token, and no other route does.

// PublishClaims are the claims of a publish token.
type PublishClaims struct {
	Issuer         string   `json:"iss"` // "recorder"
	OrganizationID string   `json:"org"`
	ConferenceID   string   `json:"conf"`
	UserID         string   `json:"sub"`
	StreamTypes    []string `json:"types"` // MIC, CAM, SCREEN, …; at least one
	IssuedAt       int64    `json:"iat"`   // Unix seconds
	Expires        int64    `json:"exp"`   // Unix seconds
	ID             string   `json:"jti"`
}

// PublishTokens mints and checks publish tokens.
type PublishTokens struct {
	key    []byte
	maxTTL time.Duration
	now    func() time.Time
}

// DefaultPublishTokenTTL is a token's validity when the request names none.
const DefaultPublishTokenTTL = 10 * time.Minute

// NewPublishTokens returns the publish tokens of a recorder with signingKey;
// no token is valid for longer than maxTTL.
func NewPublishTokens(signingKey string, maxTTL time.Duration) *PublishTokens {
	mac := hmac.New(sha256.New, []byte(signingKey))
	mac.Write([]byte("recorder publish token v1"))
	return &PublishTokens{key: mac.Sum(nil), maxTTL: maxTTL, now: time.Now}
}

// jwtHeader is the only header a publish token may have.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// ErrInvalidToken is the error of a token that is malformed, forged or expired.
var ErrInvalidToken = errors.New("api: invalid or expired publish token")

// Mint returns a token for c valid for ttl (DefaultPublishTokenTTL when 0)
// from now; it fills Issuer, IssuedAt, Expires and ID.
func (p *PublishTokens) Mint(c PublishClaims, ttl time.Duration) (string, *PublishClaims, error) {
	if ttl == 0 {
		ttl = DefaultPublishTokenTTL
	}
	if ttl < time.Second || ttl > p.maxTTL {
		return "", nil, &recorder.Error{Kind: recorder.KindInvalid, Reason: "invalid_field",
			Message: "ttl must be 1s to " + p.maxTTL.String()}
	}
	if err := validClaims(&c); err != nil {
		return "", nil, err
	}
	now := p.now()
	c.Issuer, c.IssuedAt, c.Expires, c.ID = "recorder", now.Unix(), now.Add(ttl).Unix(), randomHex(12)
	body, err := json.Marshal(c)
	if err != nil {
		return "", nil, err
	}
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + p.sign(signed), &c, nil
}

func validClaims(c *PublishClaims) error {
	bad := func(msg string) error {
		return &recorder.Error{Kind: recorder.KindInvalid, Reason: "invalid_field", Message: msg}
	}
	if err := recorder.ValidateID("organizationId", c.OrganizationID); err != nil {
		return err
	}
	if err := recorder.ValidateID("conferenceId", c.ConferenceID); err != nil {
		return err
	}
	if c.UserID == "" {
		return bad("userId is required")
	}
	if err := recorder.ValidateUserID(c.UserID); err != nil {
		return err
	}
	if len(c.StreamTypes) == 0 {
		return bad("streamTypes: at least one of MIC, CAM, SCREEN, HOLD, VIDEO is required")
	}
	for i, t := range c.StreamTypes {
		st, err := conference.ParseStreamType(t)
		if err != nil || st == conference.StreamUNKNOWN {
			return bad("streamTypes: " + t + " is not MIC, CAM, SCREEN, HOLD or VIDEO")
		}
		c.StreamTypes[i] = st.String()
	}
	return nil
}

func (p *PublishTokens) sign(s string) string {
	mac := hmac.New(sha256.New, p.key)
	mac.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Check returns the claims of a valid, unexpired token; ErrInvalidToken otherwise.
func (p *PublishTokens) Check(token string) (*PublishClaims, error) {
	if len(token) > 4096 {
		return nil, ErrInvalidToken
	}
	head, rest, ok := strings.Cut(token, ".")
	if !ok || head != jwtHeader {
		return nil, ErrInvalidToken
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(p.sign(head+"."+body))) {
		return nil, ErrInvalidToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, ErrInvalidToken
	}
	var c PublishClaims
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || c.Issuer != "recorder" || validClaims(&c) != nil {
		return nil, ErrInvalidToken
	}
	if now := p.now().Unix(); now >= c.Expires || c.IssuedAt > now+60 {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// AuthorizePublish is the WHIP endpoint's check of its bearer token: an API
// key with the publish scope publishes anything of its organization; a
// publish token publishes only what it names.
func (s *Server) AuthorizePublish(token string, p whip.Publish) (string, error) {
	if k := s.key(token); k != nil {
		if !k.HasScope(config.ScopePublish) {
			return "", &whip.AuthError{Status: http.StatusForbidden, Reason: "missing_scope", Message: "the API key lacks the publish scope"}
		}
		return k.OrganizationID, nil
	}
	if s.tokens == nil {
		return "", &whip.AuthError{Status: http.StatusUnauthorized, Reason: "unauthorized", Message: "missing or invalid bearer token"}
	}
	c, err := s.tokens.Check(token)
	if err != nil {
		return "", &whip.AuthError{Status: http.StatusUnauthorized, Reason: "unauthorized", Message: "missing, invalid or expired bearer token"}
	}
	if c.ConferenceID != p.ConferenceID || c.UserID != p.UserID || (p.Type != "" && !slices.Contains(c.StreamTypes, p.Type.String())) {
		return "", &whip.AuthError{Status: http.StatusForbidden, Reason: "token_scope",
			Message: "the publish token does not allow this conference, userId or stream type"}
	}
	return c.OrganizationID, nil
}

// PublishTokenRequest is the body of POST /api/publishtokens.
type PublishTokenRequest struct {
	ConferenceID string   `json:"conferenceId"`
	UserID       string   `json:"userId"`
	StreamTypes  []string `json:"streamTypes"` // default ["MIC", "CAM", "SCREEN"]
	TTL          string   `json:"ttl"`         // e.g. "10m" or seconds; default 10m
}

// PublishTokenMessage is the reply of POST /api/publishtokens.
type PublishTokenMessage struct {
	Token        string   `json:"token"`
	ConferenceID string   `json:"conferenceId"`
	UserID       string   `json:"userId"`
	StreamTypes  []string `json:"streamTypes"`
	ValidUntil   string   `json:"validUntil"`
	WHIPURL      string   `json:"whipUrl"` // the path to POST the offer to, with userId
}

func (s *Server) publishToken(w http.ResponseWriter, r *http.Request, k *config.APIKey) {
	if s.tokens == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this recorder issues no publish tokens")
		return
	}
	var req PublishTokenRequest
	if !decode(w, r, &req) {
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := parseDuration(req.TTL)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_field", "ttl: "+err.Error())
			return
		}
		ttl = d
	}
	if len(req.StreamTypes) == 0 {
		req.StreamTypes = []string{"MIC", "CAM", "SCREEN"}
	}
	tok, c, err := s.tokens.Mint(PublishClaims{OrganizationID: k.OrganizationID, ConferenceID: req.ConferenceID,
		UserID: req.UserID, StreamTypes: req.StreamTypes}, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PublishTokenMessage{Token: tok, ConferenceID: c.ConferenceID, UserID: c.UserID,
		StreamTypes: c.StreamTypes, ValidUntil: ts(time.Unix(c.Expires, 0)),
		WHIPURL: "/whip/" + c.ConferenceID + "?userId=" + url.QueryEscape(c.UserID)})
}
