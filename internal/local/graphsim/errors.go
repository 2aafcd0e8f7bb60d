package graphsim

import (
	"fmt"
	"net/http"
)

// graphError is the body Graph sends on failure:
// {"error":{"message","type","code","error_subcode","error_data","fbtrace_id"}}.
type graphError struct {
	Message   string     `json:"message"`
	Type      string     `json:"type"`
	Code      int        `json:"code"`
	Subcode   int        `json:"error_subcode,omitempty"`
	ErrorData *errorData `json:"error_data,omitempty"`
	FBTraceID string     `json:"fbtrace_id"`

	status int // HTTP status, not marshalled
}

// errorData is what Cloud API errors add for WhatsApp endpoints.
type errorData struct {
	MessagingProduct string `json:"messaging_product"`
	Details          string `json:"details"`
}

// Graph codes the simulator answers with on its own.
const (
	codeInvalidParameter = 100
	subcodeNoObject      = 33
	codeMissingToken     = 104
	codeInvalidToken     = 190
	codeUnknownPath      = 2500
	codeWABARateLimit    = 80007
)

// statusForCode is the HTTP status Graph sends with a code. Sources: Meta's
// Cloud API error-code table (0/190 401, 3 500, 10 and 200-299 403, 1/4/33/
// 100/80007/130429 400, 2 503, 131000 500) and observed Graph responses
// (100 subcode 33 and 2500 with 400). 104 is sent with 401, as Meta's
// OpenAPI reference files "missing access token" under 401.
func statusForCode(code int) int {
	switch {
	case code == 0, code == codeInvalidToken, code == codeMissingToken:
		return http.StatusUnauthorized
	case code == 3, code == 131000:
		return http.StatusInternalServerError
	case code == 2, code == 131016:
		return http.StatusServiceUnavailable
	case code == 10, code >= 200 && code <= 299, code == 368, code == 131005:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// defaultMessage is Graph's usual text for a code, "(#code) title" style.
func defaultMessage(code int) string {
	switch code {
	case 1:
		return "An unknown error has occurred."
	case 2:
		return "An unexpected error has occurred. Please retry your request later."
	case 3:
		return "(#3) Application does not have the capability to make this API call."
	case 4:
		return "(#4) Application request limit reached"
	case 10:
		return "(#10) Application does not have permission for this action"
	case codeInvalidParameter:
		return "(#100) Invalid parameter"
	case codeMissingToken:
		return "An access token is required to request this resource."
	case codeInvalidToken:
		return "Invalid OAuth access token - Cannot parse access token"
	case 200:
		return "(#200) Permissions error"
	case codeWABARateLimit:
		return "(#80007) There have been too many calls to this WhatsApp Business account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
	case 130429:
		return "(#130429) Rate limit hit"
	case 131000:
		return "(#131000) Something went wrong"
	case 131016:
		return "(#131016) Service unavailable"
	default:
		return fmt.Sprintf("(#%d) Simulated Graph error", code)
	}
}

// errorType is the "type" Graph reports: GraphMethodException for an object
// that does not exist or does not support the method, OAuthException
// otherwise (Cloud API errors included).
func errorType(code, subcode int) string {
	if code == codeInvalidParameter && subcode == subcodeNoObject {
		return "GraphMethodException"
	}
	return "OAuthException"
}

// wwwAuthenticateError is the error token of the WWW-Authenticate header
// Graph sends with every error.
func wwwAuthenticateError(code int) string {
	if code == codeInvalidToken {
		return "invalid_token"
	}
	return "invalid_request"
}

func newGraphError(code, subcode int, message string) *graphError {
	if message == "" {
		message = defaultMessage(code)
	}
	ge := &graphError{Message: message, Type: errorType(code, subcode), Code: code, Subcode: subcode, status: statusForCode(code)}
	if code >= 130000 {
		ge.ErrorData = &errorData{MessagingProduct: "whatsapp", Details: message}
	}
	return ge
}

func invalidParameter(details string) *graphError {
	ge := newGraphError(codeInvalidParameter, 0, "")
	ge.ErrorData = &errorData{MessagingProduct: "whatsapp", Details: details}
	return ge
}

// noObject is Graph's answer for an ID that does not exist (or a method the
// object does not support): code 100, subcode 33, HTTP 400.
func noObject(method, id string) *graphError {
	verb := "get"
	switch method {
	case http.MethodPost:
		verb = "post"
	case http.MethodDelete:
		verb = "delete"
	}
	msg := fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api", verb, id)
	return newGraphError(codeInvalidParameter, subcodeNoObject, msg)
}
