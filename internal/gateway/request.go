package gateway

import (
	"encoding/json"
	"errors"
	"regexp"

	"github.com/flowkey/flowkey/internal/strictjson"
)

// Actions of a decrypted Flows request.
const (
	ActionPing         = "ping"
	ActionInit         = "INIT"
	ActionBack         = "BACK"
	ActionDataExchange = "data_exchange"
)

// Error keys of error notifications that are counted by name; Meta says
// both mean the business public key must be uploaded again. Every other key
// is counted as ErrorKeyOther, so the metric's dimension stays bounded.
const (
	ErrorKeyPublicKeyMissing = "public-key-missing"
	ErrorKeySignatureCheck   = "public-key-signature-verification"
	ErrorKeyOther            = "other"
)

const screenInvalid = "(invalid)"

// Why a decrypted request is refused (HTTP 421); each is safe to log.
const (
	errNotObject               = "the decrypted data is not one JSON object"
	errDuplicate               = "the decrypted data has a member twice"
	errUnknownAction           = `the decrypted data has no known "action"`
	errActionNotString         = `the decrypted "action" is not a string`
	errScreenNotString         = `the decrypted "screen" is not a string`
	errDataNotObjectOrAbsent   = `the decrypted "data" is not an object`
	errDataNotOneObject        = `the decrypted "data" is not one JSON object`
	errDataHasDuplicateMembers = `the decrypted "data" has a member twice`
)

// screenRE is the shape of a screen ID in a Flow JSON. A screen that has
// another shape is logged as "(invalid)": the log must never carry text the
// user could have typed.
var screenRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// flowRequest is what the gateway reads from a decrypted request. Only
// bounded values are kept; the request itself goes to the backend as raw.
type flowRequest struct {
	raw      json.RawMessage
	action   string
	screen   string // for the log: a screen ID, "(invalid)" or ""
	errorKey string // set for an error notification
}

// requestError says why a decrypted request is refused; its text is one of
// the constants above, safe to log.
type requestError string

func (e requestError) Error() string { return string(e) }

// parseRequest reads the decrypted request. Unknown members are allowed
// (Meta adds fields), duplicates are not: two "action" members would leave
// the gateway and the backend to disagree about which one counts.
func parseRequest(plain []byte) (*flowRequest, error) {
	members, err := strictjson.Members(plain)
	if err != nil {
		return nil, requestError(errNotObject)
	}
	if len(strictjson.Duplicates(members)) > 0 {
		return nil, requestError(errDuplicate)
	}
	r := &flowRequest{raw: plain}
	var data json.RawMessage
	for _, m := range members {
		switch m.Name {
		case "action":
			if err := jsonString(m.Value, &r.action); err != nil {
				return nil, requestError(errActionNotString)
			}
		case "screen":
			var s string
			if err := jsonString(m.Value, &s); err != nil {
				return nil, requestError(errScreenNotString)
			}
			r.screen = screenInvalid
			if screenRE.MatchString(s) {
				r.screen = s
			}
		case "data":
			data = m.Value
		}
	}
	switch r.action {
	case ActionPing:
		return r, nil
	case ActionInit, ActionBack, ActionDataExchange:
	default:
		return nil, requestError(errUnknownAction)
	}
	key, err := errorKey(data)
	if err != nil {
		return nil, err
	}
	r.errorKey = key
	return r, nil
}

// errorKey returns the bounded key of an error notification (a "data"
// object with an "error" member), or "" for any other request.
func errorKey(data json.RawMessage) (string, error) {
	switch strictjson.KindOf(data) {
	case strictjson.None, strictjson.Null:
		return "", nil
	case strictjson.Object:
	default:
		return "", requestError(errDataNotObjectOrAbsent)
	}
	members, err := strictjson.Members(data)
	if err != nil {
		return "", requestError(errDataNotOneObject)
	}
	if len(strictjson.Duplicates(members)) > 0 {
		return "", requestError(errDataHasDuplicateMembers)
	}
	for _, m := range members {
		if m.Name != "error" || strictjson.KindOf(m.Value) == strictjson.Null {
			continue
		}
		var key string
		if jsonString(m.Value, &key) == nil && (key == ErrorKeyPublicKeyMissing || key == ErrorKeySignatureCheck) {
			return key, nil
		}
		return ErrorKeyOther, nil
	}
	return "", nil
}

var errNotString = errors.New("not a JSON string")

func jsonString(raw json.RawMessage, dst *string) error {
	if strictjson.KindOf(raw) != strictjson.String {
		return errNotString
	}
	return json.Unmarshal(raw, dst)
}
