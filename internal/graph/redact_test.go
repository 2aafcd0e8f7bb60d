package graph

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// leakedRun reports the longest run of text's characters that is also a
// run of secret's, for a message that must not show one.
func leakedRun(text, secret string) int {
	longest := 0
	for i := range text {
		for j := i + longest + 1; j <= len(text); j++ {
			if !strings.Contains(secret, text[i:j]) {
				break
			}
			longest = j - i
		}
	}
	return longest
}

// A 190 message that echoes part of the token shows none of it: no run of
// minTokenRun or more of its characters, wherever the part comes from.
func TestPartsOfTheTokenAreRedacted(t *testing.T) {
	tok := testToken
	parts := map[string]string{
		"prefix of 30":  tok[:30],
		"prefix of 8":   tok[:8],
		"suffix of 12":  tok[len(tok)-12:],
		"suffix of 8":   tok[len(tok)-8:],
		"middle of 9":   tok[10:19],
		"middle of 20":  tok[5:25],
		"two pieces":    tok[:10] + "…" + tok[20:32],
		"query-escaped": url.QueryEscape(tok[3:20]),
	}
	for name, part := range parts {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeGraphError(w, 401, gErr{
					Message:   "Invalid OAuth access token - Cannot parse access token " + part,
					Type:      "OAuthException",
					Code:      190,
					ErrorData: map[string]string{"details": "token starts " + part},
					FBTraceID: "Tr1",
				})
			})
			_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
			var ge *Error
			if !errors.As(err, &ge) || ge.Code != 190 {
				t.Fatalf("err = %v, want code 190", err)
			}
			for _, text := range []string{err.Error(), ge.Message, ge.Details, fmt.Sprintf("%#v", *ge)} {
				if n := leakedRun(text, tok); n >= minTokenRun {
					t.Errorf("a run of %d token characters survived (%d-byte text)", n, len(text))
				}
			}
			if !strings.Contains(ge.Message, "Cannot parse access token "+redacted) {
				t.Errorf("Message = %q, want the echo replaced by %s", ge.Message, redacted)
			}
		})
	}
}

func TestShortRunsAndOtherTextSurvive(t *testing.T) {
	red := newRedactor(testToken)
	// Seven characters of the token are not a leak worth blanking words for.
	if got, want := red.redact("id "+testToken[:7]+" ok"), "id "+testToken[:7]+" ok"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
	if got := red.redact("Invalid OAuth access token."); got != "Invalid OAuth access token." {
		t.Errorf("redact changed a message without the token: %q", got)
	}
	if got := red.redact(testToken[2:12] + " and " + testToken[30:40]); got != redacted+" and "+redacted {
		t.Errorf("redact = %q, want both runs replaced", got)
	}
	// A token shorter than the run is still never shown whole.
	short := newRedactor("abc123")
	if got := short.redact("token abc123!"); got != "token "+redacted+"!" {
		t.Errorf("short token: redact = %q", got)
	}
}
