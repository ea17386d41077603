package whep

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// ParseLinkICEServers returns the ICE servers announced in Link header values
// (RFC 8288; WHIP RFC 9725 section 4.6 and the WHEP draft):
//
//	Link: <turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"
//
// Links of other relations and malformed links are skipped.
func ParseLinkICEServers(values []string) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, v := range values {
		for _, link := range splitLinks(v) {
			target, params, ok := parseLink(link)
			if !ok || !hasRel(params["rel"], "ice-server") {
				continue
			}
			if !strings.HasPrefix(target, "stun:") && !strings.HasPrefix(target, "stuns:") &&
				!strings.HasPrefix(target, "turn:") && !strings.HasPrefix(target, "turns:") {
				continue
			}
			s := webrtc.ICEServer{URLs: []string{target}}
			if u, ok := params["username"]; ok {
				s.Username = u
			}
			if c, ok := params["credential"]; ok {
				s.Credential = c
			}
			out = append(out, s)
		}
	}
	return out
}

// splitLinks splits a Link header value at the commas between links, not at
// commas inside <…> or quoted strings.
func splitLinks(v string) []string {
	var out []string
	inURI, inQuote, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case inURI:
			if c == '>' {
				inURI = false
			}
		case c == '<':
			inURI = true
		case c == '"':
			inQuote = true
		case c == ',':
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// parseLink parses `<target>; name=value; name="value"`. Parameter names are
// lower-cased; the first occurrence of a name wins (RFC 8288 section 3).
func parseLink(s string) (target string, params map[string]string, ok bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", nil, false
	}
	target, s = s[1:end], s[end+1:]
	params = make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return target, params, true
		}
		if s[0] != ';' {
			return "", nil, false
		}
		s = strings.TrimLeft(s[1:], " \t")
		i := strings.IndexAny(s, "=; \t")
		if i < 0 {
			i = len(s)
		}
		name := strings.ToLower(s[:i])
		s = strings.TrimLeft(s[i:], " \t")
		value := ""
		if strings.HasPrefix(s, "=") {
			s = strings.TrimLeft(s[1:], " \t")
			if strings.HasPrefix(s, `"`) {
				var b strings.Builder
				j := 1
				for ; j < len(s) && s[j] != '"'; j++ {
					if s[j] == '\\' && j+1 < len(s) {
						j++
					}
					b.WriteByte(s[j])
				}
				if j >= len(s) {
					return "", nil, false
				}
				value, s = b.String(), s[j+1:]
			} else {
				k := strings.IndexAny(s, "; \t")
				if k < 0 {
					k = len(s)
				}
				value, s = s[:k], s[k:]
			}
		}
		if name == "" {
			return "", nil, false
		}
		if _, dup := params[name]; !dup {
			params[name] = value
		}
	}
}

// hasRel reports whether a rel parameter (a space-separated list) holds rel.
func hasRel(list, rel string) bool {
	for _, r := range strings.Fields(list) {
		if strings.EqualFold(r, rel) {
			return true
		}
	}
	return false
}
